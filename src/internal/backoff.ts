/**
 * The restart backoff delay, as a pure function: `min · factor^(n-1)`, capped
 * at `max`. Large `n` saturates at `max` (no overflow, no NaN).
 *
 * @internal
 */
export const backoffDelay = (attempt: number, minMillis: number, maxMillis: number, factor: number): number => {
  if (!(attempt >= 1)) return minMillis
  const d = minMillis * Math.pow(factor, attempt - 1)
  return Number.isFinite(d) ? Math.min(d, maxMillis) : maxMillis
}
