/**
 * The limiter's machinery: waiters in per-key FIFO lanes served round-robin,
 * a priority lane (restarts), one timer at a time, and the admission step
 * that checks the global algorithm, the key's algorithm and an optional gate
 * (the spawner's cap on live children) at the same instant.
 *
 * Invariants kept by `drain`:
 * - a waiter is admitted only when every constraint allows it *now*, and the
 *   admission is recorded before the waiter resumes (so a waiter never holds
 *   a token while parked: it is spent when its work starts);
 * - when waiters remain and the gate is open, a timer is armed for the
 *   earliest time one of them can be admitted (the queue is never wedged);
 * - a waiter that is interrupted leaves its lane and has consumed nothing.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import { pipeArguments } from "effect/Pipeable"
import { metricHooks, monotonicMillis } from "../../internal/effectInternals.ts"
import * as Inspect from "../../internal/inspect.ts"
import { isTracing } from "../../internal/shell.ts"
import * as algorithm from "./algorithm.ts"

/** @internal */
export interface Waiter {
  readonly lane: Lane
  readonly priority: boolean
  readonly enqueuedAt: number
  readonly onAdmit: ((now: number) => void) | undefined
  resume: ((effect: Effect.Effect<void, unknown>) => void) | undefined
  prev: Waiter | undefined
  next: Waiter | undefined
}

/** A FIFO list of waiters. @internal */
class WaiterList {
  head: Waiter | undefined = undefined
  tail: Waiter | undefined = undefined
  size = 0
  push(w: Waiter): void {
    w.prev = this.tail
    w.next = undefined
    if (this.tail) this.tail.next = w
    else this.head = w
    this.tail = w
    this.size++
  }
  remove(w: Waiter): void {
    if (w.prev) w.prev.next = w.next
    else this.head = w.next
    if (w.next) w.next.prev = w.prev
    else this.tail = w.prev
    w.prev = w.next = undefined
    this.size--
  }
}

/** One key's queue and (optional) algorithm. @internal */
export class Lane {
  readonly waiters = new WaiterList()
  /** waiters of any kind holding this lane (it is not swept while > 0) */
  refs = 0
  /** links in the ring of lanes that have ordinary waiters */
  ringPrev: Lane | undefined = undefined
  ringNext: Lane | undefined = undefined
  constructor(
    readonly key: string | undefined,
    public alg: algorithm.Algorithm | undefined
  ) {}
}

/** @internal */
export interface Stats {
  readonly queued: number
  readonly priorityQueued: number
  readonly admitted: number
  readonly rejected: number
  readonly inWindow: number
  readonly available: number
  readonly keys: number
  readonly nextAdmissionInMillis: number | undefined
}

/** @internal */
export interface CoreOptions {
  readonly name: string
  readonly limits: algorithm.Limits
  readonly perKey: algorithm.Limits | undefined
  readonly maxQueue: number
  readonly clock: Clock.Clock
  readonly context: Context.Context<never>
  /** a constraint besides the rate, checked for ordinary waiters only */
  readonly gate?: (() => boolean) | undefined
  readonly queueFull: (key: string | undefined, maxQueue: number, retryAfterMillis: number) => unknown
}

/** @internal */
export const TypeId = "~effect-otp/RateLimiter"

/**
 * An update function for one metric series, resolved once: Effect's metrics
 * look the series up in the registry on every update, which is most of the
 * cost of an admission on the fast path. Falls back to `updateUnsafe` if the
 * metric does not expose its hooks.
 */
const bind = <I>(metric: Metric.Metric<I, unknown>, context: Context.Context<never>): ((input: I) => void) => {
  const hook = (metric as unknown as { hook?: (c: Context.Context<never>) => Metric.Metric.Hooks<I, unknown> }).hook
  if (typeof hook === "function") {
    const hooks = hook.call(metric, context)
    if (hooks !== undefined && typeof hooks.update === "function") return (input) => hooks.update(input, context)
  }
  return (input) => metric.updateUnsafe(input, context)
}

const waitBoundaries = Metric.exponentialBoundaries({ start: 1, factor: 2, count: 18 })

/** The series a metric updates in this context (the registry's), or undefined if the metric does not expose it. */
const hookOf = metricHooks

/**
 * The admissions counter and the wait histogram of the limiters of one name,
 * kept as plain numbers and registered as the state of their two metric
 * series (`Metric.registerUnsafe`): the state is computed when a metric is
 * read. An admission with no wait (the fast path) adds 1 to two integers,
 * where updating Effect's series cost a registry look-up per metric and a
 * bucket search — as much as the rest of the admission. Limiters with the
 * same name share one `Series`, as they shared one metric series.
 */
class Series {
  admissions = 0
  /** waits of 0 ms not yet put in their bucket */
  zeros = 0
  count = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE
  /** per bucket (not cumulative); the last one is for values above every bound */
  readonly counts: Array<number>
  readonly counterGet = () => ({ count: this.admissions, incremental: true })
  readonly histogramGet = () => {
    this.flush()
    const buckets: Array<[number, number]> = []
    let cumulated = 0
    for (let i = 0; i < this.bounds.length; i++) {
      cumulated += this.counts[i]!
      buckets.push([this.bounds[i]!, cumulated])
    }
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }
  constructor(readonly bounds: ReadonlyArray<number>) {
    this.counts = new Array(bounds.length + 1).fill(0)
  }
  /** Records a wait, in the bucket of the first bound it does not exceed (as Effect's histogram does). */
  observe(value: number): void {
    let i = 0
    while (i < this.bounds.length && !(value <= this.bounds[i]!)) i++
    this.counts[i]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }
  flush(): void {
    if (this.zeros === 0) return
    const zeros = this.zeros
    this.zeros = 0
    let i = 0
    while (i < this.bounds.length && !(0 <= this.bounds[i]!)) i++
    this.counts[i]! += zeros
    this.count += zeros
    if (0 < this.min) this.min = 0
    if (0 > this.max) this.max = 0
  }
  /** Starts from a series Effect already kept (someone read or updated it before any limiter of this name). */
  seed(counter: unknown, histogram: unknown): void {
    const c = counter as { count?: unknown } | undefined
    if (typeof c?.count === "number") this.admissions = c.count
    const h = histogram as
      | { buckets?: ReadonlyArray<readonly [number, number]>; count: number; sum: number; min: number; max: number }
      | undefined
    if (h === undefined || typeof h.count !== "number" || h.count === 0 || !Array.isArray(h.buckets)) return
    let previous = 0
    for (const [bound, cumulated] of h.buckets) {
      const i = this.bounds.indexOf(bound)
      if (i >= 0) this.counts[i]! += cumulated - previous
      previous = cumulated
    }
    this.counts[this.bounds.length]! += h.count - previous
    this.count = h.count
    this.sum = h.sum
    this.min = h.min
    this.max = h.max
  }
}

/** The Series registered as each histogram series' state, by its `get`. */
const seriesByGet = new WeakMap<object, Series>()

/**
 * The Series of these two metrics in this context: the one registered by a
 * limiter of the same name, or a new one, registered. Undefined when the
 * metrics do not expose their series (the limiter then updates them one by one).
 */
const seriesOf = (
  counter: Metric.Metric<number, unknown>,
  histogram: Metric.Metric<number, unknown>,
  bounds: ReadonlyArray<number>,
  context: Context.Context<never>
): Series | undefined => {
  const h = hookOf(histogram, context)
  const c = hookOf(counter, context)
  if (h === undefined || c === undefined) return undefined
  const existing = seriesByGet.get(h.get)
  if (existing !== undefined) {
    if (c.get !== existing.counterGet) {
      Metric.registerUnsafe(counter, context, { get: existing.counterGet, update: constVoid, modify: constVoid })
    }
    return existing
  }
  const series = new Series([...bounds].sort((a, b) => a - b))
  series.seed(c.get(context), h.get(context))
  Metric.registerUnsafe(counter, context, { get: series.counterGet, update: constVoid, modify: constVoid })
  Metric.registerUnsafe(histogram, context, { get: series.histogramGet, update: constVoid, modify: constVoid })
  seriesByGet.set(series.histogramGet, series)
  return series
}

const constVoid = (): void => {}

/** @internal */
export class Core implements Inspect.Inspector {
  readonly [TypeId] = TypeId
  readonly kind = "RateLimiter" as const
  readonly [Inspect.TypeId]: Inspect.Inspector = this
  readonly name: string
  readonly global: algorithm.Algorithm
  perKey: algorithm.Limits | undefined
  maxQueue: number
  readonly lanes = new Map<string | undefined, Lane>()
  readonly priority = new WaiterList()
  /** the lane served next in the round-robin */
  cursor: Lane | undefined = undefined
  queued = 0
  admitted = 0
  rejected = 0
  closed: Effect.Effect<never, unknown> | undefined = undefined
  timer: { at: number; fiber: Fiber.Fiber<unknown> } | undefined = undefined
  gate: (() => boolean) | undefined
  private draining = false
  private again = false
  private sweepAt = 1024
  /** the lane of requests without a key, while it is in `lanes` */
  private anon: Lane | undefined = undefined
  /** `take(undefined, false)`, built once: it holds no state of its own */
  private readonly takeAnon: Effect.Effect<void, unknown>
  readonly now: () => number
  readonly clock: Clock.Clock
  readonly context: Context.Context<never>
  readonly queueFull: (key: string | undefined, maxQueue: number, retryAfterMillis: number) => unknown
  /** the admissions counter and wait histogram, when they can be kept as plain numbers */
  readonly series: Series | undefined
  readonly m: {
    readonly depth: (n: number) => void
    readonly wait: (millis: number) => void
    readonly admissions: (n: number) => void
    readonly rejections: (n: number) => void
  }

  constructor(options: CoreOptions) {
    this.name = options.name
    this.global = algorithm.make(options.limits)
    this.perKey = options.perKey
    this.maxQueue = options.maxQueue
    this.clock = options.clock
    this.context = options.context
    this.gate = options.gate
    this.queueFull = options.queueFull
    const clock = options.clock
    this.now = monotonicMillis(clock)
    this.takeAnon = Effect.suspend(() => this.takeUnsafe(undefined, false, undefined))
    const attributes = { limiter: options.name }
    const context = options.context
    const wait = Metric.histogram("effect_otp_limiter_wait_millis", {
      description: "how long admitted requests waited, in milliseconds",
      attributes,
      boundaries: waitBoundaries
    })
    const admissions = Metric.counter("effect_otp_limiter_admissions_total", {
      description: "requests admitted (starts)",
      attributes,
      incremental: true
    })
    this.series = seriesOf(admissions, wait, waitBoundaries, context)
    this.m = {
      depth: bind(
        Metric.gauge("effect_otp_limiter_queue_depth", {
          description: "requests waiting in the rate limiter's queue",
          attributes
        }),
        context
      ),
      wait: bind(wait, context),
      admissions: bind(admissions, context),
      rejections: bind(
        Metric.counter("effect_otp_limiter_rejections_total", {
          description: "requests rejected: the queue was full, or tryTake could not be admitted at once",
          attributes,
          incremental: true
        }),
        context
      )
    }
  }

  pipe() {
    return pipeArguments(this, arguments)
  }

  toJSON(): unknown {
    return { _id: "RateLimiter", name: this.name, limits: this.global.limits, perKey: this.perKey, ...this.stats() }
  }

  lane(key: string | undefined): Lane {
    if (key === undefined && this.anon !== undefined) return this.anon
    let lane = this.lanes.get(key)
    if (lane === undefined) {
      if (this.lanes.size >= this.sweepAt) this.sweep()
      lane = new Lane(key, this.perKey === undefined ? undefined : algorithm.make(this.perKey))
      this.lanes.set(key, lane)
    }
    if (key === undefined) this.anon = lane
    return lane
  }

  /** Forgets lanes nobody waits in whose algorithm remembers nothing that matters. */
  sweep(): void {
    const now = this.now()
    for (const [key, lane] of this.lanes) {
      if (lane.refs === 0 && (lane.alg === undefined || lane.alg.idle(now))) {
        this.lanes.delete(key)
        if (lane === this.anon) this.anon = undefined
      }
    }
    this.sweepAt = Math.max(1024, this.lanes.size * 2)
  }

  // ---- the ring of lanes with ordinary waiters ------------------------------

  private link(lane: Lane): void {
    const c = this.cursor
    if (c === undefined) {
      lane.ringPrev = lane.ringNext = lane
      this.cursor = lane
      return
    }
    // join at the end of the current round: just before the cursor
    const last = c.ringPrev!
    lane.ringPrev = last
    lane.ringNext = c
    last.ringNext = lane
    c.ringPrev = lane
  }

  private unlink(lane: Lane): void {
    if (lane.ringNext === lane) {
      this.cursor = undefined
    } else {
      lane.ringPrev!.ringNext = lane.ringNext
      lane.ringNext!.ringPrev = lane.ringPrev
      if (this.cursor === lane) this.cursor = lane.ringNext
    }
    lane.ringPrev = lane.ringNext = undefined
  }

  // ---- waiters ----------------------------------------------------------------

  private enqueue(w: Waiter): void {
    w.lane.refs++
    if (w.priority) {
      this.priority.push(w)
      return
    }
    w.lane.waiters.push(w)
    if (w.lane.waiters.size === 1) this.link(w.lane)
    this.queued++
    this.m.depth(this.queued)
  }

  private dequeue(w: Waiter): void {
    w.lane.refs--
    if (w.priority) {
      this.priority.remove(w)
      return
    }
    const lane = w.lane
    lane.waiters.remove(w)
    if (lane.waiters.size === 0) this.unlink(lane)
    this.queued--
    this.m.depth(this.queued)
  }

  /** A waiter gave up (interrupted): it leaves, having consumed nothing. */
  private abandon(w: Waiter): void {
    if (w.resume === undefined) return
    w.resume = undefined
    this.dequeue(w)
    if (this.queued === 0 && this.priority.size === 0) this.cancelTimer()
  }

  private admit(w: Waiter, now: number): void {
    this.dequeue(w)
    this.global.admit(now)
    w.lane.alg?.admit(now)
    this.admitted++
    if (this.series !== undefined) {
      this.series.admissions++
      this.series.observe(now - w.enqueuedAt)
    } else {
      this.m.admissions(1)
      this.m.wait(now - w.enqueuedAt)
    }
    w.onAdmit?.(now)
    const resume = w.resume!
    w.resume = undefined
    resume(Effect.void)
  }

  /**
   * Waits for admission. `priority` waiters (restarts) go before every
   * ordinary one, skip the gate and are never rejected for a full queue.
   */
  take(key: string | undefined, priority: boolean, onAdmit?: (now: number) => void): Effect.Effect<void, unknown> {
    if (key === undefined && !priority && onAdmit === undefined) return this.takeAnon
    return Effect.suspend(() => this.takeUnsafe(key, priority, onAdmit))
  }

  /** `take`, then `effect`: one step when the request is admitted at once. */
  run<A, E, R>(effect: Effect.Effect<A, E, R>, key: string | undefined): Effect.Effect<A, unknown, R> {
    return Effect.suspend(() => {
      const admission = this.takeUnsafe(key, false, undefined)
      return admission === Effect.void ? effect : Effect.andThen(admission, effect)
    })
  }

  /**
   * The body of `take`, run when the request is made: `Effect.void` when it
   * is admitted at once, else the effect that waits (or fails).
   */
  takeUnsafe(
    key: string | undefined,
    priority: boolean,
    onAdmit: ((now: number) => void) | undefined
  ): Effect.Effect<void, unknown> {
    if (this.closed !== undefined) return this.closed
    const now = this.now()
    const lane = this.lane(key)
    if (
      this.queued === 0 &&
      this.priority.size === 0 &&
      (priority || this.gate === undefined || this.gate()) &&
      this.global.canAdmit(now) &&
      (lane.alg === undefined || lane.alg.canAdmit(now))
    ) {
      // fast path: nobody is waiting and every constraint allows it now
      this.global.admit(now)
      lane.alg?.admit(now)
      this.admitted++
      const series = this.series
      if (series !== undefined) {
        series.admissions++
        series.zeros++
      } else {
        this.m.admissions(1)
        this.m.wait(0)
      }
      onAdmit?.(now)
      return Effect.void
    }
    if (!priority && this.queued >= this.maxQueue) {
      this.rejected++
      this.m.rejections(1)
      // a place in the queue frees when the request at its head is admitted
      return Effect.fail(this.queueFull(key, this.maxQueue, Math.max(0, this.global.nextAt(now) - now)))
    }
    const waiting = Effect.callback<void, unknown>((resume) => {
      const w: Waiter = { lane, priority, enqueuedAt: now, onAdmit, resume, prev: undefined, next: undefined }
      this.enqueue(w)
      this.drain()
      return Effect.sync(() => this.abandon(w))
    })
    // a request that waits gets a span for the wait, in its caller's trace, when spans go anywhere
    return Effect.withFiber((fiber) =>
      isTracing(fiber.context)
        ? Effect.withSpan(waiting, "RateLimiter.wait", {
            attributes: {
              limiter: this.name,
              "limiter.key": key ?? null,
              "limiter.queued": this.queued,
              "limiter.priority": priority
            }
          })
        : waiting
    )
  }

  /** The work admitted at `at` (for `key`) begins now: the admission is moved to now, which is returned. */
  retime(key: string | undefined, at: number): number {
    const now = this.now()
    if (!(now > at)) return at
    this.global.retime(at, now)
    this.lanes.get(key)?.alg?.retime(at, now)
    return now
  }

  /**
   * Admits at once when `take` would (its turn comes now, round-robin
   * included), or fails with `exceeded(retryAfterMillis)`, never queuing. The
   * wait is this key's: when its limits and the global ones next allow one
   * admission (a lower bound while others wait: they go first).
   */
  tryTake(key: string | undefined, exceeded: (retryAfterMillis: number) => unknown): Effect.Effect<void, unknown> {
    return Effect.suspend(() => {
      if (this.closed !== undefined) return this.closed
      const now = this.now()
      const lane = this.lane(key)
      let admitted = false
      const w: Waiter = {
        lane,
        priority: false,
        enqueuedAt: now,
        onAdmit: undefined,
        resume: () => {
          admitted = true
        },
        prev: undefined,
        next: undefined
      }
      // join the queue for one admission step: admitted only if its turn comes now
      this.enqueue(w)
      this.drain()
      if (admitted) return Effect.void
      this.abandon(w)
      const at = Math.max(this.global.nextAt(now), lane.alg === undefined ? now : lane.alg.nextAt(now))
      this.rejected++
      this.m.rejections(1)
      return Effect.fail(exceeded(Math.max(0, at - now)))
    })
  }

  // ---- admission ----------------------------------------------------------------

  /** Admits every waiter that can be admitted now, then arms the timer for the next. */
  drain(): void {
    if (this.draining) {
      this.again = true
      return
    }
    this.draining = true
    try {
      do {
        this.again = false
        this.step()
      } while (this.again)
    } finally {
      this.draining = false
    }
  }

  private step(): void {
    while (this.closed === undefined) {
      const now = this.now()
      if (this.priority.size === 0 && this.queued === 0) return this.cancelTimer()
      if (!this.global.canAdmit(now)) return this.arm(this.earliest(now))
      // restarts first, in order, unless their own key holds them back
      let pick: Waiter | undefined = undefined
      for (let w = this.priority.head; w !== undefined; w = w.next) {
        if (w.lane.alg === undefined || w.lane.alg.canAdmit(now)) {
          pick = w
          break
        }
      }
      if (pick === undefined && this.queued > 0 && (this.gate === undefined || this.gate())) {
        let lane = this.cursor!
        for (let i = 0; i < 1 || lane !== this.cursor; i++) {
          if (lane.alg === undefined || lane.alg.canAdmit(now)) {
            pick = lane.waiters.head
            // the next round starts after this lane
            this.cursor = lane.ringNext
            break
          }
          lane = lane.ringNext!
        }
      }
      if (pick === undefined) return this.arm(this.earliest(now))
      this.admit(pick, now)
    }
  }

  /** The earliest time a waiter that is not held by the gate can be admitted. */
  private earliest(now: number): number {
    const g = this.global.nextAt(now)
    let at = Infinity
    for (let w = this.priority.head; w !== undefined; w = w.next) {
      at = Math.min(at, w.lane.alg === undefined ? g : Math.max(g, w.lane.alg.nextAt(now)))
    }
    if (this.queued > 0 && (this.gate === undefined || this.gate())) {
      let lane = this.cursor!
      do {
        at = Math.min(at, lane.alg === undefined ? g : Math.max(g, lane.alg.nextAt(now)))
        lane = lane.ringNext!
      } while (lane !== this.cursor)
    }
    return at
  }

  private arm(at: number): void {
    if (at === Infinity) return this.cancelTimer()
    if (this.timer !== undefined) {
      if (this.timer.at <= at) return
      this.timer.fiber.interruptUnsafe()
    }
    const now = this.now()
    const timer = {
      at,
      fiber: undefined as unknown as Fiber.Fiber<unknown>
    }
    this.timer = timer
    timer.fiber = Effect.runForkWith(this.context)(
      Effect.andThen(
        this.clock.sleep(Duration.millis(Math.max(0, at - now))),
        Effect.sync(() => {
          if (this.timer === timer) this.timer = undefined
          this.drain()
        })
      )
    )
  }

  private cancelTimer(): void {
    if (this.timer === undefined) return
    const fiber = this.timer.fiber
    this.timer = undefined
    fiber.interruptUnsafe()
  }

  // ---- control --------------------------------------------------------------------

  setLimits(limits: algorithm.Limits, perKey: algorithm.Limits | undefined, maxQueue: number): void {
    const now = this.now()
    this.global.reconfigure(limits, now)
    this.perKey = perKey
    this.maxQueue = maxQueue
    for (const lane of this.lanes.values()) {
      if (perKey === undefined) lane.alg = undefined
      else if (lane.alg === undefined) lane.alg = algorithm.make(perKey)
      else lane.alg.reconfigure(perKey, now)
    }
    // an earlier time may be possible now: re-plan from scratch
    this.cancelTimer()
    this.drain()
  }

  /** Fails every waiter with `failure` and refuses new ones. */
  close(failure: Effect.Effect<never, unknown>): void {
    if (this.closed !== undefined) return
    this.closed = failure
    this.cancelTimer()
    const all: Array<Waiter> = []
    for (let w = this.priority.head; w !== undefined; w = w.next) all.push(w)
    for (const lane of this.lanes.values()) {
      for (let w = lane.waiters.head; w !== undefined; w = w.next) all.push(w)
    }
    for (const w of all) {
      const resume = w.resume
      if (resume === undefined) continue
      w.resume = undefined
      this.dequeue(w)
      resume(failure)
    }
  }

  snapshot(): Inspect.NodeSnapshot {
    const s = this.stats()
    return {
      kind: "RateLimiter",
      type: "worker",
      name: this.name,
      id: this.name,
      state: this.closed === undefined ? "running" : "stopped",
      restarts: 0,
      stats: {
        admitted: s.admitted,
        queued: s.queued,
        priorityQueued: s.priorityQueued,
        rejected: s.rejected,
        inWindow: s.inWindow,
        available: s.available,
        keys: s.keys,
        nextAdmissionInMillis: s.nextAdmissionInMillis ?? null
      },
      children: []
    }
  }

  /** A limiter has no children: no lifecycle events. */
  subscribe(_listener: (event: Inspect.InspectEvent) => void): () => void {
    return constVoid
  }

  childInspectors(): ReadonlyArray<Inspect.Inspector> {
    return []
  }

  stats(): Stats {
    const now = this.now()
    const next = this.queued + this.priority.size > 0 ? this.earliest(now) : undefined
    return {
      queued: this.queued,
      priorityQueued: this.priority.size,
      admitted: this.admitted,
      rejected: this.rejected,
      inWindow: this.global.inWindow(now),
      available: this.global.available(now),
      keys: this.lanes.size,
      nextAdmissionInMillis: next === undefined || next === Infinity ? undefined : Math.max(0, next - now)
    }
  }
}
