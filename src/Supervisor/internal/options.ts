/**
 * Validation ladder for supervisor options: one tiny check per field, each
 * returning the typed error that names the field and the value.
 *
 * @internal
 */
import { InvalidOptions } from "../../Errors.ts"

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
