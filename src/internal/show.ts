/**
 * How errors and logs show a value: strings quoted, everything else as JSON when it can be.
 *
 * @internal
 */
export const showValue = (u: unknown): string => {
  if (typeof u === "string") return JSON.stringify(u)
  if (typeof u === "number" || typeof u === "boolean" || typeof u === "bigint" || u == null) return String(u)
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}
