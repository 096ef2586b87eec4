/**
 * Admits at most a given number of requests per window of time, queuing the
 * rest in order, in memory, on Effect's `Clock`.
 *
 * A `Semaphore` bounds how many requests run *at once*; a `RateLimiter`
 * bounds how many *start* per unit of time, however long each runs. Effect's
 * own `RateLimiter` (in `effect/persistence`) is built for shared stores
 * (Redis) and reports "try again later"; this one is local, queues excess
 * requests in a bounded FIFO, and is the limiter in front of
 * `RateLimitedSupervisor`.
 *
 * Two algorithms, chosen with `algorithm`:
 *
 * - `"slidingWindow"` (the default): at most `limit` admissions in ANY
 *   interval of length `window` — not per calendar second, not per window
 *   that starts at the first request: any. A burst at the end of one window
 *   and another at the start of the next can never add up to `2 * limit`.
 * - `"tokenBucket"`: a bucket of `burst` tokens (default `limit`), refilled
 *   continuously at `limit` per `window`. It lets an idle client burst, so an
 *   interval of length `window` can see up to `burst + limit - 1` admissions
 *   (19 for 10 per second starting full). Pick it when average rate matters
 *   more than the worst window.
 *
 * Both plan the next admission from the admissions themselves (the sliding
 * log, the bucket's theoretical arrival time), never from "now + interval",
 * so a saturated limiter admits exactly `limit` per `window` with no drift.
 * Time is the `Clock`'s monotonic reading: tests drive it with `TestClock`.
 *
 * **What it handles.** Requests over the rate wait in a FIFO queue bounded
 * by `maxQueue` (beyond it: `QueueFull`, at once). A waiter that is
 * interrupted leaves the queue and consumes nothing. With `perKey` limits
 * (tenants), each key also has its own limit and the keys that have waiters
 * are served round-robin, so one busy key cannot starve the others.
 * `setLimits` changes the limits at runtime; what is queued is re-planned at
 * once, against the admissions already made.
 *
 * **What it does not do.** It is local to one process, and a request costs
 * exactly one admission (no weights).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type { Pipeable } from "effect/Pipeable"
import * as Predicate from "effect/Predicate"
import type * as Scope from "effect/Scope"
import { InvalidOptions } from "../Errors.ts"
import * as ChildSpec from "../Supervisor/ChildSpec.ts"
import type { AlgorithmName } from "./internal/algorithm.ts"
import { Core, TypeId } from "./internal/core.ts"
import * as options_ from "./internal/options.ts"

export {
  /**
   * @category errors
   * @since 0.1.0
   */
  InvalidOptions
}

/**
 * A running rate limiter.
 *
 * @category models
 * @since 0.1.0
 */
export interface RateLimiter extends Pipeable {
  readonly [TypeId]: typeof TypeId
  /** The name given in the options, for logs and metrics. */
  readonly name: string
}

/**
 * The admission algorithm: `"slidingWindow"` (at most `limit` in any
 * `window`) or `"tokenBucket"` (bursts up to `burst`, refilled at `limit`
 * per `window`).
 *
 * @category models
 * @since 0.1.0
 */
export type Algorithm = AlgorithmName

/**
 * Limits that apply to each key separately, in addition to the global ones.
 * They use the limiter's algorithm.
 *
 * @category models
 * @since 0.1.0
 */
export interface KeyLimits {
  /** Admissions per window for one key. */
  readonly limit: number
  /** The window. */
  readonly window: Duration.Input
  /** Token bucket only: the bucket capacity. @default limit */
  readonly burst?: number | undefined
}

/**
 * The options of {@link make}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** A name for logs and metrics (the `limiter` attribute). @default "RateLimiter" */
  readonly name?: string | undefined
  /** @default "slidingWindow" */
  readonly algorithm?: Algorithm | undefined
  /** Admissions per window (sliding window), or tokens refilled per window (token bucket). An integer >= 1. */
  readonly limit: number
  /** The window: a finite duration > 0 (`"1 second"`, `1000`). */
  readonly window: Duration.Input
  /** Token bucket only: how many tokens the bucket holds (the largest burst). @default limit */
  readonly burst?: number | undefined
  /** How many requests may wait; one more fails with `QueueFull`. `0` never queues. @default 1000 */
  readonly maxQueue?: number | undefined
  /** Limits for each key (tenant) on top of the global ones; keys are then served round-robin anyway. */
  readonly perKey?: KeyLimits | undefined
}

/**
 * A change of limits for {@link setLimits}: every field is optional and
 * keeps its current value when omitted, except `burst`, which follows a new
 * `limit` unless given. `perKey: null` removes the per-key limits.
 *
 * @category models
 * @since 0.1.0
 */
export interface LimitsUpdate {
  readonly limit?: number | undefined
  readonly window?: Duration.Input | undefined
  readonly burst?: number | undefined
  readonly perKey?: KeyLimits | null | undefined
  readonly maxQueue?: number | undefined
}

/**
 * What {@link stats} reports.
 *
 * @category models
 * @since 0.1.0
 */
export interface Stats {
  /** Requests waiting (not counting restarts). */
  readonly queued: number
  /** Restarts waiting (`RateLimitedSupervisor` only); they go before `queued`. */
  readonly priorityQueued: number
  /** Requests admitted since the limiter started. */
  readonly admitted: number
  /** Requests rejected since the limiter started: `QueueFull`, and `tryTake` calls not admitted at once. */
  readonly rejected: number
  /** Admissions counted in the window that ends now (sliding window); tokens missing from the bucket (token bucket). */
  readonly inWindow: number
  /** How many requests could be admitted right now, one after the other. */
  readonly available: number
  /** Keys (lanes) the limiter currently remembers. */
  readonly keys: number
  /** When the next waiter can be admitted, if any waits and nothing else (a gate) holds it. */
  readonly nextAdmissionInMillis: number | undefined
  readonly algorithm: Algorithm
  readonly limit: number
  readonly windowMillis: number
  readonly burst: number
  readonly maxQueue: number
}

/**
 * The queue of waiting requests is full (`maxQueue`): the request was
 * rejected at once and consumed nothing.
 *
 * @category errors
 * @since 0.1.0
 */
export class QueueFull extends Data.TaggedError("QueueFull")<{
  readonly limiter: string
  readonly maxQueue: number
  /** The request's key, if it had one. */
  readonly key: string | undefined
  /**
   * How long until a place in the queue frees (the request at its head is
   * admitted), in milliseconds: for answering 429 with a Retry-After, as
   * {@link RateLimitExceeded} carries. A lower bound when others retry too.
   */
  readonly retryAfterMillis: number
}> {
  override get message(): string {
    return `${this.limiter}: the queue is full (maxQueue ${this.maxQueue})${
      this.key === undefined ? "" : ` for a request of key ${JSON.stringify(this.key)}`
    }`
  }
}

/**
 * {@link tryTake} could not be admitted at once. `retryAfterMillis` is the
 * caller's own wait: when the global limits and this key's limits next allow
 * one admission (not the next wall-clock boundary).
 *
 * @category errors
 * @since 0.1.0
 */
export class RateLimitExceeded extends Data.TaggedError("RateLimitExceeded")<{
  readonly limiter: string
  readonly key: string | undefined
  readonly retryAfterMillis: number
}> {
  override get message(): string {
    return `${this.limiter}: rate limit exceeded${
      this.key === undefined ? "" : ` for key ${JSON.stringify(this.key)}`
    }; retry after ${this.retryAfterMillis} ms`
  }
}

/**
 * The limiter's Scope has closed: waiting requests fail with this error and
 * new ones are refused.
 *
 * @category errors
 * @since 0.1.0
 */
export class RateLimiterClosed extends Data.TaggedError("RateLimiterClosed")<{
  readonly limiter: string
}> {
  override get message(): string {
    return `${this.limiter}: the rate limiter has shut down`
  }
}

const core = (self: RateLimiter): Core => self as unknown as Core

/**
 * Starts a rate limiter owned by the current Scope. Closing the Scope fails
 * every waiting request with `RateLimiterClosed`.
 *
 * **Details**
 *
 * The options are checked first: a `limit` that is not an integer >= 1 (0,
 * negative, NaN, fractional), a `window` that is zero, negative or infinite,
 * a `burst` given for the sliding window, or a negative `maxQueue` fail with
 * `InvalidOptions` naming the field and the value.
 *
 * **Example** (Ten per second, at most 100 waiting)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({ limit: 10, window: "1 second", maxQueue: 100 })
 *   yield* RateLimiter.take(limiter) // admitted at once: the window is empty
 *   return (yield* RateLimiter.stats(limiter)).available
 * })
 * // => 9
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<RateLimiter, InvalidOptions, Scope.Scope> =>
  Effect.suspend(() => {
    const decoded = options_.decodeOptions("RateLimiter", options)
    if (decoded instanceof InvalidOptions) return Effect.fail(decoded)
    const name = decoded.name ?? "RateLimiter"
    return Effect.acquireRelease(
      Effect.withFiber((fiber) =>
        Effect.succeed(
          new Core({
            name,
            limits: decoded.limits,
            perKey: decoded.perKey,
            maxQueue: decoded.maxQueue,
            clock: fiber.getRef(Clock.Clock),
            context: fiber.context as Context.Context<never>,
            queueFull: (key, maxQueue, retryAfterMillis) =>
              new QueueFull({ limiter: name, maxQueue, key, retryAfterMillis })
          })
        )
      ),
      (limiter) => Effect.sync(() => limiter.close(Effect.fail(new RateLimiterClosed({ limiter: name }))))
    ).pipe(Effect.map((c) => c as unknown as RateLimiter))
  })

/**
 * A layer that provides a rate limiter under the given service key.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I>(tag: Context.Key<I, RateLimiter>, options: Options): Layer.Layer<I, InvalidOptions> =>
  Layer.effect(tag)(make(options))

/**
 * Declares a named rate limiter as a service class with its `layer`.
 *
 * **Example** (A limiter for an outbound API)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "effect-otp"
 *
 * class ApiLimiter extends RateLimiter.Service<ApiLimiter>()("app/ApiLimiter", {
 *   limit: 100,
 *   window: "1 second"
 * }) {}
 *
 * const call = Effect.gen(function*() {
 *   const limiter = yield* ApiLimiter
 *   return yield* RateLimiter.run(limiter, Effect.log("call"))
 * })
 * const program = call.pipe(Effect.provide(ApiLimiter.layer))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const Service =
  <Self>() =>
  <const Id extends string>(
    id: Id,
    options: Options
  ): Context.ServiceClass<Self, Id, RateLimiter> & {
    readonly layer: Layer.Layer<Self, InvalidOptions>
    /** Runs the limiter alone until interrupted (`Layer.launch` of its layer). */
    readonly launch: Effect.Effect<never, InvalidOptions>
  } => {
    const Base = Context.Service<Self, RateLimiter>()(id)
    const layer_ = Layer.effect(Base as unknown as Context.Key<Self, RateLimiter>)(make({ name: id, ...options }))
    return Object.assign(Base, { layer: layer_, launch: Layer.launch(layer_) }) as any
  }

/**
 * The options of {@link take} and {@link run}.
 *
 * @category models
 * @since 0.1.0
 */
export interface TakeOptions {
  /** The request's key (tenant): its `perKey` limits apply, and keys are served round-robin. */
  readonly key?: string | undefined
}

/**
 * Waits until the request is admitted; succeeds when it is.
 *
 * **Details**
 *
 * - If nobody is waiting and the limits allow it, it is admitted at once.
 *   Otherwise it joins the queue (FIFO within its key, keys round-robin) —
 *   or fails with `QueueFull` at once when `maxQueue` requests already wait.
 * - Interrupting the caller while it waits removes it from the queue; it has
 *   consumed nothing.
 * - After the limiter's Scope closed it fails with `RateLimiterClosed`.
 *
 * **Gotchas**
 *
 * The admission is spent as soon as `take` succeeds: start the limited work
 * right after it (or use {@link run}), do not park in between.
 *
 * **Example** (Three per second)
 *
 * ```ts
 * import { Clock, Effect } from "effect"
 * import { RateLimiter } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({ limit: 3, window: "1 second" })
 *   const start = yield* Clock.currentTimeMillis
 *   // the fourth waits until one second after the first
 *   yield* Effect.forEach([1, 2, 3, 4], () => RateLimiter.take(limiter))
 *   return (yield* Clock.currentTimeMillis) - start
 * })
 * // => 1000
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const take: {
  (options?: TakeOptions): (self: RateLimiter) => Effect.Effect<void, QueueFull | RateLimiterClosed>
  (self: RateLimiter, options?: TakeOptions): Effect.Effect<void, QueueFull | RateLimiterClosed>
} = dual(
  (args) => isRateLimiter(args[0]),
  (self: RateLimiter, options?: TakeOptions): Effect.Effect<void, QueueFull | RateLimiterClosed> =>
    core(self).take(options?.key, false) as Effect.Effect<void, QueueFull | RateLimiterClosed>
)

/**
 * Admits the request at once or fails with `RateLimitExceeded` carrying how
 * long this caller should wait; it never queues.
 *
 * **Details**
 *
 * It succeeds exactly when {@link take} would be admitted at once: the limits
 * allow it and its turn comes now (FIFO within its key, keys round-robin), so
 * it never jumps ahead of a queued request of its key. The wait is
 * caller-relative: the time until the global limits and this key's own
 * limits next allow one admission — a lower bound while others are queued,
 * since they go first. A failed `tryTake` counts as a rejection in `stats`
 * and metrics.
 *
 * **Example** (Answering 429 with Retry-After)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({ limit: 1, window: "1 second" })
 *   yield* RateLimiter.tryTake(limiter)
 *   const e = yield* Effect.flip(RateLimiter.tryTake(limiter))
 *   // the limiter may also be closed; here it is open
 *   return e._tag === "RateLimitExceeded" ? e.retryAfterMillis : undefined
 * })
 * // while the clock stands still:
 * // => 1000
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const tryTake: {
  (options?: TakeOptions): (self: RateLimiter) => Effect.Effect<void, RateLimitExceeded | RateLimiterClosed>
  (self: RateLimiter, options?: TakeOptions): Effect.Effect<void, RateLimitExceeded | RateLimiterClosed>
} = dual(
  (args) => isRateLimiter(args[0]),
  (self: RateLimiter, options?: TakeOptions): Effect.Effect<void, RateLimitExceeded | RateLimiterClosed> =>
    core(self).tryTake(
      options?.key,
      (retryAfterMillis) => new RateLimitExceeded({ limiter: self.name, key: options?.key, retryAfterMillis })
    ) as Effect.Effect<void, RateLimitExceeded | RateLimiterClosed>
)

/**
 * Runs an effect once it is admitted ({@link take}, then the effect).
 *
 * **Example** (Limiting calls to an API)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({ limit: 5, window: "1 second", perKey: { limit: 2, window: "1 second" } })
 *   const call = (tenant: string) => Effect.log(`call for ${tenant}`)
 *   yield* Effect.forEach(["a", "a", "a", "b"], (t) => RateLimiter.run(limiter, call(t), { key: t }), {
 *     concurrency: "unbounded"
 *   })
 * })
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const run: {
  (
    self: RateLimiter,
    options?: TakeOptions
  ): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | QueueFull | RateLimiterClosed, R>
  <A, E, R>(
    self: RateLimiter,
    effect: Effect.Effect<A, E, R>,
    options?: TakeOptions
  ): Effect.Effect<A, E | QueueFull | RateLimiterClosed, R>
} = function (this: unknown) {
  const self = arguments[0] as RateLimiter
  if (Effect.isEffect(arguments[1])) {
    return core(self).run(arguments[1], (arguments[2] as TakeOptions | undefined)?.key)
  }
  const options = arguments[1] as TakeOptions | undefined
  return (effect: Effect.Effect<unknown, unknown, unknown>) => core(self).run(effect, options?.key)
} as any

/**
 * Changes the limits at runtime. Fields left out keep their values.
 *
 * **Details**
 *
 * The new limits apply from now on, against the admissions already made:
 * lowering the sliding window's `limit` from 10 to 5 after 8 admissions in
 * the current window admits nothing more until only 4 are left in it;
 * raising it admits the queued requests at once, in order. A token bucket
 * keeps its tokens (capped at the new `burst`). The algorithm cannot change.
 * Invalid values fail with `InvalidOptions` and change nothing.
 *
 * **Example** (Raising the limit mid-flight)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({ limit: 10, window: "1 second" })
 *   yield* RateLimiter.setLimits(limiter, { limit: 25 })
 *   return (yield* RateLimiter.stats(limiter)).limit
 * })
 * // => 25
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const setLimits: {
  (update: LimitsUpdate): (self: RateLimiter) => Effect.Effect<void, InvalidOptions>
  (self: RateLimiter, update: LimitsUpdate): Effect.Effect<void, InvalidOptions>
} = dual(2, (self: RateLimiter, update: LimitsUpdate): Effect.Effect<void, InvalidOptions> =>
  Effect.suspend(() => {
    const c = core(self)
    const decoded = options_.decodeUpdate(
      "RateLimiter",
      { limits: c.global.limits, perKey: c.perKey, maxQueue: c.maxQueue },
      update
    )
    if (decoded instanceof InvalidOptions) return Effect.fail(decoded)
    c.setLimits(decoded.limits, decoded.perKey, decoded.maxQueue)
    return Effect.void
  })
)

/**
 * The synchronous twin of {@link stats}.
 *
 * @category getters
 * @since 0.1.0
 */
export const statsUnsafe = (self: RateLimiter): Stats => {
  const c = core(self)
  const limits = c.global.limits
  return {
    ...c.stats(),
    algorithm: limits.algorithm,
    limit: limits.limit,
    windowMillis: limits.window,
    burst: limits.burst,
    maxQueue: c.maxQueue
  }
}

/**
 * Reads the limiter's state: what waits, what was admitted and rejected,
 * what the current window holds, and the limits in force. The same figures
 * are reported as Effect metrics, with a `limiter` attribute:
 * `effect_otp_limiter_queue_depth` (gauge), `effect_otp_limiter_wait_millis`
 * (histogram), `effect_otp_limiter_admissions_total` and
 * `effect_otp_limiter_rejections_total` (counters; admissions per interval
 * is the rate of the first). The admissions counter and the wait histogram
 * are kept by the limiter and computed when read, so admitting costs no
 * metric update; limiters with the same name share one series.
 *
 * @category getters
 * @since 0.1.0
 */
export const stats = (self: RateLimiter): Effect.Effect<Stats> => Effect.sync(() => statsUnsafe(self))

/**
 * A child spec that owns a rate limiter: it lives as long as the child's
 * incarnation (a restart starts a fresh window), its handle is the
 * `RateLimiter`. Permanent unless told; a worker with no body.
 *
 * **Example** (A limiter in an application tree)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const app = yield* Supervisor.make(
 *     [RateLimiter.childSpec({ id: "api", limit: 100, window: "1 second" })],
 *     { strategy: "oneForOne" }
 *   )
 *   return (yield* Supervisor.countChildren(app)).workers
 * })
 * // => 1
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = (
  options: Options & {
    readonly id?: string | undefined
    readonly restart?: ChildSpec.Restart | undefined
  }
): ChildSpec.ChildSpec<RateLimiter, InvalidOptions> =>
  ChildSpec.make({
    id: options.id ?? options.name,
    // without a name, named by its id (its events, logs and metrics say which one)
    start: make(options.name === undefined && options.id !== undefined ? { ...options, name: options.id } : options),
    restart: options.restart ?? "permanent"
  })

/**
 * Returns true if the value is a {@link RateLimiter}.
 *
 * @category guards
 * @since 0.1.0
 */
export const isRateLimiter = (u: unknown): u is RateLimiter => Predicate.hasProperty(u, TypeId)
