/**
 * Validation ladder for supervisor options: one tiny check per field, each
 * returning the typed error that names the field and the value.
 *
 * @internal
 */
import { InvalidOptions } from "../Errors.ts"

/** @internal */
export const checkNonNegativeInt = (module: string, field: string, value: unknown): InvalidOptions | undefined =>
  typeof value === "number" && Number.isInteger(value) && value >= 0
    ? undefined
    : new InvalidOptions({ module, field, value, expected: "an integer >= 0" })

/** @internal */
export const checkLimit = (module: string, field: string, value: unknown): InvalidOptions | undefined =>
  value === Infinity || (typeof value === "number" && Number.isInteger(value) && value >= 0)
    ? undefined
    : new InvalidOptions({ module, field, value, expected: "an integer >= 0 or Infinity" })

/** @internal */
export const checkPositive = (module: string, field: string, value: unknown): InvalidOptions | undefined =>
  typeof value === "number" && Number.isFinite(value) && value > 0
    ? undefined
    : new InvalidOptions({ module, field, value, expected: "a finite number > 0" })

/**
 * The options every supervisor shares, checked in one ladder: `name`,
 * `maxChildren` (where the module has it), `maxRestarts`, `maxSeconds`.
 *
 * @internal
 */
export const checkSupervisorOptions = (
  module: string,
  options: {
    readonly name?: unknown
    readonly maxChildren?: unknown
    readonly maxRestarts?: unknown
    readonly maxSeconds?: unknown
  }
): InvalidOptions | undefined => {
  if (options.name !== undefined && typeof options.name !== "string") {
    return new InvalidOptions({ module, field: "name", value: options.name, expected: "a string" })
  }
  return (
    (options.maxChildren === undefined ? undefined : checkLimit(module, "maxChildren", options.maxChildren)) ??
    (options.maxRestarts === undefined ? undefined : checkNonNegativeInt(module, "maxRestarts", options.maxRestarts)) ??
    (options.maxSeconds === undefined ? undefined : checkPositive(module, "maxSeconds", options.maxSeconds))
  )
}
