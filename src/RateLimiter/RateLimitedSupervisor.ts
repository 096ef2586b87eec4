/**
 * A `DynamicSupervisor` whose `startChild` passes through a rate limiter:
 * at most `limit` children start per `window`, the excess waits in a bounded
 * FIFO queue, and an optional `maxLive` caps how many children are alive at
 * once.
 *
 * A plain `DynamicSupervisor` starts a child the moment it is asked, or
 * fails with `MaxChildren`. This one *waits* instead: a request over the rate
 * (or over `maxLive`) joins a queue and starts as soon as both allow it —
 * the seed's "spawn workers with rate limiting: max N workers per second;
 * queue excess requests; configurable limits". Everything else (restart
 * values, intensity, shutdown, `whichChildren`) is the supervisor's.
 *
 * **What it guarantees.**
 * - With the default `"slidingWindow"`, at most `limit` children start in ANY
 *   interval of length `window` — first starts and restarts together.
 * - The admission is spent when the child's `start` begins, never earlier: a
 *   request held back by `maxLive` holds no token, so it cannot burst
 *   through once a slot frees.
 * - The queue is bounded by `maxQueue` (`QueueFull`, at once, beyond it); a
 *   caller interrupted while queued leaves it and consumes nothing; the
 *   queue is never left waiting while a start is allowed (a child's exit
 *   re-checks it).
 * - With `perKey` limits, each key (tenant) also has its own rate, and keys
 *   with waiters are served round-robin.
 * - `setLimits` changes the rate, `maxQueue` and `maxLive` at runtime.
 *
 * **Restarts pass through the limiter (decision D7).** A child's restart
 * re-runs its `start`, which is what the limit protects (a downstream API, a
 * database being connected to), so by default a restart takes an admission
 * like a first start: ahead of every queued request, never rejected for a
 * full queue, and not held by `maxLive` (a restarting child still counts as
 * live, as in Elixir, where `max_children` counts restarting children). A
 * crash storm is therefore paced by the limiter *and* bounded by the
 * supervisor's intensity (`maxRestarts` in `maxSeconds`, counted when the
 * restart is decided, before it waits). Set `limitRestarts: false` for OTP's
 * behaviour: restarts are immediate and only intensity applies.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Context_ from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Predicate from "effect/Predicate"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { ChildNotFound, InvalidOptions, MaxChildren, RestartIntensityExceeded, SupervisorStopped } from "../Errors.ts"
import * as ChildSpec from "../Supervisor/ChildSpec.ts"
import * as DynamicSupervisor from "../Supervisor/DynamicSupervisor.ts"
import * as Inspect from "../internal/inspect.ts"
import { launchUntilStopped, supervisorLayer } from "../internal/launch.ts"
import type { DynamicEngine } from "../Supervisor/internal/dynamic.ts"
import { Core } from "./internal/core.ts"
import * as options_ from "./internal/options.ts"
import * as RateLimiter from "./RateLimiter.ts"

export {
  /**
   * @category errors
   * @since 0.1.0
   */
  ChildNotFound,
  /**
   * @category errors
   * @since 0.1.0
   */
  InvalidOptions,
  /**
   * @category errors
   * @since 0.1.0
   */
  MaxChildren,
  /**
   * @category errors
   * @since 0.1.0
   */
  RestartIntensityExceeded,
  /**
   * @category errors
   * @since 0.1.0
   */
  SupervisorStopped
}

const TypeId = "~effect-otp/RateLimitedSupervisor"

/**
 * A running rate-limited supervisor. `X` is the type of its
 * `extraArguments`.
 *
 * @category models
 * @since 0.1.0
 */
export interface RateLimitedSupervisor<in out X = never> extends Pipeable {
  readonly [TypeId]: typeof TypeId
  readonly name: string
  /**
   * The supervisor underneath, for `whichChildren`, `countChildren` and the
   * live tree. Stop children with {@link terminateChild} rather than
   * `DynamicSupervisor.terminateChild(sup.supervisor, ...)`: terminating a
   * child that waits for its restart directly frees its `maxLive` slot
   * without telling the queue, which then waits for the next start, exit or
   * timer to notice.
   */
  readonly supervisor: DynamicSupervisor.DynamicSupervisor<X>
  /** The limiter in front of it, for `RateLimiter.stats` and metrics. */
  readonly limiter: RateLimiter.RateLimiter
}

/**
 * The options of {@link make}: the limiter's, the cap on live children, and
 * the supervisor's.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<X = never> {
  /** A name for logs and metrics (the supervisor's and the limiter's). @default "RateLimitedSupervisor" */
  readonly name?: string | undefined
  /** @default "slidingWindow" */
  readonly algorithm?: RateLimiter.Algorithm | undefined
  /** Starts per window (an integer >= 1). */
  readonly limit: number
  /** The window: a finite duration > 0. */
  readonly window: Duration.Input
  /** Token bucket only: the largest burst of starts. @default limit */
  readonly burst?: number | undefined
  /** Requests that may wait; one more fails with `QueueFull`. @default 1000 */
  readonly maxQueue?: number | undefined
  /** Per-key (tenant) limits on top of the global ones. */
  readonly perKey?: RateLimiter.KeyLimits | undefined
  /** At most this many children alive at once (running, starting or restarting); more wait. @default Infinity */
  readonly maxLive?: number | undefined
  /** Whether restarts take an admission too (D7). @default true */
  readonly limitRestarts?: boolean | undefined
  /** The supervisor's restart intensity. @default 3 */
  readonly maxRestarts?: number | undefined
  /** The supervisor's intensity window in seconds. @default 5 */
  readonly maxSeconds?: number | undefined
  /** Given to every child spec factory passed to `startChild`. */
  readonly extraArguments?: X | undefined
  /** Delays each restart by the schedule's next delay (see `DynamicSupervisor`). */
  readonly restartBackoff?: Schedule.Schedule<unknown, number> | undefined
  /** See `DynamicSupervisor`. */
  readonly restartBackoffResetAfter?: Duration.Input | undefined
}

/**
 * A change of limits for {@link setLimits}: the limiter's fields (see
 * `RateLimiter.LimitsUpdate`) and `maxLive`. Omitted fields keep their value.
 *
 * @category models
 * @since 0.1.0
 */
export interface LimitsUpdate extends RateLimiter.LimitsUpdate {
  readonly maxLive?: number | undefined
}

/**
 * What {@link stats} reports: the limiter's figures, plus `live` (children
 * running, starting or restarting) and the cap.
 *
 * @category models
 * @since 0.1.0
 */
export interface Stats extends RateLimiter.Stats {
  readonly live: number
  readonly maxLive: number
}

/** @internal */
class Impl implements Inspect.Inspector {
  readonly [TypeId] = TypeId
  readonly kind = "RateLimitedSupervisor" as const
  readonly [Inspect.TypeId]: Inspect.Inspector = this
  inFlight = 0
  constructor(
    readonly name: string,
    readonly supervisor: DynamicSupervisor.DynamicSupervisor<any>,
    readonly core: Core,
    public maxLive: number,
    readonly limitRestarts: boolean,
    readonly extraArguments: unknown
  ) {}
  get limiter(): RateLimiter.RateLimiter {
    return this.core as unknown as RateLimiter.RateLimiter
  }
  live(): number {
    return (DynamicSupervisor.countChildrenUnsafe(this.supervisor)?.specs ?? 0) + this.inFlight
  }
  pipe() {
    return pipeArguments(this, arguments)
  }
  toJSON(): unknown {
    return { _id: "RateLimitedSupervisor", name: this.name, live: this.live(), maxLive: this.maxLive }
  }
  get engine(): DynamicEngine {
    return this.supervisor as unknown as DynamicEngine
  }
  snapshot(): Inspect.NodeSnapshot {
    const s = this.core.stats()
    return {
      ...this.engine.snapshot(),
      kind: "RateLimitedSupervisor",
      stats: {
        live: this.live(),
        maxLive: this.maxLive === Infinity ? null : this.maxLive,
        admitted: s.admitted,
        queued: s.queued,
        priorityQueued: s.priorityQueued,
        rejected: s.rejected,
        inWindow: s.inWindow,
        available: s.available
      }
    }
  }
  subscribe(listener: (event: Inspect.InspectEvent) => void): () => void {
    return this.engine.subscribe(listener)
  }
  childInspectors(): ReadonlyArray<Inspect.Inspector> {
    return this.engine.childInspectors()
  }
  /**
   * Wraps a spec so that each incarnation's admission is dated when its
   * `start` begins, every incarnation re-checks the queue when it ends, and
   * restarts take an admission.
   */
  wrap<A, E, R>(
    spec: ChildSpec.ChildSpec<A, E, R>,
    key: string | undefined,
    admission: { at: number; admitted: boolean }
  ): ChildSpec.ChildSpec<A, E, R> {
    let incarnations = 0
    const core = this.core
    const start = Effect.withFiber((fiber) => {
      // when this incarnation ends and the supervisor has counted it out, admit whoever waits for its slot
      const dispatcher = fiber.currentDispatcher
      fiber.addObserver(() => {
        if (core.queued > 0) dispatcher.scheduleTask(() => core.drain(), 0)
      })
      if (incarnations++ === 0) {
        // the first start was admitted by startChild: date the admission now, as the start begins
        core.retime(key, admission.at)
        return spec.start
      }
      if (!this.limitRestarts) return spec.start
      return Effect.andThen(
        core.take(key, true, (now) => {
          admission.at = now
        }),
        Effect.suspend(() => {
          core.retime(key, admission.at)
          return spec.start
        })
      )
    }) as Effect.Effect<A, E, R | Scope.Scope>
    return { ...spec, start }
  }
}

const impl = <X>(self: RateLimitedSupervisor<X>): Impl => self as unknown as Impl

/**
 * Starts a rate-limited supervisor with no children, owned by the current
 * Scope. Closing the Scope stops the children (as a `DynamicSupervisor`
 * does), then fails every queued request with `SupervisorStopped`.
 *
 * **Details**
 *
 * Bad limits (a `limit` of 0, negative or NaN, a zero `window`, a `maxLive`
 * below 1) fail with `InvalidOptions` naming the field and the value, and
 * nothing is started. If the supervisor gives up (restart intensity), the
 * queued requests fail with `SupervisorStopped` carrying that reason.
 *
 * **Example** (Ten workers per second, at most 50 alive)
 *
 * ```ts
 * import { Clock, Effect } from "effect"
 * import { ChildSpec, RateLimitedSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* RateLimitedSupervisor.make({ limit: 10, window: "1 second", maxLive: 50 })
 *   const start = yield* Clock.currentTimeMillis
 *   // 100 jobs: the first 10 start now, then 10 more each second
 *   yield* Effect.forEach(
 *     Array.from({ length: 100 }, (_, i) => i),
 *     (i) => RateLimitedSupervisor.startChild(sup, ChildSpec.task(Effect.log(`job ${i}`))),
 *     { concurrency: "unbounded" }
 *   )
 *   return (yield* Clock.currentTimeMillis) - start // when the last ten started
 * })
 * // => 9000
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <X = never>(
  options: Options<X>
): Effect.Effect<RateLimitedSupervisor<X>, InvalidOptions, Scope.Scope> =>
  Effect.gen(function* () {
    const m = "RateLimitedSupervisor"
    const decoded = options_.decodeOptions(m, options)
    if (decoded instanceof InvalidOptions) return yield* Effect.fail(decoded)
    const maxLive = options.maxLive ?? Infinity
    const e = options_.checkCount(m, "maxLive", maxLive, 1)
    if (e) return yield* Effect.fail(e)
    const limitRestarts = options.limitRestarts ?? true
    if (typeof limitRestarts !== "boolean") {
      return yield* Effect.fail(
        new InvalidOptions({ module: m, field: "limitRestarts", value: limitRestarts, expected: "a boolean" })
      )
    }
    const name = decoded.name ?? m
    const fiberContext = yield* Effect.context<never>()
    let self: Impl | undefined = undefined
    const core = new Core({
      name,
      limits: decoded.limits,
      perKey: decoded.perKey,
      maxQueue: decoded.maxQueue,
      clock: yield* Clock.Clock,
      context: fiberContext,
      gate: () => self === undefined || self.maxLive === Infinity || self.live() < self.maxLive,
      queueFull: (key, maxQueue, retryAfterMillis) =>
        new RateLimiter.QueueFull({ limiter: name, maxQueue, key, retryAfterMillis })
    })
    // registered first, so it runs last: the supervisor stops its children before the queue is failed
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => core.close(Effect.fail(new SupervisorStopped({ reason: "shutdown" }))))
    )
    const supervisor = yield* DynamicSupervisor.make<X>({
      name,
      maxRestarts: options.maxRestarts,
      maxSeconds: options.maxSeconds,
      extraArguments: options.extraArguments,
      restartBackoff: options.restartBackoff,
      restartBackoffResetAfter: options.restartBackoffResetAfter
    }).pipe(Effect.mapError((e) => new InvalidOptions({ ...e, module: m })))
    self = new Impl(name, supervisor, core, maxLive, limitRestarts, options.extraArguments)
    // when the supervisor gives up, so does its queue
    yield* Effect.forkScoped(
      Effect.catch(DynamicSupervisor.await(supervisor), (reason) =>
        Effect.sync(() => core.close(Effect.fail(new SupervisorStopped({ reason }))))
      )
    )
    return self as unknown as RateLimitedSupervisor<X>
  })

/**
 * A layer that provides a rate-limited supervisor under the given service
 * key.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I, X = never>(
  tag: Context.Key<I, RateLimitedSupervisor<X>>,
  options: Options<X>
): Layer.Layer<I, InvalidOptions | RestartIntensityExceeded> => supervisorLayer(tag, make(options), await_)

/**
 * Declares a named rate-limited supervisor as a service class with its
 * `layer`.
 *
 * **Example** (The seed's spawner as a service)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, RateLimitedSupervisor } from "effect-otp"
 *
 * class Spawner extends RateLimitedSupervisor.Service<Spawner>()("app/Spawner", {
 *   limit: 10,
 *   window: "1 second"
 * }) {}
 *
 * const spawn = (job: string) =>
 *   Effect.gen(function*() {
 *     const sup = yield* Spawner
 *     return yield* RateLimitedSupervisor.startChild(sup, ChildSpec.task(Effect.log(job)))
 *   })
 * const program = spawn("job-1").pipe(Effect.provide(Spawner.layer))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const Service =
  <Self>() =>
  <const Id extends string, X = never>(
    id: Id,
    options: Options<X>
  ): Context.ServiceClass<Self, Id, RateLimitedSupervisor<X>> & {
    readonly layer: Layer.Layer<Self, InvalidOptions | RestartIntensityExceeded>
    readonly launch: Effect.Effect<void, InvalidOptions | RestartIntensityExceeded>
  } => {
    const Base = Context_.Service<Self, RateLimitedSupervisor<X>>()(id)
    const started = make({ name: id, ...options })
    const layer_ = supervisorLayer(Base as unknown as Context.Key<Self, RateLimitedSupervisor<X>>, started, await_)
    return Object.assign(Base, { layer: layer_, launch: launchUntilStopped(started, await_) }) as any
  }

/**
 * The options of {@link startChild}.
 *
 * @category models
 * @since 0.1.0
 */
export interface StartOptions {
  /** The request's key (tenant): its `perKey` limits apply and keys are served round-robin. */
  readonly key?: string | undefined
}

/**
 * Starts a child once the limiter and `maxLive` allow it, and returns after
 * its `start` finished, with the child (as `DynamicSupervisor.startChild`).
 *
 * **Details**
 *
 * - Waits in the queue (FIFO within a key, keys round-robin) while the rate
 *   or `maxLive` does not allow a start; fails with `QueueFull` at once when
 *   `maxQueue` requests already wait.
 * - The admission is spent when `start` begins. If `start` fails, the call
 *   fails with that error (the attempt counted: it did reach whatever the
 *   limit protects).
 * - Interrupting the caller while it waits removes it from the queue; it has
 *   consumed nothing and no child was created. Interrupting it during
 *   `start` stops the child, as `DynamicSupervisor.startChild` does.
 * - After the supervisor stopped (its Scope closed, or it gave up) it fails
 *   with `SupervisorStopped`; so do the requests still queued then.
 *
 * **Example** (A burst of jobs at 10 per second)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, RateLimitedSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* RateLimitedSupervisor.make({ limit: 10, window: "1 second", maxQueue: 200 })
 *   const child = yield* RateLimitedSupervisor.startChild(sup, ChildSpec.task(Effect.log("job")), { key: "tenant-a" })
 *   return child.pid
 * })
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const startChild: {
  <A, E, R, X>(
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>),
    options?: StartOptions
  ): (
    self: RateLimitedSupervisor<X>
  ) => Effect.Effect<
    DynamicSupervisor.Child<A>,
    E | RateLimiter.QueueFull | SupervisorStopped | InvalidOptions | MaxChildren,
    R
  >
  <A, E, R, X>(
    self: RateLimitedSupervisor<X>,
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>),
    options?: StartOptions
  ): Effect.Effect<
    DynamicSupervisor.Child<A>,
    E | RateLimiter.QueueFull | SupervisorStopped | InvalidOptions | MaxChildren,
    R
  >
} = dual(
  (args) => isRateLimitedSupervisor(args[0]),
  <A, E, R, X>(
    self: RateLimitedSupervisor<X>,
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>),
    options?: StartOptions
  ): Effect.Effect<
    DynamicSupervisor.Child<A>,
    E | RateLimiter.QueueFull | SupervisorStopped | InvalidOptions | MaxChildren,
    R
  > =>
    Effect.suspend(() => {
      const s = impl(self)
      const resolved = typeof spec === "function" ? spec(s.extraArguments as X) : spec
      // a bad spec is rejected before it queues or spends anything
      if (resolved.invalid !== undefined) return Effect.fail(resolved.invalid)
      const key = options?.key
      const admission = { at: 0, admitted: false }
      const wrapped = s.wrap(resolved, key, admission)
      // installed before the request queues, so a slot taken at admission is always given back,
      // whatever happens after (a failed start, an interruption between admission and start)
      const start = DynamicSupervisor.startChild(s.supervisor, wrapped)
      return Effect.onExit(
        Effect.suspend(() => {
          const taken = s.core.takeUnsafe(key, false, (now) => {
            admission.at = now
            admission.admitted = true
            s.inFlight++
          })
          // admitted at once (nobody waits, capacity left): start with no step in between
          return taken === Effect.void ? start : Effect.andThen(taken, start)
        }),
        // the slot is given back on the spot: no finalizer effect to build and run
        () => {
          if (admission.admitted) {
            s.inFlight--
            if (s.core.queued > 0) s.core.drain()
          }
          return Effect.void
        }
      ) as Effect.Effect<
        DynamicSupervisor.Child<A>,
        E | RateLimiter.QueueFull | SupervisorStopped | InvalidOptions | MaxChildren,
        R
      >
    })
)

/**
 * Stops a child and removes it (see `DynamicSupervisor.terminateChild`);
 * its slot goes to the next queued request.
 *
 * @category combinators
 * @since 0.1.0
 */
export const terminateChild: {
  (
    child: DynamicSupervisor.Child<unknown>
  ): <X>(self: RateLimitedSupervisor<X>) => Effect.Effect<void, ChildNotFound | SupervisorStopped>
  <X>(
    self: RateLimitedSupervisor<X>,
    child: DynamicSupervisor.Child<unknown>
  ): Effect.Effect<void, ChildNotFound | SupervisorStopped>
} = dual(
  2,
  <X>(
    self: RateLimitedSupervisor<X>,
    child: DynamicSupervisor.Child<unknown>
  ): Effect.Effect<void, ChildNotFound | SupervisorStopped> =>
    Effect.ensuring(
      DynamicSupervisor.terminateChild(impl(self).supervisor, child),
      Effect.sync(() => impl(self).core.drain())
    )
)

/**
 * Counts the children (see `DynamicSupervisor.countChildren`); queued
 * requests are not children yet.
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildren = <X>(
  self: RateLimitedSupervisor<X>
): Effect.Effect<DynamicSupervisor.Counts, SupervisorStopped> => DynamicSupervisor.countChildren(impl(self).supervisor)

/**
 * The synchronous twin of {@link countChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * **Example** (Counting without an effect)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, RateLimitedSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* RateLimitedSupervisor.make({ limit: 10, window: "1 second" })
 *   yield* RateLimitedSupervisor.startChild(sup, ChildSpec.make({ start: Effect.void }))
 *   return RateLimitedSupervisor.countChildrenUnsafe(sup)
 * })
 * // => { specs: 1, active: 1, supervisors: 0, workers: 1 }
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildrenUnsafe = <X>(self: RateLimitedSupervisor<X>): DynamicSupervisor.Counts | undefined =>
  DynamicSupervisor.countChildrenUnsafe(impl(self).supervisor)

/**
 * Lists the children (see `DynamicSupervisor.whichChildren`).
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildren = <X>(
  self: RateLimitedSupervisor<X>
): Effect.Effect<ReadonlyArray<DynamicSupervisor.ChildInfo>, SupervisorStopped> =>
  DynamicSupervisor.whichChildren(impl(self).supervisor)

/**
 * The synchronous twin of {@link whichChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * **Example** (Listing without an effect)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, RateLimitedSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* RateLimitedSupervisor.make({ limit: 10, window: "1 second" })
 *   yield* RateLimitedSupervisor.startChild(sup, ChildSpec.make({ id: "job", start: Effect.void }))
 *   return RateLimitedSupervisor.whichChildrenUnsafe(sup)?.map((c) => c.id)
 * })
 * // => ["job"]
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildrenUnsafe = <X>(
  self: RateLimitedSupervisor<X>
): ReadonlyArray<DynamicSupervisor.ChildInfo> | undefined =>
  DynamicSupervisor.whichChildrenUnsafe(impl(self).supervisor)

const await_ = <X>(self: RateLimitedSupervisor<X>): Effect.Effect<void, RestartIntensityExceeded> =>
  DynamicSupervisor.await(impl(self).supervisor)

export {
  /**
   * Waits until the supervisor stops: succeeds when its Scope closed, fails
   * with `RestartIntensityExceeded` when it gave up.
   *
   * @category getters
   * @since 0.1.0
   */
  await_ as await
}

/**
 * Changes the rate, the queue bound, the per-key limits and `maxLive` at
 * runtime; omitted fields keep their value. Queued requests are re-planned
 * at once: raising the limit starts them right away, in order.
 *
 * **Example** (From 10 to 25 starts per second)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimitedSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* RateLimitedSupervisor.make({ limit: 10, window: "1 second" })
 *   yield* RateLimitedSupervisor.setLimits(sup, { limit: 25, maxLive: 100 })
 *   const stats = yield* RateLimitedSupervisor.stats(sup)
 *   return [stats.limit, stats.maxLive]
 * })
 * // => [25, 100]
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const setLimits: {
  (update: LimitsUpdate): <X>(self: RateLimitedSupervisor<X>) => Effect.Effect<void, InvalidOptions>
  <X>(self: RateLimitedSupervisor<X>, update: LimitsUpdate): Effect.Effect<void, InvalidOptions>
} = dual(2, <X>(self: RateLimitedSupervisor<X>, update: LimitsUpdate): Effect.Effect<void, InvalidOptions> =>
  Effect.suspend(() => {
    const s = impl(self)
    const m = "RateLimitedSupervisor"
    const decoded = options_.decodeUpdate(
      m,
      { limits: s.core.global.limits, perKey: s.core.perKey, maxQueue: s.core.maxQueue },
      update
    )
    if (decoded instanceof InvalidOptions) return Effect.fail(decoded)
    const maxLive = update.maxLive ?? s.maxLive
    const e = options_.checkCount(m, "maxLive", maxLive, 1)
    if (e) return Effect.fail(e)
    s.maxLive = maxLive
    s.core.setLimits(decoded.limits, decoded.perKey, decoded.maxQueue)
    return Effect.void
  })
)

/**
 * The synchronous twin of {@link stats}.
 *
 * @category getters
 * @since 0.1.0
 */
export const statsUnsafe = <X>(self: RateLimitedSupervisor<X>): Stats => {
  const s = impl(self)
  return { ...RateLimiter.statsUnsafe(s.limiter), live: s.live(), maxLive: s.maxLive }
}

/**
 * Reads the limiter's figures (queue, admissions, rejections, the window)
 * and the live children against `maxLive`. The limiter's metrics carry the
 * supervisor's name as their `limiter` attribute.
 *
 * @category getters
 * @since 0.1.0
 */
export const stats = <X>(self: RateLimitedSupervisor<X>): Effect.Effect<Stats> => Effect.sync(() => statsUnsafe(self))

/**
 * A child spec that runs a rate-limited supervisor under another supervisor:
 * type `"supervisor"`, shutdown `"infinity"`, permanent unless told; its body
 * fails with `RestartIntensityExceeded` when it gives up, so its parent
 * restarts it (escalation). The handle is the `RateLimitedSupervisor`.
 *
 * **Example** (A spawner in an application tree)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, RateLimitedSupervisor, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const app = yield* Supervisor.make(
 *     [RateLimitedSupervisor.childSpec({ id: "spawner", limit: 10, window: "1 second" })],
 *     { strategy: "oneForOne" }
 *   )
 *   return (yield* Supervisor.countChildren(app)).supervisors
 * })
 * // => 1
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = <X = never>(
  options: Options<X> & {
    readonly id?: string | undefined
    readonly restart?: ChildSpec.Restart | undefined
  }
): ChildSpec.ChildSpec<RateLimitedSupervisor<X>, InvalidOptions> =>
  ChildSpec.make({
    id: options.id ?? options.name,
    // without a name, named by its id (its events, logs and metrics say which one)
    start: make(options.name === undefined && options.id !== undefined ? { ...options, name: options.id } : options),
    run: await_,
    restart: options.restart ?? "permanent",
    type: "supervisor"
  })

/**
 * Returns true if the value is a {@link RateLimitedSupervisor}.
 *
 * @category guards
 * @since 0.1.0
 */
export const isRateLimitedSupervisor = (u: unknown): u is RateLimitedSupervisor<unknown> =>
  Predicate.hasProperty(u, TypeId)
