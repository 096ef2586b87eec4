/**
 * Shutdown values: the worker default and the decoding of a `Shutdown` into
 * a policy (or the `InvalidOptions` that names it).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import { InvalidOptions } from "../Errors.ts"
import type { ChildType, Shutdown, ShutdownPolicy } from "../Supervisor/ChildSpec.ts"

/** @internal */
export const defaultWorkerShutdownMillis = 5_000

const invalid = (field: string, value: unknown, expected: string) =>
  new InvalidOptions({ module: "ChildSpec", field, value, expected })

/** @internal */
export const decodeShutdown = (value: Shutdown | undefined, type: ChildType): ShutdownPolicy | InvalidOptions => {
  if (value === undefined) {
    return type === "supervisor" ? { _tag: "Infinity" } : { _tag: "Timeout", millis: defaultWorkerShutdownMillis }
  }
  if (value === "brutalKill") return { _tag: "BrutalKill" }
  if (value === "infinity") return { _tag: "Infinity" }
  if (typeof value === "number" && (!Number.isFinite(value) || value < 0)) {
    return invalid("shutdown", value, 'a duration >= 0, "brutalKill" or "infinity"')
  }
  const d = Duration.fromInput(value)
  if (d._tag === "None") return invalid("shutdown", value, 'a duration >= 0, "brutalKill" or "infinity"')
  const millis = Duration.toMillis(d.value)
  if (!(millis >= 0)) return invalid("shutdown", value, 'a duration >= 0, "brutalKill" or "infinity"')
  if (millis === Infinity) return { _tag: "Infinity" }
  return { _tag: "Timeout", millis }
}
