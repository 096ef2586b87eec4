/**
 * The pool's machinery: a synchronous state machine (idle list, FIFO waiter
 * queue, counters) driven by the public operations, plus background fibers
 * that only run on slow paths: connection creation and destruction (through
 * the DynamicSupervisor), the checkout-timeout sweeper, the idle reaper, the
 * background health checks and the connect backoff. Checkout and checkin of an
 * idle connection never leave this file's synchronous code.
 *
 * Every deadline and interval is read from the Clock's *monotonic* reading
 * (`performance.now()` when the default Clock is in use, the same source
 * without a BigInt), so a wall-clock step (NTP, a VM resumed) changes nothing;
 * wall time is only used for the timestamps of inspection events.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import { pipeArguments } from "effect/Pipeable"
import * as Schedule from "effect/Schedule"
import * as ChildSpec from "../../Supervisor/ChildSpec.ts"
import * as DynamicSupervisor from "../../Supervisor/DynamicSupervisor.ts"
import { backoffDelay } from "../../internal/backoff.ts"
import { metricHooks, monotonicMillis } from "../../internal/effectInternals.ts"
import * as Inspect from "../../internal/inspect.ts"
import { type BackoffState, newBackoffState, Restarts } from "../../internal/policy.ts"

// ---- errors ------------------------------------------------------------------

/**
 * A caller waited `checkoutTimeout` and got no connection: the pool was at
 * capacity, or it could not open a connection (the database was down) and
 * was backing off. It took nothing: the pool is as before. When connects were
 * failing, `cause` is the last connect failure (the `connect` error, or the
 * defect it died with).
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolTimeout extends Data.TaggedError("PoolTimeout")<{
  /** The pool's name. */
  readonly pool: string
  /** How long the caller waited, in milliseconds. */
  readonly waitedMillis: number
  /** The last connect failure, when the pool's connects were failing while the caller waited. */
  readonly cause?: unknown
}> {
  override get message(): string {
    const base = `pool ${JSON.stringify(this.pool)}: no connection became free within ${this.waitedMillis} ms`
    if (this.cause === undefined) return base
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `${base} (last connect failure: ${reason})`
  }
}

/**
 * The pool is busy (no idle connection, no room to open one) and `maxWaiting`
 * callers are already queued, so this one was refused at once.
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolFull extends Data.TaggedError("PoolFull")<{
  readonly pool: string
  readonly maxWaiting: number
}> {
  override get message(): string {
    return `pool ${JSON.stringify(this.pool)} is busy and ${this.maxWaiting} callers are already waiting`
  }
}

/**
 * The pool is closing or closed: it hands out no more connections. A typed
 * error rather than an interruption, so callers can tell it from their own
 * cancellation.
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolClosed extends Data.TaggedError("PoolClosed")<{
  readonly pool: string
}> {
  override get message(): string {
    return `pool ${JSON.stringify(this.pool)} is closed`
  }
}

// ---- model -------------------------------------------------------------------

/** @internal */
export type ConnState = "starting" | "idle" | "leased" | "closing" | "closed"

/** One connection: a supervised child whose handle is this record. @internal */
export class Conn<A> {
  value: A = undefined as A
  state: ConnState = "starting"
  /** connect succeeded (it counts as created and open) */
  opened = false
  child: DynamicSupervisor.Child<Conn<A>> | undefined = undefined
  /** monotonic ms */
  idleSince = 0
  /** monotonic ms of the last passed health check (or of the connect) */
  checkedAt = 0
  /** wall ms when the connect succeeded (inspection) */
  startedAt = 0
  /** invalidated while leased: destroy when returned */
  invalid = false
  /** its `run` body ended: it is dead, whatever its state says; never handed out again */
  dead = false
  /** handed out straight from a creation: no health check needed */
  fresh = true
  /** bumped on every lease, so a stale checkin is recognised */
  lease = 0
  /** the pool-wide number of this connection's latest lease (lease order, for tests) */
  leaseSeq = 0
  /** how its incarnation ended (inspection) */
  exit: Exit.Exit<unknown, unknown> | undefined = undefined
  constructor(readonly seq: number) {}
}

/** @internal */
export interface Waiter<A> {
  state: "waiting" | "served" | "cancelled"
  resume: ((effect: Effect.Effect<Conn<A>, any>) => void) | undefined
  /** how it ended, when that happened before it suspended */
  result: Effect.Effect<Conn<A>, any> | undefined
  conn: Conn<A> | undefined
  /** a connection is being created for this caller: the checkout timeout does not apply */
  exempt: boolean
  /** the connection it was handed came back from another borrower: health-check it before use */
  handedOff: boolean
  /** monotonic ms */
  readonly enqueuedAt: number
}

/** @internal */
export interface Stats {
  readonly open: number
  readonly idle: number
  readonly inUse: number
  readonly creating: number
  readonly waiting: number
  readonly created: number
  readonly destroyed: number
  readonly timeouts: number
}

/** Validated options. @internal */
export interface Config<A, E> {
  readonly name: string
  readonly connect: Effect.Effect<A, E, any>
  readonly run: ((conn: A) => Effect.Effect<unknown, unknown, any>) | undefined
  readonly min: number
  readonly max: number
  readonly idleTimeoutMillis: number
  readonly checkoutTimeoutMillis: number
  readonly maxWaiting: number
  readonly strategy: "lifo" | "fifo"
  readonly healthCheck: ((conn: A) => Effect.Effect<unknown, unknown, any>) | undefined
  readonly healthCheckIntervalMillis: number
  readonly reset: ((conn: A, cause: Cause.Cause<unknown>) => Effect.Effect<unknown, unknown, any>) | undefined
  readonly connectBackoff: Schedule.Schedule<unknown, number, any, any> | undefined
  readonly closeTimeout: ChildSpec.Shutdown
  readonly drainTimeoutMillis: number
}

/** The largest `max` accepted: no process holds 2^31 connections. @internal */
export const maxConnections = 2 ** 31 - 1

/**
 * At most this many connects in flight to keep `min` connections open: a large
 * `min` is opened in batches, never in one synchronous loop. @internal
 */
export const minBatch = 64

// ---- metrics -------------------------------------------------------------------

const waitBoundaries = Metric.exponentialBoundaries({ start: 1, factor: 2, count: 16 })

/** The metric definitions; `attributes` is given per pool (set at construction, not per update). @internal */
const defineMetrics = (attributes?: Metric.Metric.Attributes) => ({
  open: Metric.gauge("effect_otp_pool_open", {
    description: "connections open (idle, in use or closing)",
    attributes
  }),
  idle: Metric.gauge("effect_otp_pool_idle", { description: "idle connections", attributes }),
  inUse: Metric.gauge("effect_otp_pool_in_use", { description: "connections checked out", attributes }),
  waiting: Metric.gauge("effect_otp_pool_waiting", { description: "callers waiting for a connection", attributes }),
  waitTime: Metric.histogram("effect_otp_pool_wait_millis", {
    description: "how long callers that had to wait waited for a connection (ms)",
    boundaries: waitBoundaries,
    attributes
  }),
  created: Metric.counter("effect_otp_pool_created_total", {
    description: "connections opened",
    incremental: true,
    attributes
  }),
  destroyed: Metric.counter("effect_otp_pool_destroyed_total", {
    description: "connections closed",
    incremental: true,
    attributes
  }),
  timeouts: Metric.counter("effect_otp_pool_timeouts_total", {
    description: "checkouts that failed with PoolTimeout",
    incremental: true,
    attributes
  }),
  connectFailures: Metric.counter("effect_otp_pool_connect_failures_total", {
    description: "connect attempts that failed",
    incremental: true,
    attributes
  })
})

/** @internal */
export const metrics = defineMetrics()

/**
 * The state Effect already keeps for a metric series in this context (read before replacing it), through
 * the one fenced reliance on a metric's series hooks (src/internal/effectInternals.ts, reliance 3).
 */
const stateOf = (metric: Metric.Metric<any, any>, context: Context.Context<never>): unknown => {
  try {
    return metricHooks(metric, context)?.get(context)
  } catch {
    return undefined
  }
}

const constVoid = (): void => {}

/**
 * The wait-time histogram as plain numbers: a bucket search per waited
 * checkout and nothing else (Effect's series would add a registry look-up).
 */
class Histogram {
  count = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE
  /** per bucket, not cumulative */
  readonly counts: Array<number>
  constructor(readonly bounds: ReadonlyArray<number>) {
    this.counts = new Array(bounds.length).fill(0)
  }
  observe(value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length - 1 && !(value <= bounds[i]!)) i++
    this.counts[i]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }
  seed(state: unknown): void {
    const h = state as
      | { buckets?: ReadonlyArray<readonly [number, number]>; count: number; sum: number; min: number; max: number }
      | undefined
    if (h === undefined || typeof h.count !== "number" || h.count === 0 || !Array.isArray(h.buckets)) return
    let previous = 0
    for (const [bound, cumulated] of h.buckets) {
      const i = this.bounds.indexOf(bound)
      if (i >= 0) this.counts[i]! += cumulated - previous
      previous = cumulated
    }
    this.count += h.count
    this.sum += h.sum
    this.min = Math.min(this.min, h.min)
    this.max = Math.max(this.max, h.max)
  }
  state() {
    const buckets: Array<[number, number]> = []
    let cumulated = 0
    for (let i = 0; i < this.bounds.length; i++) {
      cumulated += this.counts[i]!
      buckets.push([this.bounds[i]!, cumulated])
    }
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }
}

const counterBase = (state: unknown): number => {
  const c = state as { count?: unknown } | undefined
  return typeof c?.count === "number" ? c.count : 0
}

// ---- backoff -------------------------------------------------------------------

/** The default connect backoff: 100 ms doubling, at most 500 ms (one probe connect per delay: a recovered database is found within half a second). @internal */
export const defaultBackoff = { minMillis: 100, maxMillis: 500, factor: 2 } as const

// ---- hand-off -------------------------------------------------------------------

/** Completes a waiter, now or when it suspends. @internal */
export const settle = <A>(w: Waiter<A>, effect: Effect.Effect<Conn<A>, any>): void => {
  const resume = w.resume
  if (resume === undefined) {
    w.result = effect
    return
  }
  w.resume = undefined
  // Resuming runs the waiter's fiber synchronously, at once: deferring every
  // hand-off to the scheduler makes callers convoy behind each other (measured:
  // 100 callers on 10 connections fell from 1.5M to 0.4M ops/s). Callers settle
  // waiters only after their own bookkeeping, so re-entering the pool is safe.
  // A chain of hand-offs (each resumed waiter returning its connection to the
  // next) nests up to `maxDepth`; deeper ones are trampolined by the outermost
  // call, so the stack stays bounded, and past `maxBatch` trampolined hand-offs
  // the rest go through the scheduler, so a chain cannot starve other fibers.
  if (depth === 0) {
    depth = 1
    batch = 0
    try {
      resume(effect)
      for (let i = 0; i < pending.length; i += 2) {
        batch++
        ;(pending[i] as (e: Effect.Effect<unknown, unknown>) => void)(pending[i + 1] as Effect.Effect<unknown, unknown>)
      }
    } finally {
      pending.length = 0
      depth = 0
    }
    return
  }
  if (depth < maxDepth) {
    depth++
    try {
      resume(effect)
    } finally {
      depth--
    }
    return
  }
  if (batch < maxBatch) {
    pending.push(resume, effect)
    return
  }
  resume(Effect.andThen(Effect.yieldNow, effect))
}

let depth = 0
let batch = 0
const maxDepth = 128
const maxBatch = 4096
const pending: Array<unknown> = []

// ---- timers -----------------------------------------------------------------

/**
 * A background loop that sleeps until its next deadline, parks when it has
 * none, and can be woken early when a deadline earlier than the one it sleeps
 * for appears (`poke`).
 */
class Timer {
  /** monotonic ms it waits for; Infinity while parked; -1 while it runs (it will see the new state itself) */
  target = -1
  wake: (() => void) | undefined = undefined
  /** poked before its wake-up was registered */
  poked = false
  /** Wakes the loop if `due` comes before what it waits for (a parked loop: any due). */
  poke(due: number): void {
    if (!(due < this.target)) return
    const wake = this.wake
    if (wake === undefined) {
      this.poked = true
      return
    }
    this.wake = undefined
    this.target = -1
    wake()
  }
}

const signal = (timer: Timer) =>
  Effect.callback<void>((resume) => {
    if (timer.poked) {
      timer.poked = false
      return resume(Effect.void)
    }
    timer.wake = () => resume(Effect.void)
    return Effect.sync(() => {
      timer.wake = undefined
    })
  })

// ---- the pool ------------------------------------------------------------------

/** @internal */
export const TypeId = "~effect-otp/Pool"

/** @internal */
export class PoolImpl<A, E> implements Inspect.Inspectable {
  readonly [TypeId] = TypeId
  state: "open" | "closing" | "closed" = "open"
  readonly idle: Array<Conn<A>> = []
  readonly byValue = new Map<A, Conn<A>>()
  /** every connection started (connecting or opened) and not yet released */
  readonly all = new Set<Conn<A>>()
  // FIFO waiter queue: array + head index, cancelled entries skipped lazily
  queue: Array<Waiter<A>> = []
  head = 0
  waiting = 0
  exempt = 0
  open = 0
  closing = 0
  creating = 0
  inUse = 0
  created = 0
  destroyed = 0
  timeouts = 0
  connectFailures = 0
  leases = 0
  seq = 0
  // connect backoff: set by a failed connect, cleared by its timer
  backingOff = false
  failures = 0
  /** the last connect failure; undefined once a connect succeeds (while set, connects are single probes) */
  lastFailure: Cause.Cause<E> | undefined = undefined
  lastDelay: number | undefined = undefined
  /** the kernel's backoff interpreter, for a `connectBackoff` schedule */
  readonly restarts: Restarts | undefined
  readonly backoff: BackoffState
  // background fibers
  readonly fibers = new Set<Fiber.Fiber<unknown, unknown>>()
  readonly sweeper = new Timer()
  readonly reaper = new Timer()
  readonly checker = new Timer()
  onDrained: (() => void) | undefined = undefined
  readonly waits = new Histogram(waitBoundaries)
  readonly m: { readonly [K in keyof typeof metrics]: Metric.Metric<number, unknown> }
  readonly registrations: Array<Metric.Registration> = []
  /** monotonic milliseconds */
  readonly now: () => number
  listeners: Inspect.Listeners = undefined
  readonly [Inspect.TypeId]: Inspect.Inspector

  constructor(
    readonly config: Config<A, E>,
    readonly sup: DynamicSupervisor.DynamicSupervisor,
    readonly context: Context.Context<never>,
    readonly clock: Clock.Clock
  ) {
    // the Clock's monotonic reading (performance.now() on the default Clock): effectInternals reliance 5
    this.now = monotonicMillis(clock)
    this.backoff = newBackoffState(0)
    this.restarts =
      config.connectBackoff === undefined
        ? undefined
        : new Restarts(
            {
              maxRestarts: 0,
              maxSeconds: 0,
              backoff: config.connectBackoff as Schedule.Schedule<unknown, number>,
              // a successful connect starts the schedule afresh (opened), never the elapsed time
              resetAfterMillis: Infinity
            },
            this.now
          )
    // attributes fixed at construction: `withAttributes` would rebuild a context on every update
    this.m = defineMetrics({ pool: config.name })
    this.registerMetrics()
    const self = this
    this[Inspect.TypeId] = {
      kind: "Pool",
      name: config.name,
      snapshot: () => self.snapshot(),
      subscribe: (listener) => {
        const unsubscribe = Inspect.addListener(self, listener)
        self.forwardAbandoned()
        return () => {
          unsubscribe()
          if (self.listeners === undefined) self.stopForwarding()
        }
      },
      childInspectors: () => {
        const out: Array<Inspect.Inspector> = []
        for (const conn of self.all) {
          const i = conn.opened ? Inspect.inspectorOf(conn.value) : undefined
          if (i !== undefined) out.push(i)
        }
        return out
      }
    }
  }

  get name(): string {
    return this.config.name
  }

  pipe() {
    return pipeArguments(this, arguments)
  }

  toJSON(): unknown {
    return { _id: "Pool", name: this.config.name, state: this.state, stats: this.stats() }
  }

  wall(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  /** Runs `effect` in the background, from the next tick (never re-entering the caller). */
  fork(effect: Effect.Effect<unknown, unknown, any>): Fiber.Fiber<unknown, unknown> {
    const fiber = Effect.runForkWith(this.context)(
      Effect.andThen(Effect.yieldNow, effect) as Effect.Effect<unknown, unknown>
    )
    this.fibers.add(fiber)
    fiber.addObserver(() => this.fibers.delete(fiber))
    return fiber
  }

  stats(): Stats {
    return {
      open: this.open,
      idle: this.idle.length,
      inUse: this.inUse,
      creating: this.creating,
      waiting: this.waiting,
      created: this.created,
      destroyed: this.destroyed,
      timeouts: this.timeouts
    }
  }

  // ---- metrics ------------------------------------------------------------------

  /**
   * The pool's metrics are its own counters, registered as the state of their
   * series (`Metric.registerUnsafe`): the gauges are computed when read and
   * the counters and the histogram are plain numbers, so a checkout updates
   * no metric at all (a waited one adds to the histogram). Counters and the
   * histogram continue what an earlier pool of the same name counted.
   */
  registerMetrics(): void {
    const ctx = this.context
    const m = this.m
    const gauge = (metric: Metric.Metric<number, unknown>, get: () => number) =>
      this.registrations.push(
        Metric.registerUnsafe(metric, ctx, { get: () => ({ value: get() }), update: constVoid, modify: constVoid })
      )
    gauge(m.open, () => this.open)
    gauge(m.idle, () => this.idle.length)
    gauge(m.inUse, () => this.inUse)
    gauge(m.waiting, () => this.waiting)
    const counter = (metric: Metric.Metric<number, unknown>, get: () => number) => {
      const base = counterBase(stateOf(metric, ctx))
      Metric.registerUnsafe(metric, ctx, {
        get: () => ({ count: base + get(), incremental: true }),
        update: constVoid,
        modify: constVoid
      })
    }
    counter(m.created, () => this.created)
    counter(m.destroyed, () => this.destroyed)
    counter(m.timeouts, () => this.timeouts)
    counter(m.connectFailures, () => this.connectFailures)
    this.waits.seed(stateOf(m.waitTime, ctx))
    Metric.registerUnsafe(m.waitTime, ctx, { get: () => this.waits.state(), update: constVoid, modify: constVoid })
  }

  /** At close: the gauges go (they read 0 again), the counters keep their last figures without holding the pool. */
  unregisterMetrics(): void {
    for (const r of this.registrations) r.remove()
    this.registrations.length = 0
    const ctx = this.context
    const m = this.m
    const freeze = (metric: Metric.Metric<number, unknown>) => {
      const state = stateOf(metric, ctx)
      Metric.registerUnsafe(metric, ctx, { get: () => state, update: constVoid, modify: constVoid })
    }
    freeze(m.created)
    freeze(m.destroyed)
    freeze(m.timeouts)
    freeze(m.connectFailures)
    freeze(m.waitTime)
  }

  // ---- checkout ----------------------------------------------------------------

  /** Live connections that are not on their way out. */
  live(): number {
    return this.open - this.closing
  }

  headroom(): number {
    return this.config.max - this.open - this.creating
  }

  /** Waiters that no connection being created will serve. */
  uncovered(): number {
    return this.waiting > this.creating ? this.waiting - this.creating : 0
  }

  /**
   * The synchronous part of a checkout: an idle connection, an error, or a
   * waiter to suspend on.
   */
  tryCheckout(): Conn<A> | Waiter<A> | PoolClosed | PoolFull {
    if (this.state !== "open") return new PoolClosed({ pool: this.config.name })
    const idle = this.idle
    while (idle.length > 0) {
      const conn = this.config.strategy === "lifo" ? idle.pop()! : idle.shift()!
      if (conn.dead) {
        this.destroy(conn)
        continue
      }
      this.lease(conn)
      conn.fresh = false
      return conn
    }
    // a connect in flight that no earlier waiter will take serves this caller
    const covered = this.waiting < this.creating
    // while connects fail, nothing is created for a caller (the pool backs off and probes):
    // the caller waits, up to its checkout timeout, for the pool to reconnect
    const create = !covered && this.lastFailure === undefined && this.headroom() - this.uncovered() > 0
    if (!covered && !create && this.waiting - this.exempt >= this.config.maxWaiting) {
      return new PoolFull({ pool: this.config.name, maxWaiting: this.config.maxWaiting })
    }
    const waiter: Waiter<A> = {
      state: "waiting",
      resume: undefined,
      result: undefined,
      conn: undefined,
      exempt: false,
      handedOff: false,
      enqueuedAt: this.now()
    }
    this.queue.push(waiter)
    this.waiting++
    if (covered || create) {
      // a connection is being made for it: the checkout timeout does not apply (#84)
      waiter.exempt = true
      this.exempt++
      if (create) this.spawn()
    } else {
      // FIFO: its deadline is the latest, so only a parked sweeper wakes
      this.sweeper.poke(waiter.enqueuedAt + this.config.checkoutTimeoutMillis)
      // connects were failing and the backoff is over with nothing in flight (nobody was waiting when
      // it ended): this caller's arrival starts the next probe
      if (this.lastFailure !== undefined && !this.backingOff && this.creating === 0) this.refill()
    }
    return waiter
  }

  lease(conn: Conn<A>): void {
    conn.state = "leased"
    conn.lease++
    conn.leaseSeq = ++this.leases
    this.inUse++
  }

  /** The first waiter still waiting, removed from the queue. */
  dequeue(): Waiter<A> | undefined {
    const q = this.queue
    while (this.head < q.length) {
      const w = q[this.head]!
      q[this.head++] = undefined as any
      if (w.state === "waiting") {
        if (this.head > 1024 && this.head * 2 > q.length) {
          this.queue = q.slice(this.head)
          this.head = 0
        }
        return this.took(w)
      }
    }
    this.resetQueue()
    return undefined
  }

  /** Drops the queue's storage once nobody waits (cancelled entries are skipped lazily). */
  resetQueue(): void {
    if (this.waiting === 0 && this.queue.length > 0) {
      this.queue = []
      this.head = 0
    }
  }

  took(w: Waiter<A>): Waiter<A> {
    this.waiting--
    if (w.exempt) this.exempt--
    return w
  }

  /** A waiter was interrupted: it leaves the queue, and a connection it was just handed goes back. */
  cancel(w: Waiter<A>): void {
    if (w.state === "waiting") {
      w.state = "cancelled"
      this.waiting--
      if (w.exempt) {
        this.exempt--
        // a creation started for it goes on (D5): its connection serves the next waiter or goes idle
      }
      this.resetQueue()
      return
    }
    if (w.state === "served" && w.conn !== undefined) {
      const conn = w.conn
      w.conn = undefined
      this.checkin(conn, conn.lease, undefined)
    }
  }

  /**
   * Hands a connection that became available to the oldest waiter, or makes it
   * idle. A connection whose body ended (dead) goes nowhere but away.
   */
  deliver(conn: Conn<A>): void {
    if (this.state !== "open" || conn.dead) {
      this.destroy(conn)
      return
    }
    const w = this.dequeue()
    if (w !== undefined) {
      const fresh = conn.fresh
      conn.fresh = false
      this.lease(conn)
      w.state = "served"
      w.conn = conn
      w.handedOff = !fresh
      this.waits.observe(this.now() - w.enqueuedAt)
      settle(w, Effect.succeed(conn))
      return
    }
    conn.state = "idle"
    const now = this.now()
    conn.idleSince = now
    this.idle.push(conn)
    if (this.live() > this.config.min) this.reaper.poke(now + this.config.idleTimeoutMillis)
    if (this.config.healthCheckIntervalMillis !== Infinity) {
      this.checker.poke(conn.checkedAt + this.config.healthCheckIntervalMillis)
    }
  }

  /**
   * Returns a leased connection. `lease` must match the connection's current
   * lease (a forced close or a double checkin is ignored, #87). `failure` is
   * the borrower's failure, if it failed.
   */
  checkin(conn: Conn<A>, lease: number, failure: Cause.Cause<unknown> | undefined): Effect.Effect<void> | undefined {
    if (conn.state !== "leased" || conn.lease !== lease) return undefined
    if (conn.invalid || conn.dead) {
      this.unlease(conn)
      this.destroy(conn)
      return undefined
    }
    if (failure !== undefined) {
      const reset = this.config.reset
      if (reset === undefined) {
        // never hand out a connection in an unknown state (#86)
        this.unlease(conn)
        this.destroy(conn)
        return undefined
      }
      return Effect.exit(reset(conn.value, failure)).pipe(
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            if (conn.state !== "leased" || conn.lease !== lease) return
            this.unlease(conn)
            if (Exit.isSuccess(exit) && !conn.invalid) this.deliver(conn)
            else this.destroy(conn)
          })
        ),
        Effect.provideContext(this.context)
      ) as Effect.Effect<void>
    }
    this.unlease(conn)
    this.deliver(conn)
    return undefined
  }

  unlease(_conn: Conn<A>): void {
    this.inUse--
  }

  /** A health check said this (leased) connection is dead. */
  discard(conn: Conn<A>): void {
    if (conn.state !== "leased") return
    this.unlease(conn)
    this.destroy(conn)
  }

  /** A health check passed. */
  passed(conn: Conn<A>): void {
    conn.checkedAt = this.now()
  }

  invalidate(value: A): void {
    const conn = this.byValue.get(value)
    if (conn === undefined) return
    if (conn.state === "leased") conn.invalid = true
    else if (conn.state === "idle") {
      this.removeIdle(conn)
      this.destroy(conn)
    }
  }

  removeIdle(conn: Conn<A>): void {
    const i = this.idle.indexOf(conn)
    if (i >= 0) this.idle.splice(i, 1)
  }

  /**
   * Its `run` body ended: the connection is dead from now on, before its Scope
   * has closed. An idle one is closed at once; a leased one when it comes back
   * (its borrower is not interrupted); it never reaches another caller.
   */
  died(conn: Conn<A>): void {
    conn.dead = true
    if (conn.state === "idle") {
      this.removeIdle(conn)
      this.destroy(conn)
    }
  }

  // ---- creation --------------------------------------------------------------

  /** Starts one connection as a supervised child whose handle is its record. */
  spawn(): void {
    this.creating++
    const conn = new Conn<A>(++this.seq)
    this.all.add(conn)
    const self = this
    const config = this.config
    const userRun = config.run
    const spec = ChildSpec.make({
      id: `${config.name}/${conn.seq}`,
      start: Effect.gen(function* () {
        // registered first, so it runs last: after every resource `connect` acquired is released
        yield* Effect.addFinalizer((exit) => Effect.sync(() => self.released(conn, exit)))
        conn.value = yield* config.connect
        self.opened(conn)
        return conn
      }),
      run:
        userRun === undefined
          ? undefined
          : () =>
              Effect.onExit(userRun(conn.value), (exit) =>
                Effect.sync(() => {
                  conn.exit = exit
                  self.died(conn)
                })
              ),
      restart: "temporary",
      shutdown: config.closeTimeout
    }) as ChildSpec.ChildSpec<Conn<A>, E, never>
    this.fork(
      DynamicSupervisor.startChild(this.sup, spec).pipe(
        Effect.exit,
        Effect.flatMap((exit) => this.started(conn, exit))
      )
    )
  }

  /** Called inside the child's fiber when `connect` succeeded. */
  opened(conn: Conn<A>): void {
    conn.opened = true
    conn.checkedAt = this.now()
    conn.startedAt = this.wall()
    this.creating--
    this.open++
    this.created++
    this.byValue.set(conn.value, conn)
    this.failures = 0
    this.backoff.attempt = 0
    this.backoff.step = undefined
    this.lastFailure = undefined
  }

  started(conn: Conn<A>, exit: Exit.Exit<DynamicSupervisor.Child<Conn<A>>, unknown>): Effect.Effect<void> {
    if (Exit.isSuccess(exit)) {
      conn.child = exit.value
      if (this.listeners !== undefined) this.emitStarted(conn)
      if (conn.state === "starting") this.deliver(conn)
      else if (conn.state === "closing") this.terminate(conn)
      // the next of a large `min`'s batch, or (after a probe succeeded) the connects the waiters need
      if (this.state === "open") this.refill()
      return Effect.void
    }
    // start failed; its Scope is closed (#69)
    if (!conn.opened) {
      this.creating--
      this.all.delete(conn)
    }
    if (this.state !== "open") {
      this.checkDrained()
      return Effect.void
    }
    const cause = exit.cause as Cause.Cause<E>
    if (Cause.hasInterruptsOnly(cause)) return Effect.void
    return this.connectFailed(cause)
  }

  /**
   * A connect failed. Nobody is failed for it: the waiters keep waiting, each
   * up to its checkout timeout, while the pool backs off and connects again
   * (their `PoolTimeout` carries the last failure). The waiters a connect
   * was being made for count their timeout again, from when they queued.
   */
  connectFailed(cause: Cause.Cause<E>): Effect.Effect<void> {
    this.connectFailures++
    this.lastFailure = cause
    // waiters beyond the connects still in flight are no longer covered: their timeout applies again
    let excess = this.exempt - this.creating
    if (excess > 0) {
      const q = this.queue
      for (let i = q.length - 1; i >= this.head && excess > 0; i--) {
        const w = q[i]!
        if (w.state === "waiting" && w.exempt) {
          w.exempt = false
          this.exempt--
          excess--
        }
      }
      // their deadlines may come before what the sweeper sleeps for
      this.sweeper.poke(-Infinity)
    }
    // concurrent failures of one outage count once
    if (this.backingOff) return Effect.void
    this.backingOff = true
    this.failures++
    const attempt = this.failures
    return Effect.gen({ self: this }, function* () {
      let millis: number
      if (this.restarts === undefined) {
        millis = backoffDelay(attempt, defaultBackoff.minMillis, defaultBackoff.maxMillis, defaultBackoff.factor)
      } else {
        const result = yield* Effect.exit(this.restarts.nextDelay(this.backoff))
        // a schedule that ended (or failed) keeps its last delay
        millis = Exit.isSuccess(result) && result.value !== undefined ? result.value : (this.lastDelay ?? 0)
      }
      this.lastDelay = millis
      this.fork(
        Effect.andThen(
          Effect.sleep(millis),
          Effect.sync(() => {
            this.backingOff = false
            this.refill()
          })
        )
      )
    }).pipe(Effect.provideContext(this.context)) as Effect.Effect<void>
  }

  /**
   * Starts the creations the waiters and `min` call for: none while backing
   * off, one probe at a time while connects fail (the rest follow once it
   * succeeds), and at most `minBatch` in flight for `min`.
   */
  refill(): void {
    if (this.state !== "open" || this.backingOff) return
    const headroom = this.headroom()
    let forWaiters = Math.min(headroom, this.uncovered())
    const belowMin = this.config.min - (this.live() + this.creating + forWaiters)
    let forMin = belowMin > 0 ? Math.max(0, Math.min(belowMin, headroom - forWaiters, minBatch - this.creating)) : 0
    if (this.lastFailure !== undefined) {
      const probe = this.creating === 0 && forWaiters + forMin > 0 ? 1 : 0
      forWaiters = Math.min(forWaiters, probe)
      forMin = probe - forWaiters
    }
    // the oldest uncovered waiters are exempt from the timeout: a connection is being made for them
    let k = forWaiters
    for (let i = this.head; i < this.queue.length && k > 0; i++) {
      const w = this.queue[i]!
      if (w.state === "waiting" && !w.exempt) {
        w.exempt = true
        this.exempt++
        k--
      }
    }
    for (let i = forWaiters + forMin; i > 0; i--) this.spawn()
  }

  // ---- destruction ----------------------------------------------------------

  /** Closes a connection through its supervisor; `released` does the bookkeeping. */
  destroy(conn: Conn<A>): void {
    if (conn.state === "closing" || conn.state === "closed") return
    conn.state = "closing"
    this.closing++
    if (conn.child !== undefined) this.terminate(conn)
    // else: still inside startChild; `started` terminates it when it returns
  }

  terminate(conn: Conn<A>): void {
    this.fork(
      DynamicSupervisor.terminateChild(this.sup, conn.child!).pipe(
        Effect.ignore,
        // a close that was abandoned after closeTimeout still frees the slot
        Effect.ensuring(Effect.sync(() => this.released(conn, undefined)))
      )
    )
  }

  /** The connection's Scope has closed (or its close was abandoned). Idempotent. */
  released(conn: Conn<A>, exit: Exit.Exit<unknown, unknown> | undefined): void {
    const prev = conn.state
    if (prev === "closed") return
    conn.state = "closed"
    if (!conn.opened) {
      // connect failed or was interrupted: never counted as open
      return
    }
    if (prev === "idle") this.removeIdle(conn)
    else if (prev === "leased") this.unlease(conn)
    else if (prev === "closing") this.closing--
    this.open--
    this.destroyed++
    if (this.byValue.get(conn.value) === conn) this.byValue.delete(conn.value)
    this.all.delete(conn)
    if (this.listeners !== undefined) this.emitExited(conn, exit)
    if (this.state === "open") this.refill()
    else this.checkDrained()
  }

  // ---- timers -----------------------------------------------------------------

  /** Fails the waiters whose checkout timeout passed; returns when the next one is due, or Infinity. */
  sweep(): number {
    const timeout = this.config.checkoutTimeoutMillis
    const now = this.now()
    const q = this.queue
    const expired: Array<Waiter<A>> = []
    let next = Infinity
    for (let i = this.head; i < q.length; i++) {
      const w = q[i]!
      if (w.state !== "waiting" || w.exempt) continue
      const due = w.enqueuedAt + timeout
      if (due > now) {
        // deadlines come in queue order
        next = due
        break
      }
      w.state = "cancelled"
      this.waiting--
      this.timeouts++
      expired.push(w)
    }
    this.resetQueue()
    if (expired.length > 0) {
      const failure = this.lastFailure === undefined ? undefined : Cause.squash(this.lastFailure)
      for (const w of expired) {
        const waitedMillis = Math.round(now - w.enqueuedAt)
        settle(
          w,
          Effect.fail(
            failure === undefined
              ? new PoolTimeout({ pool: this.config.name, waitedMillis })
              : new PoolTimeout({ pool: this.config.name, waitedMillis, cause: failure })
          )
        )
      }
    }
    return next
  }

  /** Closes idle connections above `min` whose idle timeout passed; returns when the next one is due, or Infinity. */
  reap(): number {
    const timeout = this.config.idleTimeoutMillis
    const now = this.now()
    while (this.idle.length > 0 && this.live() > this.config.min) {
      const oldest = this.idle[0]!
      const due = oldest.idleSince + timeout
      if (due > now) return due
      this.idle.shift()
      this.destroy(oldest)
    }
    return Infinity
  }

  /**
   * Runs `run` (which returns the next deadline, monotonic ms, or Infinity),
   * sleeps until that deadline or parks, and runs again; `poke` on the timer
   * wakes it early.
   */
  timerLoop(timer: Timer, run: () => number | Effect.Effect<number>): Effect.Effect<never> {
    return Effect.forever(
      Effect.suspend(() => {
        timer.target = -1
        timer.wake = undefined
        timer.poked = false
        const r = run()
        return typeof r === "number" ? this.wait(timer, r) : Effect.flatMap(r, (next) => this.wait(timer, next))
      })
    )
  }

  wait(timer: Timer, next: number): Effect.Effect<void> {
    if (next === Infinity) {
      timer.target = Infinity
      return signal(timer)
    }
    const millis = next - this.now()
    if (millis <= 0) return Effect.yieldNow
    timer.target = next
    return Effect.raceFirst(Effect.sleep(millis), signal(timer))
  }

  /**
   * Background health checks: each idle connection is checked once
   * `healthCheckInterval` has passed since its last passed check (on checkout
   * or here) or its connect, one at a time (the others stay available). A dead
   * one is closed and replaced on demand, a live one goes back with its idle
   * time kept, so checks never keep a connection from being reaped. Returns
   * when the next connection is due, or Infinity (parked) when none is idle.
   */
  checkIdle(): Effect.Effect<number> {
    const check = this.config.healthCheck!
    const interval = this.config.healthCheckIntervalMillis
    return Effect.suspend(() => {
      const now = this.now()
      const due: Array<Conn<A>> = []
      let next = Infinity
      for (const conn of this.idle) {
        const at = conn.checkedAt + interval
        if (at <= now) due.push(conn)
        else if (at < next) next = at
      }
      if (due.length === 0) return Effect.succeed(next)
      return Effect.as(
        Effect.forEach(
          due,
          (conn) =>
            Effect.suspend(() => {
              if (conn.state !== "idle" || this.state !== "open") return Effect.void
              this.removeIdle(conn)
              const since = conn.idleSince
              this.lease(conn)
              return Effect.flatMap(Effect.exit(check(conn.value)), (exit) =>
                Effect.sync(() => this.checked(conn, since, Exit.isSuccess(exit)))
              )
            }),
          { discard: true }
        ),
        // look again at once: others may have come due meanwhile
        this.now()
      )
    }).pipe(Effect.provideContext(this.context)) as Effect.Effect<number>
  }

  checked(conn: Conn<A>, idleSince: number, alive: boolean): void {
    if (conn.state !== "leased") return
    if (!alive) {
      this.discard(conn)
      return
    }
    this.passed(conn)
    this.unlease(conn)
    if (this.state !== "open" || this.waiting > 0 || conn.dead) {
      this.deliver(conn)
      return
    }
    // back in its place: the idle list stays ordered by idle time (the reaper reads its front)
    conn.state = "idle"
    conn.idleSince = idleSince
    let i = 0
    while (i < this.idle.length && this.idle[i]!.idleSince <= idleSince) i++
    this.idle.splice(i, 0, conn)
    if (this.live() > this.config.min) this.reaper.poke(idleSince + this.config.idleTimeoutMillis)
  }

  start(): void {
    if (this.config.checkoutTimeoutMillis !== Infinity) {
      this.fork(this.timerLoop(this.sweeper, () => this.sweep()))
    }
    if (this.config.idleTimeoutMillis !== Infinity) {
      this.fork(this.timerLoop(this.reaper, () => this.reap()))
    }
    if (this.config.healthCheck !== undefined && this.config.healthCheckIntervalMillis !== Infinity) {
      this.fork(this.timerLoop(this.checker, () => this.checkIdle()))
    }
    this.refill()
  }

  // ---- inspection ---------------------------------------------------------------

  snapshot(): Inspect.NodeSnapshot {
    const children: Array<Inspect.NodeSnapshot> = []
    for (const conn of this.all) {
      const state: Inspect.NodeState =
        conn.state === "starting"
          ? "starting"
          : conn.state === "closing"
            ? "stopping"
            : conn.state === "closed"
              ? "stopped"
              : "running"
      children.push(
        Inspect.childNode(
          {
            kind: "Connection",
            type: "worker",
            id: `${this.config.name}/${conn.seq}`,
            pid: conn.child?.pid,
            state,
            restarts: 0,
            startedAt: conn.opened ? conn.startedAt : undefined
          },
          conn.opened ? conn.value : undefined
        )
      )
    }
    return {
      kind: "Pool",
      type: "supervisor",
      name: this.config.name,
      id: this.config.name,
      state: this.state === "open" ? "running" : this.state === "closing" ? "stopping" : "stopped",
      restarts: 0,
      counts: {
        specs: this.all.size,
        active: this.all.size,
        supervisors: 0,
        workers: this.all.size
      },
      stats: {
        open: this.open,
        idle: this.idle.length,
        inUse: this.inUse,
        waiting: this.waiting,
        creating: this.creating,
        created: this.created,
        destroyed: this.destroyed,
        timeouts: this.timeouts,
        connectFailures: this.connectFailures,
        max: this.config.max,
        min: this.config.min,
        backingOff: this.backingOff
      },
      children
    }
  }

  /** Unsubscribes from the connections' supervisor, while someone listens to the pool. */
  forwarding: (() => void) | undefined = undefined

  /**
   * A connection whose close overran `closeTimeout` is abandoned by the pool's
   * DynamicSupervisor, which reports it on its own inspector: the pool passes
   * that event on as its own (the supervisor is the pool's machinery, not a node).
   */
  forwardAbandoned(): void {
    if (this.forwarding !== undefined) return
    const inner = Inspect.inspectorOf(this.sup)
    if (inner === undefined) return
    this.forwarding = inner.subscribe((event) => {
      if (event._tag !== "Abandoned" || this.listeners === undefined) return
      Inspect.emit(this.listeners, { ...event, supervisor: this.config.name, supervisorKind: "Pool" })
    })
  }

  stopForwarding(): void {
    const stop = this.forwarding
    this.forwarding = undefined
    stop?.()
  }

  emitStarted(conn: Conn<A>): void {
    Inspect.emit(this.listeners!, {
      _tag: "Started",
      supervisor: this.config.name,
      supervisorKind: "Pool",
      id: `${this.config.name}/${conn.seq}`,
      pid: conn.child?.pid,
      at: this.wall()
    })
  }

  emitExited(conn: Conn<A>, scopeExit: Exit.Exit<unknown, unknown> | undefined): void {
    // its body's end says why it died; otherwise the pool closed it
    const exit = conn.exit ?? scopeExit
    const crashed = exit !== undefined && Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
    Inspect.emit(this.listeners!, {
      _tag: "Exited",
      supervisor: this.config.name,
      supervisorKind: "Pool",
      id: `${this.config.name}/${conn.seq}`,
      pid: conn.child?.pid,
      at: this.wall(),
      reason: crashed ? "crash" : conn.exit !== undefined && Exit.isSuccess(conn.exit) ? "normal" : "shutdown",
      cause: crashed ? Cause.pretty((exit as Exit.Failure<unknown, unknown>).cause) : undefined
    })
  }

  // ---- closing ---------------------------------------------------------------

  checkDrained(): void {
    if (this.open === 0 && this.creating === 0 && this.onDrained !== undefined) {
      const done = this.onDrained
      this.onDrained = undefined
      done()
    }
  }

  /**
   * Closes the pool (D6, D8): waiters fail with PoolClosed, idle connections
   * close at once, leased ones when they are returned or, after the drain
   * timeout, by force.
   */
  close(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.state !== "open") return Effect.void
      this.state = "closing"
      const closed = new PoolClosed({ pool: this.config.name })
      const waiters: Array<Waiter<A>> = []
      for (let w = this.dequeue(); w !== undefined; w = this.dequeue()) {
        w.state = "cancelled"
        waiters.push(w)
      }
      for (const conn of this.idle.splice(0, this.idle.length)) this.destroy(conn)
      for (const w of waiters) settle(w, Effect.fail(closed))
      const drained = Effect.callback<void>((resume) => {
        this.onDrained = () => resume(Effect.void)
        this.checkDrained()
      })
      const force = Effect.suspend(() => {
        this.onDrained = undefined
        for (const conn of [...this.all]) {
          if (conn.state !== "leased") continue
          this.unlease(conn)
          this.destroy(conn)
        }
        return Effect.callback<void>((resume) => {
          this.onDrained = () => resume(Effect.void)
          this.checkDrained()
        }).pipe(Effect.timeoutOption(this.config.drainTimeoutMillis))
      })
      const wait =
        this.config.drainTimeoutMillis === Infinity
          ? drained
          : Effect.flatMap(Effect.timeoutOption(drained, this.config.drainTimeoutMillis), (o) =>
              o._tag === "Some" ? Effect.void : force
            )
      return Effect.andThen(
        wait,
        Effect.suspend(() => {
          this.state = "closed"
          this.unregisterMetrics()
          const fibers = [...this.fibers]
          return Fiber.interruptAll(fibers)
        })
      )
    })
  }
}
