/**
 * Validation of limiter options: one small check per field, each returning
 * the `InvalidOptions` that names the field and the rejected value.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import { InvalidOptions } from "../../Errors.ts"
import type { AlgorithmName, Limits } from "./algorithm.ts"

/** @internal */
export interface LimitsInput {
  readonly algorithm?: AlgorithmName | undefined
  readonly limit: number
  readonly window: Duration.Input
  readonly burst?: number | undefined
}

/** @internal */
export const isPositiveInt = (u: unknown): u is number => typeof u === "number" && Number.isInteger(u) && u >= 1

/** @internal */
export const checkCount = (module: string, field: string, value: unknown, min: 0 | 1): InvalidOptions | undefined =>
  value === Infinity || (typeof value === "number" && Number.isInteger(value) && value >= min)
    ? undefined
    : new InvalidOptions({ module, field, value, expected: `an integer >= ${min} or Infinity` })

/** @internal */
export const windowMillis = (value: unknown): number | undefined => {
  if (typeof value === "number" && !Number.isFinite(value)) return undefined
  const d = Duration.fromInput(value as Duration.Input)
  if (d._tag === "None") return undefined
  const millis = Duration.toMillis(d.value)
  return Number.isFinite(millis) && millis > 0 ? millis : undefined
}

/**
 * Validates one set of limits; `prefix` names where they sit (`""` for the
 * top level, `"perKey."` for per-key limits).
 *
 * @internal
 */
export const decodeLimits = (
  module: string,
  prefix: string,
  input: LimitsInput,
  algorithm: AlgorithmName
): Limits | InvalidOptions => {
  if (typeof input !== "object" || input === null) {
    return new InvalidOptions({
      module,
      field: prefix === "" ? "options" : prefix.slice(0, -1),
      value: input,
      expected: "an object with limit and window"
    })
  }
  if (!isPositiveInt(input.limit)) {
    return new InvalidOptions({ module, field: `${prefix}limit`, value: input.limit, expected: "an integer >= 1" })
  }
  const window = windowMillis(input.window)
  if (window === undefined) {
    return new InvalidOptions({
      module,
      field: `${prefix}window`,
      value: input.window,
      expected: "a finite duration > 0"
    })
  }
  if (input.burst !== undefined) {
    if (algorithm !== "tokenBucket") {
      return new InvalidOptions({
        module,
        field: `${prefix}burst`,
        value: input.burst,
        expected: 'undefined: burst applies to algorithm "tokenBucket" only'
      })
    }
    if (!isPositiveInt(input.burst)) {
      return new InvalidOptions({ module, field: `${prefix}burst`, value: input.burst, expected: "an integer >= 1" })
    }
  }
  return { algorithm, limit: input.limit, window, burst: input.burst ?? input.limit }
}

/** @internal */
export const decodeAlgorithm = (module: string, value: unknown): AlgorithmName | InvalidOptions =>
  value === undefined || value === "slidingWindow"
    ? "slidingWindow"
    : value === "tokenBucket"
      ? "tokenBucket"
      : new InvalidOptions({ module, field: "algorithm", value, expected: '"slidingWindow" or "tokenBucket"' })

/** @internal */
export const DEFAULT_MAX_QUEUE = 1000

/** @internal */
export interface OptionsInput extends LimitsInput {
  readonly name?: string | undefined
  readonly maxQueue?: number | undefined
  readonly perKey?: Omit<LimitsInput, "algorithm"> | undefined
}

/** @internal */
export interface Decoded {
  readonly name: string | undefined
  readonly limits: Limits
  readonly perKey: Limits | undefined
  readonly maxQueue: number
}

/** @internal */
export const decodeOptions = (module: string, options: OptionsInput): Decoded | InvalidOptions => {
  if (typeof options !== "object" || options === null) {
    return new InvalidOptions({ module, field: "options", value: options, expected: "an object with limit and window" })
  }
  const algorithm = decodeAlgorithm(module, options.algorithm)
  if (typeof algorithm !== "string") return algorithm
  const limits = decodeLimits(module, "", options, algorithm)
  if (limits instanceof InvalidOptions) return limits
  let perKey: Limits | undefined = undefined
  if (options.perKey !== undefined) {
    const p = decodeLimits(module, "perKey.", options.perKey, algorithm)
    if (p instanceof InvalidOptions) return p
    perKey = p
  }
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE
  const e = checkCount(module, "maxQueue", maxQueue, 0)
  if (e) return e
  if (options.name !== undefined && typeof options.name !== "string") {
    return new InvalidOptions({ module, field: "name", value: options.name, expected: "a string" })
  }
  return { name: options.name, limits, perKey, maxQueue }
}

/** @internal */
export interface UpdateInput {
  readonly limit?: number | undefined
  readonly window?: Duration.Input | undefined
  readonly burst?: number | undefined
  readonly perKey?: Omit<LimitsInput, "algorithm"> | null | undefined
  readonly maxQueue?: number | undefined
}

/** Merges an update into the limits in force, then validates the result. @internal */
export const decodeUpdate = (
  module: string,
  current: { readonly limits: Limits; readonly perKey: Limits | undefined; readonly maxQueue: number },
  update: UpdateInput
): { readonly limits: Limits; readonly perKey: Limits | undefined; readonly maxQueue: number } | InvalidOptions => {
  if (typeof update !== "object" || update === null) {
    return new InvalidOptions({ module, field: "limits", value: update, expected: "an object" })
  }
  const algorithm = current.limits.algorithm
  const merged: LimitsInput = {
    limit: update.limit ?? current.limits.limit,
    window: update.window ?? current.limits.window,
    burst:
      algorithm === "slidingWindow"
        ? update.burst
        : (update.burst ?? (update.limit !== undefined ? update.limit : current.limits.burst))
  }
  const limits = decodeLimits(module, "", merged, algorithm)
  if (limits instanceof InvalidOptions) return limits
  let perKey = current.perKey
  if (update.perKey === null) perKey = undefined
  else if (update.perKey !== undefined) {
    const p = decodeLimits(module, "perKey.", update.perKey, algorithm)
    if (p instanceof InvalidOptions) return p
    perKey = p
  }
  const maxQueue = update.maxQueue ?? current.maxQueue
  const e = checkCount(module, "maxQueue", maxQueue, 0)
  if (e) return e
  return { limits, perKey, maxQueue }
}
