/**
 * The pure arithmetic of the two admission algorithms. No Effect inside: time
 * is a number of milliseconds passed in by the caller (a monotonic clock), so
 * the rules can be checked with table and property tests.
 *
 * - `SlidingWindow` keeps a log of admission times and admits at `t` only if
 *   fewer than `limit` admissions lie in `(t - window, t]`: at most `limit`
 *   admissions in ANY half-open interval of length `window`. The next
 *   admission is planned from the log (the `limit`-th newest entry plus the
 *   window), never from "now + window", so waiting does not drift.
 * - `TokenBucket` is a GCRA (theoretical arrival time): a bucket of `burst`
 *   tokens refilled continuously at `limit` tokens per `window`. The state
 *   advances by exactly one emission interval per admission from the planned
 *   time, so a saturated bucket admits exactly `limit` per `window` forever.
 *
 * @internal
 */

/** Clock readings within this many milliseconds (1 ns) count as equal. @internal */
export const EPSILON = 1e-6

/** @internal */
export type AlgorithmName = "slidingWindow" | "tokenBucket"

/** Validated limits, in milliseconds. @internal */
export interface Limits {
  readonly algorithm: AlgorithmName
  /** admissions per window (sliding window) or tokens refilled per window (token bucket) */
  readonly limit: number
  /** the window, in milliseconds */
  readonly window: number
  /** the bucket capacity (token bucket); equal to `limit` for the sliding window */
  readonly burst: number
}

/** @internal */
export interface Algorithm {
  readonly limits: Limits
  /** The earliest time >= `now` at which one more admission is allowed. */
  nextAt(now: number): number
  /** Whether one admission is allowed at `now`. */
  canAdmit(now: number): boolean
  /** Records one admission at `now`; the caller checked `canAdmit(now)`. */
  admit(now: number): void
  /** How many admissions are allowed at `now`, one after the other. */
  available(now: number): number
  /** Admissions counted in the window that ends at `now`. */
  inWindow(now: number): number
  /** Nothing remembered can delay an admission any more. */
  idle(now: number): boolean
  /** Applies new limits from `now` on, keeping what has been admitted. */
  reconfigure(limits: Limits, now: number): void
  /**
   * Moves an admission recorded at `from` to the later time `to`, when the
   * work it admitted actually began (later is always safe: it only delays
   * what comes after).
   */
  retime(from: number, to: number): void
}

/**
 * The log of admission times, oldest first. It keeps what any limits
 * configured so far can need — the newest `maxLimit` admissions that are
 * younger than `maxWindow` (the largest limit and window ever set) — so its
 * size is bounded by the traffic of one window, and lowering then raising
 * the limits keeps the rule exact. Only limits larger than any before can
 * need admissions already forgotten; those are counted at the time of the
 * newest forgotten one (no earlier than they really were), so the rule still
 * holds and, at worst, the first admissions after such a change wait longer.
 *
 * @internal
 */
export class SlidingWindow implements Algorithm {
  private entries: Array<number> = []
  private head = 0
  private maxLimit: number
  private maxWindow: number
  private forgotten = 0
  private lastForgotten = -Infinity

  constructor(public limits: Limits) {
    this.maxLimit = limits.limit
    this.maxWindow = limits.window
  }

  private get size(): number {
    return this.entries.length - this.head
  }

  /** The k-th newest admission time, 1-based; k <= size. */
  private nth(k: number): number {
    return this.entries[this.entries.length - k]!
  }

  /** The admission time that bounds the next one, or -Infinity when fewer than `limit` are logged. */
  private planned(): number {
    return this.size < this.limits.limit ? -Infinity : this.nth(this.limits.limit) + this.limits.window
  }

  private prune(now: number): void {
    while (this.size > 0 && (this.size > this.maxLimit || this.entries[this.head]! <= now - this.maxWindow)) {
      this.lastForgotten = this.entries[this.head]!
      this.head++
      this.forgotten++
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  nextAt(now: number): number {
    return Math.max(now, this.planned())
  }

  canAdmit(now: number): boolean {
    return this.planned() <= now + EPSILON
  }

  admit(now: number): void {
    // record the planned time if the clock read a hair (< 1 ns) early
    const t = Math.max(now, this.planned())
    this.entries.push(t)
    this.prune(t)
  }

  inWindow(now: number): number {
    // entries are sorted; count those > now - window (binary search)
    const bound = now - this.limits.window
    let lo = this.head
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.entries[mid]! > bound) hi = mid
      else lo = mid + 1
    }
    return this.entries.length - lo
  }

  available(now: number): number {
    return Math.max(0, this.limits.limit - this.inWindow(now))
  }

  idle(now: number): boolean {
    return this.size === 0 || this.nth(1) + this.limits.window <= now
  }

  reconfigure(limits: Limits, now: number): void {
    const maxLimit = Math.max(this.maxLimit, limits.limit)
    const maxWindow = Math.max(this.maxWindow, limits.window)
    // Keeping more than before: the admissions forgotten under the old bounds
    // may now be among those to keep. They are all no later than the newest
    // one forgotten, so count them at that time (conservative, never early).
    if ((maxLimit > this.maxLimit || maxWindow > this.maxWindow) && this.lastForgotten > now - maxWindow) {
      const pad = Math.min(this.forgotten, maxLimit - this.size)
      if (pad > 0) {
        const padding: Array<number> = new Array(pad).fill(this.lastForgotten)
        this.entries = padding.concat(this.entries.slice(this.head))
        this.head = 0
        this.forgotten -= pad
      }
    }
    this.maxLimit = maxLimit
    this.maxWindow = maxWindow
    this.limits = limits
  }

  retime(from: number, to: number): void {
    if (!(to > from)) return
    // the newest entry recorded at `from` (usually the last one; `admit` may have
    // recorded the planned time, within EPSILON of the clock reading)
    let i = this.entries.length - 1
    while (i >= this.head && this.entries[i]! > from + EPSILON) i--
    if (i < this.head || this.entries[i]! < from - EPSILON) return
    // keep the log sorted: slide the later entries that are still < to one place back
    while (i + 1 < this.entries.length && this.entries[i + 1]! < to) {
      this.entries[i] = this.entries[i + 1]!
      i++
    }
    this.entries[i] = to
  }

  /** The remembered admission times, oldest first (for tests). */
  log(): Array<number> {
    return this.entries.slice(this.head)
  }

  /** How many admission times are remembered (for tests). */
  remembered(): number {
    return this.size
  }
}

/**
 * GCRA: `tat` is the theoretical arrival time of the next token. An admission
 * at `t` is allowed when `t >= tat - (burst - 1) * interval`, and moves `tat`
 * to `max(tat, t) + interval`.
 *
 * @internal
 */
export class TokenBucket implements Algorithm {
  private tat = -Infinity
  private interval: number

  constructor(public limits: Limits) {
    this.interval = limits.window / limits.limit
  }

  private planned(): number {
    return this.tat - (this.limits.burst - 1) * this.interval
  }

  nextAt(now: number): number {
    return Math.max(now, this.planned())
  }

  canAdmit(now: number): boolean {
    return this.planned() <= now + EPSILON
  }

  admit(now: number): void {
    // a wake-up that reads the clock a hair late is charged from the planned
    // time, so the schedule does not drift
    this.tat = (now <= this.tat + EPSILON ? this.tat : now) + this.interval
  }

  /** Tokens in the bucket at `now`, as a real number in [0, burst]. */
  tokens(now: number): number {
    if (this.tat === -Infinity) return this.limits.burst
    return Math.min(this.limits.burst, Math.max(0, (now - this.tat) / this.interval + this.limits.burst))
  }

  available(now: number): number {
    return Math.floor(this.tokens(now) + EPSILON)
  }

  inWindow(now: number): number {
    return this.limits.burst - this.available(now)
  }

  idle(now: number): boolean {
    return this.tat <= now
  }

  retime(_from: number, _to: number): void {
    // a bucket counts tokens, not times: when the work began does not change them
  }

  reconfigure(limits: Limits, now: number): void {
    const kept = Math.min(this.tokens(now), limits.burst)
    this.limits = limits
    this.interval = limits.window / limits.limit
    this.tat = kept >= limits.burst ? -Infinity : now + (limits.burst - kept) * this.interval
  }
}

/** @internal */
export const make = (limits: Limits): Algorithm =>
  limits.algorithm === "slidingWindow" ? new SlidingWindow(limits) : new TokenBucket(limits)

/**
 * The exact sliding count over an admission log (sorted): the largest number
 * of admissions in any half-open interval `[s, s + window)`. The maximum is
 * reached by an interval that starts at an admission, so a two-pointer sweep
 * is exact.
 *
 * @internal
 */
export const maxInAnyWindow = (log: ReadonlyArray<number>, window: number): number => {
  let max = 0
  let j = 0
  for (let i = 0; i < log.length; i++) {
    if (j < i) j = i
    while (j < log.length && log[j]! < log[i]! + window) j++
    if (j - i > max) max = j - i
  }
  return max
}
