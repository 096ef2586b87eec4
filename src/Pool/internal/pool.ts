/**
 * The pool's machinery: a synchronous state machine (idle list, FIFO waiter
 * queue, counters) driven by the public operations, plus three kinds of
 * background fibers that only run on slow paths: connection creation and
 * destruction (through the DynamicSupervisor), the checkout-timeout sweeper
 * and the idle reaper. Checkout and checkin of an idle connection never leave
 * this file's synchronous code.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import { pipeArguments } from "effect/Pipeable"
import * as Schedule from "effect/Schedule"
import * as ChildSpec from "../../Supervisor/ChildSpec.ts"
import * as DynamicSupervisor from "../../Supervisor/DynamicSupervisor.ts"

// ---- errors ------------------------------------------------------------------

/**
 * A caller waited `checkoutTimeout` in the queue of a pool that was at
 * capacity and got no connection. It took nothing: the pool is as before.
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolTimeout extends Data.TaggedError("PoolTimeout")<{
  /** The pool's name. */
  readonly pool: string
  /** How long the caller waited, in milliseconds. */
  readonly waitedMillis: number
}> {
  override get message(): string {
    return `pool ${JSON.stringify(this.pool)}: no connection became free within ${this.waitedMillis} ms`
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
  idleSince = 0
  /** invalidated while leased: destroy when returned */
  invalid = false
  /** handed out straight from a creation: no health check needed */
  fresh = true
  /** bumped on every lease, so a stale checkin is recognised */
  lease = 0
  /** the pool-wide number of this connection's latest lease (lease order, for tests) */
  leaseSeq = 0
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

// ---- metrics -------------------------------------------------------------------

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
    boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 16 }),
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

const defaultBackoffMillis = (attempt: number): number => Math.min(100 * 2 ** (attempt - 1), 10_000)

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

// ---- the pool ------------------------------------------------------------------

/** @internal */
export const TypeId = "~effect-otp/Pool"

/** @internal */
export class PoolImpl<A, E> {
  readonly [TypeId] = TypeId
  state: "open" | "closing" | "closed" = "open"
  readonly idle: Array<Conn<A>> = []
  readonly byValue = new Map<A, Conn<A>>()
  /** every opened connection not yet released */
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
  leases = 0
  // connect backoff
  backoffUntil = 0
  failures = 0
  lastFailure: Cause.Cause<E> | undefined = undefined
  step: ((now: number, input: number) => Effect.Effect<[unknown, Duration.Duration], unknown, unknown>) | undefined =
    undefined
  // background fibers
  readonly fibers = new Set<Fiber.Fiber<unknown, unknown>>()
  wakeSweeper: (() => void) | undefined = undefined
  wakeReaper: (() => void) | undefined = undefined
  onDrained: (() => void) | undefined = undefined
  gaugesDirty = false
  readonly m: { readonly [K in keyof typeof metrics]: Metric.Metric<number, unknown> }

  constructor(
    readonly config: Config<A, E>,
    readonly sup: DynamicSupervisor.DynamicSupervisor,
    readonly context: Context.Context<never>,
    readonly clock: Clock.Clock
  ) {
    const attrs = { pool: config.name }
    // attributes fixed at construction: `withAttributes` would rebuild a context on every update
    this.m = defineMetrics(attrs)
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

  now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  /** Runs `effect` in the background, from the next tick (never re-entering the caller). */
  fork(effect: Effect.Effect<unknown, unknown, any>): void {
    const fiber = Effect.runForkWith(this.context)(
      Effect.andThen(Effect.yieldNow, effect) as Effect.Effect<unknown, unknown>
    )
    this.fibers.add(fiber)
    fiber.addObserver(() => this.fibers.delete(fiber))
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

  /** Gauges are refreshed once per tick, not on every checkout. */
  touch(): void {
    if (this.gaugesDirty) return
    this.gaugesDirty = true
    queueMicrotask(() => {
      this.gaugesDirty = false
      const ctx = this.context
      this.m.open.updateUnsafe(this.open, ctx)
      this.m.idle.updateUnsafe(this.idle.length, ctx)
      this.m.inUse.updateUnsafe(this.inUse, ctx)
      this.m.waiting.updateUnsafe(this.waiting, ctx)
    })
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
  tryCheckout(): Conn<A> | Waiter<A> | PoolClosed | PoolFull | Cause.Cause<E> {
    if (this.state !== "open") return new PoolClosed({ pool: this.config.name })
    const idle = this.idle
    if (idle.length > 0) {
      const conn = this.config.strategy === "lifo" ? idle.pop()! : idle.shift()!
      this.lease(conn)
      conn.fresh = false
      return conn
    }
    // a connect in flight that no earlier waiter will take serves this caller
    const covered = this.waiting < this.creating
    const room = covered ? 0 : this.headroom() - this.uncovered()
    if (room > 0 && this.now() < this.backoffUntil && this.lastFailure !== undefined) {
      // it would get a new connection, but the database is failing: say so at once
      return this.lastFailure
    }
    if (!covered && room <= 0 && this.waiting - this.exempt >= this.config.maxWaiting) {
      return new PoolFull({ pool: this.config.name, maxWaiting: this.config.maxWaiting })
    }
    const waiter: Waiter<A> = {
      state: "waiting",
      resume: undefined,
      result: undefined,
      conn: undefined,
      exempt: false,
      enqueuedAt: this.now()
    }
    this.queue.push(waiter)
    this.waiting++
    if (covered || room > 0) {
      // a connection is being made for it: the checkout timeout does not apply (#84)
      waiter.exempt = true
      this.exempt++
      if (!covered) this.spawn()
    } else if (this.wakeSweeper !== undefined) {
      const wake = this.wakeSweeper
      this.wakeSweeper = undefined
      wake()
    }
    this.touch()
    return waiter
  }

  lease(conn: Conn<A>): void {
    conn.state = "leased"
    conn.lease++
    conn.leaseSeq = ++this.leases
    this.inUse++
    this.touch()
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
    this.touch()
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
      this.touch()
      return
    }
    if (w.state === "served" && w.conn !== undefined) {
      const conn = w.conn
      w.conn = undefined
      this.checkin(conn, conn.lease, undefined)
    }
  }

  /** Hands a connection that became available to the oldest waiter, or makes it idle. */
  deliver(conn: Conn<A>): void {
    if (this.state !== "open") {
      this.destroy(conn)
      return
    }
    const w = this.dequeue()
    if (w !== undefined) {
      this.lease(conn)
      w.state = "served"
      w.conn = conn
      const waited = this.now() - w.enqueuedAt
      this.m.waitTime.updateUnsafe(waited, this.context)
      settle(w, Effect.succeed(conn))
      return
    }
    conn.state = "idle"
    conn.idleSince = this.now()
    this.idle.push(conn)
    this.touch()
    if (this.wakeReaper !== undefined && this.live() > this.config.min) {
      const wake = this.wakeReaper
      this.wakeReaper = undefined
      wake()
    }
  }

  /**
   * Returns a leased connection. `lease` must match the connection's current
   * lease (a forced close or a double checkin is ignored, #87). `failure` is
   * the borrower's failure, if it failed.
   */
  checkin(conn: Conn<A>, lease: number, failure: Cause.Cause<unknown> | undefined): Effect.Effect<void> | undefined {
    if (conn.state !== "leased" || conn.lease !== lease) return undefined
    if (conn.invalid) {
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

  // ---- creation --------------------------------------------------------------

  /** Starts one connection as a supervised child whose handle is its record. */
  spawn(): void {
    this.creating++
    const conn = new Conn<A>()
    const self = this
    const config = this.config
    const userRun = config.run
    const spec = ChildSpec.make({
      id: config.name,
      start: Effect.gen(function* () {
        // registered first, so it runs last: after every resource `connect` acquired is released
        yield* Effect.addFinalizer(() => Effect.sync(() => self.released(conn)))
        conn.value = yield* config.connect
        self.opened(conn)
        return conn
      }),
      run: userRun === undefined ? undefined : () => userRun(conn.value),
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
    this.creating--
    this.open++
    this.created++
    this.byValue.set(conn.value, conn)
    this.all.add(conn)
    this.m.created.modifyUnsafe(1, this.context)
    this.failures = 0
    this.step = undefined
    this.backoffUntil = 0
    this.lastFailure = undefined
    this.touch()
  }

  started(conn: Conn<A>, exit: Exit.Exit<DynamicSupervisor.Child<Conn<A>>, unknown>): Effect.Effect<void> {
    if (Exit.isSuccess(exit)) {
      conn.child = exit.value
      if (conn.state === "starting") this.deliver(conn)
      else if (conn.state === "closing") this.terminate(conn)
      return Effect.void
    }
    // start failed; its Scope is closed (#69)
    if (!conn.opened) {
      this.creating--
      this.touch()
    }
    if (this.state !== "open") {
      this.checkDrained()
      return Effect.void
    }
    const cause = exit.cause as Cause.Cause<E>
    if (Cause.hasInterruptsOnly(cause)) return Effect.void
    return this.connectFailed(cause)
  }

  connectFailed(cause: Cause.Cause<E>): Effect.Effect<void> {
    this.m.connectFailures.modifyUnsafe(1, this.context)
    const now = this.now()
    const wasBackingOff = now < this.backoffUntil
    this.lastFailure = cause
    // the waiters the pool would have created a connection for get the failure instead (#68);
    // with no connection open and none coming, that is every waiter: there is nothing else to wait for
    let fail = this.live() === 0 && this.creating === 0 ? this.waiting : Math.min(this.headroom(), this.uncovered())
    const failed: Array<Waiter<A>> = []
    while (fail > 0) {
      const w = this.dequeue()
      if (w === undefined) break
      fail--
      w.state = "cancelled"
      failed.push(w)
    }
    if (wasBackingOff) {
      // concurrent failures of one outage count once
      for (const w of failed) settle(w, Effect.failCause(cause))
      return Effect.void
    }
    this.failures++
    const attempt = this.failures
    // backing off from now on; the schedule decides until when
    this.backoffUntil = Infinity
    for (const w of failed) settle(w, Effect.failCause(cause))
    return Effect.gen({ self: this }, function* () {
      let millis: number
      const schedule = this.config.connectBackoff
      if (schedule === undefined) millis = defaultBackoffMillis(attempt)
      else {
        if (this.step === undefined) this.step = (yield* Schedule.toStep(schedule)) as any
        const result = yield* Effect.exit(this.step!(now, attempt))
        // a schedule that ended keeps its last delay
        millis = Exit.isSuccess(result) ? Duration.toMillis(result.value[1]) : (this.lastDelay ?? 0)
      }
      this.lastDelay = millis
      this.backoffUntil = now + millis
      this.fork(
        Effect.andThen(
          Effect.sleep(millis),
          Effect.sync(() => this.refill())
        )
      )
    }).pipe(Effect.provideContext(this.context)) as Effect.Effect<void>
  }
  lastDelay: number | undefined = undefined

  /** Starts the creations the waiters and `min` call for (not while backing off). */
  refill(): void {
    if (this.state !== "open" || this.now() < this.backoffUntil) return
    let n = Math.min(this.headroom(), this.uncovered())
    // mark the oldest uncovered waiters exempt from the timeout: a connection is being made for them
    if (n > 0) {
      let k = n
      for (let i = this.head; i < this.queue.length && k > 0; i++) {
        const w = this.queue[i]!
        if (w.state === "waiting" && !w.exempt) {
          w.exempt = true
          this.exempt++
          k--
        }
      }
    }
    const belowMin = this.config.min - (this.live() + this.creating + n)
    if (belowMin > 0) n += Math.min(belowMin, this.headroom() - n)
    for (let i = 0; i < n; i++) this.spawn()
  }

  // ---- destruction ----------------------------------------------------------

  /** Closes a connection through its supervisor; `released` does the bookkeeping. */
  destroy(conn: Conn<A>): void {
    if (conn.state === "closing" || conn.state === "closed") return
    conn.state = "closing"
    this.closing++
    this.touch()
    if (conn.child !== undefined) this.terminate(conn)
    // else: still inside startChild; `started` terminates it when it returns
  }

  terminate(conn: Conn<A>): void {
    this.fork(
      DynamicSupervisor.terminateChild(this.sup, conn.child!).pipe(
        Effect.ignore,
        // a close that was abandoned after closeTimeout still frees the slot
        Effect.ensuring(Effect.sync(() => this.released(conn)))
      )
    )
  }

  /** The connection's Scope has closed (or its close was abandoned). Idempotent. */
  released(conn: Conn<A>): void {
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
    this.m.destroyed.modifyUnsafe(1, this.context)
    this.touch()
    if (this.state === "open") this.refill()
    else this.checkDrained()
  }

  // ---- timers -----------------------------------------------------------------

  /** Fails the waiters whose checkout timeout passed; returns ms to the next deadline, or -1. */
  sweep(): number {
    const timeout = this.config.checkoutTimeoutMillis
    const now = this.now()
    const q = this.queue
    const expired: Array<Waiter<A>> = []
    let next = -1
    for (let i = this.head; i < q.length; i++) {
      const w = q[i]!
      if (w.state !== "waiting" || w.exempt) continue
      const due = w.enqueuedAt + timeout
      if (due > now) {
        next = due - now
        break
      }
      w.state = "cancelled"
      this.waiting--
      this.timeouts++
      this.m.timeouts.modifyUnsafe(1, this.context)
      expired.push(w)
    }
    this.resetQueue()
    this.touch()
    for (const w of expired) {
      settle(w, Effect.fail(new PoolTimeout({ pool: this.config.name, waitedMillis: now - w.enqueuedAt })))
    }
    return next
  }

  /** Closes idle connections above `min` whose idle timeout passed; returns ms to the next deadline, or -1. */
  reap(): number {
    const timeout = this.config.idleTimeoutMillis
    const now = this.now()
    while (this.idle.length > 0 && this.live() > this.config.min) {
      const oldest = this.idle[0]!
      const due = oldest.idleSince + timeout
      if (due > now) return due - now
      this.idle.shift()
      this.destroy(oldest)
    }
    return -1
  }

  timerLoop(run: () => number, park: (wake: () => void) => void): Effect.Effect<never> {
    const parked = Effect.callback<void>((resume) => {
      park(() => resume(Effect.void))
    })
    return Effect.forever(
      Effect.suspend(() => {
        const next = run()
        return next < 0 ? parked : Effect.sleep(next)
      })
    )
  }

  /**
   * Checks the idle connections one at a time (the others stay available);
   * a dead one is closed and replaced on demand, a live one goes back with its
   * idle time kept, so checks never keep a connection from being reaped.
   */
  checkIdle(): Effect.Effect<void> {
    const check = this.config.healthCheck!
    return Effect.suspend(() =>
      Effect.forEach(
        [...this.idle],
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
      )
    ).pipe(Effect.provideContext(this.context)) as Effect.Effect<void>
  }

  checked(conn: Conn<A>, idleSince: number, alive: boolean): void {
    if (conn.state !== "leased") return
    if (!alive) {
      this.discard(conn)
      return
    }
    this.unlease(conn)
    if (this.state !== "open" || this.waiting > 0) {
      this.deliver(conn)
      return
    }
    // back in its place: the idle list stays ordered by idle time (the reaper reads its front)
    conn.state = "idle"
    conn.idleSince = idleSince
    let i = 0
    while (i < this.idle.length && this.idle[i]!.idleSince <= idleSince) i++
    this.idle.splice(i, 0, conn)
    this.touch()
    if (this.wakeReaper !== undefined && this.live() > this.config.min) {
      const wake = this.wakeReaper
      this.wakeReaper = undefined
      wake()
    }
  }

  start(): void {
    if (this.config.checkoutTimeoutMillis !== Infinity) {
      this.fork(
        this.timerLoop(
          () => this.sweep(),
          (wake) => {
            this.wakeSweeper = wake
          }
        )
      )
    }
    if (this.config.idleTimeoutMillis !== Infinity) {
      this.fork(
        this.timerLoop(
          () => this.reap(),
          (wake) => {
            this.wakeReaper = wake
          }
        )
      )
    }
    if (this.config.healthCheck !== undefined && this.config.healthCheckIntervalMillis !== Infinity) {
      this.fork(Effect.forever(Effect.andThen(Effect.sleep(this.config.healthCheckIntervalMillis), this.checkIdle())))
    }
    this.refill()
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
          this.touch()
          const fibers = [...this.fibers]
          return Fiber.interruptAll(fibers)
        })
      )
    })
  }
}
