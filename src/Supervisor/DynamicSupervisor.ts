/**
 * A supervisor that starts its children at runtime, restarts them by policy
 * when they exit, and stops them all when its Scope closes.
 *
 * A static `Supervisor` is given its children when it starts and starts them
 * in order. A `DynamicSupervisor` starts with none: children are started on
 * demand with {@link startChild} (a session per user, a connection per slot,
 * a job per request), there is no order between them, and they are identified
 * by the `Child` value `startChild` returns (its `pid` names that incarnation;
 * spec ids are labels, not keys). That is what lets it hold hundreds of
 * thousands of children and stop them all concurrently.
 *
 * Every child is one fiber with its own `Scope` (see `ChildSpec`). When a
 * child exits by itself, its restart value decides: `"permanent"` children are
 * restarted after any exit, `"transient"` ones after a failure or defect,
 * `"temporary"` ones never. Restarts are limited, exactly as in OTP: more than
 * `maxRestarts` restarts within `maxSeconds` and the supervisor gives up —
 * it stops every child and fails with `RestartIntensityExceeded`, so the
 * supervisor above it can restart it in turn.
 *
 * **What it does not do.** JavaScript cannot kill a fiber that is running an
 * uninterruptible region (a finalizer, say). A child that does not finish
 * stopping within its `shutdown` duration is *abandoned*: the supervisor stops
 * waiting for it, logs a warning, counts it in the
 * `effect_otp_child_shutdown_abandoned_total` metric, and goes on.
 *
 * **Differences from Elixir, on purpose.**
 * - The intensity window is measured in milliseconds on Effect's `Clock`
 *   (`now - t <= maxSeconds * 1000`), where OTP counts whole monotonic
 *   seconds, so that fractional periods work and `TestClock` drives it.
 * - `restartBackoff` (a `Schedule`) may delay each restart; OTP restarts at
 *   once, which stays the default.
 * - A start that fails is a typed failure of `startChild` (the start's own
 *   error); there is no `:ignore`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type { Pipeable } from "effect/Pipeable"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { ChildNotFound, InvalidOptions, MaxChildren, RestartIntensityExceeded, SupervisorStopped } from "../Errors.ts"
import * as ChildSpec from "./ChildSpec.ts"
import * as Registry from "../Registry/Registry.ts"
import type { ChildType } from "./ChildSpec.ts"
import { backoffDelay } from "../internal/backoff.ts"
import * as child from "../internal/child.ts"
import { decodeRestartPolicy, InvalidBackoff, inputMillis } from "../internal/policy.ts"
import { isTracing } from "../internal/shell.ts"
import { DynamicEngine, TypeId } from "./internal/dynamic.ts"
import { launchUntilStopped, supervisorLayer } from "../internal/launch.ts"

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

/**
 * A running dynamic supervisor. `X` is the type of its `extraArguments`.
 *
 * @category models
 * @since 0.1.0
 */
export interface DynamicSupervisor<in out X = never> extends Pipeable {
  readonly [TypeId]: { readonly _X: (_: X) => X }
  /** The name given in the options, for logs, metrics and the live tree. */
  readonly name: string
}

/**
 * One incarnation of a supervised child, as `startChild` returns it.
 *
 * `pid` identifies this incarnation: after a restart the child has a new
 * `pid` and a new `handle`, and this value no longer names it (operations on
 * it fail with `ChildNotFound`, as an old pid does in Elixir). Callers that
 * must survive restarts address the child through a `Registry`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Child<out A> {
  readonly pid: number
  readonly id: string | undefined
  readonly type: ChildType
  readonly handle: A
}

/**
 * One entry of {@link whichChildren}: the running incarnation, or
 * `"restarting"` while a restart is pending or being retried.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildInfo {
  readonly pid: number
  readonly id: string | undefined
  readonly child: Child<unknown> | "restarting"
  readonly type: ChildType
  /** How many times this child has been restarted since `startChild`. */
  readonly restarts: number
}

/**
 * The result of {@link countChildren}, with Elixir's meaning: `specs` counts
 * every child including those waiting to be restarted, `active` those that
 * are running, `workers` and `supervisors` split `specs` by type.
 *
 * @category models
 * @since 0.1.0
 */
export interface Counts {
  readonly specs: number
  readonly active: number
  readonly supervisors: number
  readonly workers: number
}

/**
 * The options of {@link make}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<X = never> {
  /** A name for logs, metrics and the live tree. @default "DynamicSupervisor" */
  readonly name?: string | undefined
  /** At most this many children, counting those waiting to be restarted. @default Infinity */
  readonly maxChildren?: number | undefined
  /** Restarts allowed within `maxSeconds` before the supervisor gives up. @default 3 */
  readonly maxRestarts?: number | undefined
  /** The intensity window, in seconds (fractions allowed). @default 5 */
  readonly maxSeconds?: number | undefined
  /** A value given to every child spec factory passed to `startChild`. */
  readonly extraArguments?: X | undefined
  /**
   * Delays each restart of a child by the schedule's next delay (its input is
   * the number of consecutive restarts of that child, from 1). When the
   * schedule ends, the supervisor gives up as if the intensity were exceeded.
   * Each child has its own schedule state. OTP has none: restarts are immediate.
   */
  readonly restartBackoff?: Schedule.Schedule<unknown, number> | undefined
  /**
   * A child that stayed up this long before exiting starts its backoff afresh.
   *
   * @default the intensity window, `maxSeconds`
   */
  readonly restartBackoffResetAfter?: Duration.Input | undefined
}

const impl = <X>(self: DynamicSupervisor<X>): DynamicEngine => self as unknown as DynamicEngine

/**
 * Starts a dynamic supervisor with no children, owned by the current Scope:
 * closing the Scope stops every child (concurrently, each by its own
 * shutdown policy) before the Scope is released.
 *
 * **Details**
 *
 * Options are checked first: a negative `maxChildren`, a zero or NaN
 * `maxSeconds`, a fractional `maxRestarts` fail with `InvalidOptions` naming
 * the field and the value, and nothing is started.
 *
 * **Example** (A supervisor with a limit)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* DynamicSupervisor.make({ maxChildren: 2 })
 *   yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.succeed("a") }))
 *   return yield* DynamicSupervisor.countChildren(sup)
 * })
 * // => { specs: 1, active: 1, supervisors: 0, workers: 1 }
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <X = never>(
  options: Options<X> = {}
): Effect.Effect<DynamicSupervisor<X>, InvalidOptions, Scope.Scope> =>
  Effect.suspend(() => {
    const error = validate(options)
    if (error instanceof InvalidOptions) return Effect.fail(error)
    return Effect.acquireRelease(
      Effect.withFiber((fiber) => {
        const sup = new DynamicEngine(
          "DynamicSupervisor",
          options.name ?? "DynamicSupervisor",
          options.maxChildren ?? Infinity,
          options.extraArguments,
          error,
          fiber.context as Context.Context<never>
        )
        return Effect.succeed(sup as unknown as DynamicSupervisor<X>)
      }),
      (sup) => impl(sup).shutdown("shutdown")
    )
  })

/** Checks the options (`null` included); the decoded restart policy or the error. @internal */
const validate = (options: Options<any>) => {
  if (typeof options !== "object" || options === null) {
    return new InvalidOptions({ module: "DynamicSupervisor", field: "options", value: options, expected: "an object" })
  }
  return decodeRestartPolicy("DynamicSupervisor", options)
}

/**
 * A layer that provides a dynamic supervisor under the given service key,
 * started when the layer is built and stopped when it is released.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I, X = never>(
  tag: Context.Key<I, DynamicSupervisor<X>>,
  options?: Options<X>
): Layer.Layer<I, InvalidOptions | RestartIntensityExceeded> => supervisorLayer(tag, make(options), await_)

/**
 * Declares a named dynamic supervisor as a service class, the Effect
 * counterpart of a module-based `DynamicSupervisor` (`use DynamicSupervisor`).
 *
 * **Example** (The seed's `MyApp.WorkerSupervisor`)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * class WorkerSupervisor extends DynamicSupervisor.Service<WorkerSupervisor>()("MyApp/WorkerSupervisor", {
 *   maxChildren: 100
 * }) {}
 *
 * const startWorker = (arg: string) =>
 *   Effect.gen(function*() {
 *     const sup = yield* WorkerSupervisor
 *     return yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.succeed(arg) }))
 *   })
 *
 * const program = startWorker("job-1").pipe(Effect.provide(WorkerSupervisor.layer))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const Service =
  <Self>() =>
  <const Id extends string, X = never>(
    id: Id,
    options?: Options<X>
  ): Context.ServiceClass<Self, Id, DynamicSupervisor<X>> & {
    readonly layer: Layer.Layer<Self, InvalidOptions | RestartIntensityExceeded>
    readonly launch: Effect.Effect<void, InvalidOptions | RestartIntensityExceeded>
  } => {
    const Base = Context.Service<Self, DynamicSupervisor<X>>()(id)
    const started = make({ name: id, ...options })
    const layer = supervisorLayer(Base as unknown as Context.Key<Self, DynamicSupervisor<X>>, started, await_)
    return Object.assign(Base, { layer, launch: launchUntilStopped(started, await_) }) as any
  }

/**
 * Starts a child and returns after its `start` finished, with the child's
 * handle.
 *
 * **Details**
 *
 * - `start` runs in the child's own fiber and Scope. If it fails, `startChild`
 *   fails with that error and the Scope has been closed: nothing is left
 *   behind. If the caller is interrupted while `start` runs, the child is
 *   stopped and released before the interruption completes.
 * - At `maxChildren` (children waiting to restart count) it fails with
 *   `MaxChildren` and runs nothing. After the supervisor stopped it fails with
 *   `SupervisorStopped`. An invalid spec fails with `InvalidOptions`.
 * - Pass a function to receive the supervisor's `extraArguments` (typed).
 * - The context of this call (its services) is kept to restart the child.
 *
 * **Example** (Starting a worker)
 *
 * ```ts
 * import { Effect, Queue } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * const worker = ChildSpec.make({
 *   start: Queue.unbounded<string>(),
 *   run: (inbox) => Effect.forever(Effect.flatMap(Queue.take(inbox), Effect.log))
 * })
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* DynamicSupervisor.make()
 *   const child = yield* DynamicSupervisor.startChild(sup, worker)
 *   yield* Queue.offer(child.handle, "hello")
 * })
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const startChild: {
  <A, E, R, X>(
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>)
  ): (self: DynamicSupervisor<X>) => Effect.Effect<Child<A>, E | MaxChildren | SupervisorStopped | InvalidOptions, R>
  <A, E, R, X>(
    self: DynamicSupervisor<X>,
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>)
  ): Effect.Effect<Child<A>, E | MaxChildren | SupervisorStopped | InvalidOptions, R>
} = dual(
  2,
  <A, E, R, X>(
    self: DynamicSupervisor<X>,
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>)
  ): Effect.Effect<Child<A>, E | MaxChildren | SupervisorStopped | InvalidOptions, R> =>
    Effect.withFiber((fiber) => {
      const sup = impl(self)
      if (sup.shell.state !== "open") return Effect.fail(sup.shell.stoppedError())
      if (sup.children.size >= sup.maxChildren) {
        return Effect.fail(new MaxChildren({ maxChildren: sup.maxChildren }))
      }
      const s = typeof spec === "function" ? spec(sup.extraArguments as X) : spec
      if (s.invalid !== undefined) return Effect.fail(s.invalid)
      const caller = fiber.context as Context.Context<never>
      if (isTracing(caller)) return traced(sup, s as ChildSpec.ChildSpec<A, unknown, unknown>)
      const c = sup.spawn(s as ChildSpec.ChildSpec<A, unknown, unknown>, caller)
      // a start that finished synchronously needs no waiting
      if (child.startResult(c) === Effect.void) return Effect.succeed(c as Child<A>)
      return Effect.as(child.awaitStart(c, abandon(sup)), c) as Effect.Effect<
        Child<A>,
        E | MaxChildren | SupervisorStopped | InvalidOptions,
        R
      >
    })
)

const abandon = (sup: DynamicEngine) => (c: child.Child) => sup.shell.abandoned(c, child.specOf(c).shutdown)

/** startChild as a span (only when a tracer other than Effect's native one is installed). */
const traced = <A>(
  sup: DynamicEngine,
  spec: ChildSpec.ChildSpec<A, unknown, unknown>
): Effect.Effect<Child<A>, any, any> =>
  Effect.withSpan(
    Effect.withFiber((fiber) => {
      const c = sup.spawn(spec, fiber.context as Context.Context<never>)
      const span = Context.getOption(fiber.context, Tracer.ParentSpan)
      if (span._tag === "Some" && span.value._tag === "Span") span.value.attribute("pid", c.pid)
      if (child.startResult(c) === Effect.void) return Effect.succeed(c as Child<A>)
      return Effect.as(child.awaitStart(c, abandon(sup)), c as Child<A>)
    }),
    `${sup.kind}.startChild`,
    { attributes: { supervisor: sup.name, id: spec.id, incarnation: 1, attempt: 0 } }
  )

/**
 * Stops a child by its shutdown policy and removes it; it is never restarted,
 * whatever its restart value.
 *
 * **Details**
 *
 * Fails with `ChildNotFound` when the child is not supervised here: never was,
 * already stopped, or restarted since (a restart is a new incarnation with a
 * new pid). A child that is waiting to be restarted can be terminated through
 * its last incarnation or its `whichChildren` entry, as in Elixir.
 *
 * **Gotchas**
 *
 * This waits up to the child's `shutdown` duration for its finalizers. With
 * `"infinity"` it can wait arbitrarily long; it is often better to ask the
 * child itself to finish.
 *
 * **Example** (Terminating twice)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* DynamicSupervisor.make()
 *   const child = yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.void }))
 *   yield* DynamicSupervisor.terminateChild(sup, child)
 *   const error = yield* Effect.flip(DynamicSupervisor.terminateChild(sup, child))
 *   return error._tag
 * })
 * // => "ChildNotFound"
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const terminateChild: {
  (
    child: Child<unknown> | ChildInfo | Registry.Name<any>
  ): <X>(self: DynamicSupervisor<X>) => Effect.Effect<void, ChildNotFound | SupervisorStopped>
  <X>(
    self: DynamicSupervisor<X>,
    child: Child<unknown> | ChildInfo | Registry.Name<any>
  ): Effect.Effect<void, ChildNotFound | SupervisorStopped>
} = dual(
  2,
  <X>(
    self: DynamicSupervisor<X>,
    target: Child<unknown> | ChildInfo | Registry.Name<any>
  ): Effect.Effect<void, ChildNotFound | SupervisorStopped> =>
    Effect.suspend((): Effect.Effect<void, ChildNotFound | SupervisorStopped> => {
      const sup = impl(self)
      if (sup.shell.state !== "open") return Effect.fail(sup.shell.stoppedError())
      // a registry name: the child registered under it (O(1)), if it is one of ours
      const byName = Registry.isName(target) ? target : undefined
      const pid =
        byName !== undefined
          ? Registry.whereisChildUnsafe(byName.registry, byName.key)?.pid
          : (target as Child<unknown> | ChildInfo).pid
      // pids are never reused, so the pid alone names the incarnation
      const c = pid === undefined ? undefined : sup.children.get(pid)
      if (c === undefined || !child.started(c)) {
        return Effect.fail(new ChildNotFound({ child: byName !== undefined ? byName.key : pid }))
      }
      sup.remove(c)
      return Effect.uninterruptible(sup.stopOne(c) ?? Effect.void)
    })
)

/**
 * Counts the children, with Elixir's meaning (see {@link Counts}).
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildren = <X>(self: DynamicSupervisor<X>): Effect.Effect<Counts, SupervisorStopped> =>
  Effect.suspend(() => {
    const counts = countChildrenUnsafe(self)
    return counts === undefined ? Effect.fail(impl(self).shell.stoppedError()) : Effect.succeed(counts)
  })

/**
 * The synchronous twin of {@link countChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildrenUnsafe = <X>(self: DynamicSupervisor<X>): Counts | undefined => {
  const sup = impl(self)
  if (sup.shell.state === "stopped") return undefined
  return sup.counts()
}

/**
 * Lists the children: one entry per child, with its running incarnation or
 * `"restarting"`. The order is unspecified (insertion order here).
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildren = <X>(
  self: DynamicSupervisor<X>
): Effect.Effect<ReadonlyArray<ChildInfo>, SupervisorStopped> =>
  Effect.suspend(() => {
    const infos = whichChildrenUnsafe(self)
    return infos === undefined ? Effect.fail(impl(self).shell.stoppedError()) : Effect.succeed(infos)
  })

/**
 * The synchronous twin of {@link whichChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildrenUnsafe = <X>(self: DynamicSupervisor<X>): ReadonlyArray<ChildInfo> | undefined => {
  const sup = impl(self)
  if (sup.shell.state === "stopped") return undefined
  const out: Array<ChildInfo> = []
  sup.forEachChild((c, record) => {
    const restarting = record !== undefined && record.state._tag !== "Up"
    out.push({
      pid: c.pid,
      id: c.id,
      child: restarting ? "restarting" : (c as Child<unknown>),
      type: c.type,
      restarts: record?.restarts ?? 0
    })
  })
  return out
}

const await_ = <X>(self: DynamicSupervisor<X>): Effect.Effect<void, RestartIntensityExceeded> =>
  Deferred.await(impl(self).shell.done)

export {
  /**
   * Waits until the supervisor stops: succeeds when its Scope closed, fails
   * with `RestartIntensityExceeded` when it gave up.
   *
   * **When to use**
   *
   * Use as the `run` body of a supervisor that is itself a child: when it gives
   * up, the child fails and its own supervisor applies its restart policy
   * (escalation). {@link childSpec} does exactly that.
   *
   * @category getters
   * @since 0.1.0
   */
  await_ as await
}

/**
 * A child spec that runs a dynamic supervisor as a child of another
 * supervisor: type `"supervisor"`, shutdown `"infinity"`, permanent by
 * default, and a body that fails with `RestartIntensityExceeded` when the
 * inner supervisor gives up, so the outer one restarts it (escalation).
 * Without a `name`, the supervisor is named by its `id` (in its logs, metrics,
 * events and the live tree).
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = <X = never>(
  options: Options<X> & {
    readonly id?: string | undefined
    readonly restart?: ChildSpec.Restart | undefined
  } = {}
): ChildSpec.ChildSpec<DynamicSupervisor<X>, InvalidOptions> =>
  ChildSpec.make({
    id: options.id ?? options.name,
    // without a name, the supervisor is named by its id (its events and logs say which one)
    start: make(options.name === undefined && options.id !== undefined ? { ...options, name: options.id } : options),
    run: await_,
    restart: options.restart ?? "permanent",
    type: "supervisor"
  })

/**
 * An exponential restart backoff for `restartBackoff`: the n-th consecutive
 * restart of a child waits `min · factor^(n-1)`, capped at `max`, optionally
 * jittered to 80–120% of that (Effect's `Schedule.jittered`, so not every
 * child of a crashed backend retries at the same instant).
 *
 * **Details**
 *
 * With `min: "100 millis"`, `max: "2 seconds"` and the default factor 2 the
 * restarts wait 100, 200, 400, 800, 1600, 2000, 2000 ms. The schedule never
 * ends; combine it with `Schedule.upTo({ times })` to give up after a number
 * of restarts. A child that stays up for `restartBackoffResetAfter` starts
 * again from `min`.
 *
 * **Example** (Backing off restarts)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DynamicSupervisor } from "effect-otp"
 *
 * const program = DynamicSupervisor.make({
 *   maxRestarts: 10,
 *   maxSeconds: 60,
 *   restartBackoff: DynamicSupervisor.backoff({ min: "100 millis", max: "2 seconds", jitter: true })
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const backoff = (options: {
  readonly min: Duration.Input
  readonly max: Duration.Input
  /** @default 2 */
  readonly factor?: number | undefined
  /** @default false */
  readonly jitter?: boolean | undefined
}): Schedule.Schedule<number, unknown> => {
  const min = inputMillis(options.min)
  const max = inputMillis(options.max)
  const factor = options.factor ?? 2
  const bad = (field: string, value: unknown, expected: string) =>
    new InvalidOptions({ module: "DynamicSupervisor.backoff", field, value, expected })
  const invalid =
    !(min >= 0) || min === Infinity
      ? bad("min", options.min, "a finite duration >= 0")
      : !(max >= min) || max === Infinity
        ? bad("max", options.max, "a finite duration >= min")
        : !(factor >= 1) || factor === Infinity
          ? bad("factor", options.factor, "a finite number >= 1")
          : undefined
  const base = Schedule.forever.pipe(
    Schedule.modifyDelay(({ attempt }) => Effect.succeed(Duration.millis(backoffDelay(attempt, min, max, factor))))
  )
  const schedule = options.jitter === true ? Schedule.jittered(base) : base
  // make() rejects the supervisor options with this error (a Schedule cannot fail to be built)
  return invalid === undefined ? schedule : Object.assign(schedule, { [InvalidBackoff]: invalid })
}

/**
 * Returns true if the value is a {@link DynamicSupervisor}.
 *
 * @category guards
 * @since 0.1.0
 */
export const isDynamicSupervisor = (u: unknown): u is DynamicSupervisor<unknown> =>
  typeof u === "object" && u !== null && TypeId in u
