/**
 * A supervisor whose children are given when it starts: it starts them in
 * order, restarts them by one of OTP's three strategies when they exit, and
 * stops them in reverse order when its Scope closes.
 *
 * A `DynamicSupervisor` starts empty, takes children on demand, has no order
 * between them and stops them all at once. A `Supervisor` is the skeleton of
 * an application: a fixed list of children with unique ids (a registry, a
 * pool, a supervisor of sessions...), started one after the other, each
 * after the previous one's `start` finished, so a child can rely on the ones
 * before it. Its strategy says what a crash takes with it:
 *
 * - `"oneForOne"`: only the child that exited is restarted;
 * - `"oneForAll"`: every other child is stopped (in reverse start order, one
 *   at a time, each by its own shutdown policy), then all are started again
 *   in start order;
 * - `"restForOne"`: the same for the child and those started after it, which
 *   is right when later children depend on earlier ones.
 *
 * Restarts are limited exactly as in OTP: more than `maxRestarts` restarts
 * within `maxSeconds`, counted over the whole supervisor (one crash is one
 * restart whatever the strategy takes with it), and the supervisor gives up:
 * it stops every child in reverse order and fails with
 * `RestartIntensityExceeded`, so the supervisor above it applies *its*
 * strategy (a tree). With `autoShutdown`, a `significant` child that exits by
 * itself can also end the supervisor (OTP 24's automatic shutdown).
 *
 * **What it does not do.** A child that does not finish stopping within its
 * `shutdown` duration is abandoned (JavaScript cannot kill a fiber in an
 * uninterruptible region): it is logged, counted in
 * `effect_otp_child_shutdown_abandoned_total`, and the shutdown goes on.
 *
 * **Differences from Elixir, on purpose.**
 * - Start errors are typed failures: `make` fails with the first failing
 *   child's own error (after stopping those already started), `startChild`
 *   with the start's error, `restartChild` with `StartFailed` (the stored
 *   spec's error type is not known statically). There is no `:ignore`.
 * - The intensity window is in milliseconds on Effect's `Clock` (see
 *   `DynamicSupervisor`).
 * - A supervisor that gives up fails (`RestartIntensityExceeded`), where OTP
 *   exits `:shutdown`: so a *transient* child supervisor that gives up is
 *   restarted by its parent here.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import type * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import {
  AlreadyPresent,
  AlreadyStarted,
  ChildNotFound,
  ChildRestarting,
  ChildRunning,
  InvalidOptions,
  RestartIntensityExceeded,
  StartFailed,
  SupervisorStopped
} from "../Errors.ts"
import * as ChildSpec from "./ChildSpec.ts"
import type { ChildType } from "./ChildSpec.ts"
import * as child from "../internal/child.ts"
import { decodeRestartPolicy, type RestartPolicy } from "../internal/policy.ts"
import { isTracing } from "../internal/shell.ts"
import * as Inspect from "../internal/inspect.ts"
import { type Slot, StaticSupervisor } from "./internal/staticSupervisor.ts"
import { showValue } from "../internal/show.ts"
import { launchUntilStopped, supervisorLayer } from "../internal/launch.ts"

export {
  /**
   * @category errors
   * @since 0.1.0
   */
  AlreadyPresent,
  /**
   * @category errors
   * @since 0.1.0
   */
  AlreadyStarted,
  /**
   * @category errors
   * @since 0.1.0
   */
  ChildNotFound,
  /**
   * @category errors
   * @since 0.1.0
   */
  ChildRestarting,
  /**
   * @category errors
   * @since 0.1.0
   */
  ChildRunning,
  /**
   * @category errors
   * @since 0.1.0
   */
  InvalidOptions,
  /**
   * @category errors
   * @since 0.1.0
   */
  RestartIntensityExceeded,
  /**
   * @category errors
   * @since 0.1.0
   */
  StartFailed,
  /**
   * @category errors
   * @since 0.1.0
   */
  SupervisorStopped
}

const TypeId = "~effect-otp/Supervisor"

/**
 * A running static supervisor.
 *
 * @category models
 * @since 0.1.0
 */
export interface Supervisor extends Pipeable {
  readonly [TypeId]: typeof TypeId
  /** The name given in the options, for logs, metrics and the live tree. */
  readonly name: string
  readonly strategy: Strategy
}

/**
 * What a child's exit takes with it: itself (`"oneForOne"`), every child
 * (`"oneForAll"`), or itself and the children started after it
 * (`"restForOne"`).
 *
 * @category models
 * @since 0.1.0
 */
export type Strategy = "oneForOne" | "oneForAll" | "restForOne"

/**
 * When the supervisor stops by itself because a `significant` child exited
 * by itself and was not restarted: `"never"`, when `"anySignificant"` one
 * did, or when `"allSignificant"` ones are gone.
 *
 * @category models
 * @since 0.1.0
 */
export type AutoShutdown = "never" | "anySignificant" | "allSignificant"

/**
 * One incarnation of a child, as `startChild` and `restartChild` return it
 * and `whichChildren` lists it. After a restart the child has a new `pid` and
 * a new `handle`; its `id` stays.
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
 * One entry of {@link whichChildren}: the running incarnation, `"restarting"`
 * while a failed restart is being retried, or `"undefined"` when the spec is
 * kept but nothing runs (terminated, or a transient child that exited
 * normally), as Elixir's `:undefined`.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildInfo {
  readonly id: string
  readonly child: Child<unknown> | "restarting" | "undefined"
  readonly type: ChildType
  /** How many times the supervisor has restarted this child (not counting `restartChild`). */
  readonly restarts: number
}

/**
 * The result of {@link countChildren}, with Elixir's meaning: `specs` counts
 * every child spec, `active` the running children, `workers` and
 * `supervisors` split `specs` by type, running or not.
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
export interface Options {
  readonly strategy: Strategy
  /** A name for logs, metrics and the live tree. @default "Supervisor" */
  readonly name?: string | undefined
  /** Restarts allowed within `maxSeconds` before the supervisor gives up. @default 3 */
  readonly maxRestarts?: number | undefined
  /** The intensity window, in seconds (fractions allowed). @default 5 */
  readonly maxSeconds?: number | undefined
  /** @default "never" */
  readonly autoShutdown?: AutoShutdown | undefined
  /**
   * Delays each restart of a child by the schedule's next delay (per child;
   * its input is the number of consecutive restarts, from 1); when the
   * schedule ends the supervisor gives up. The same option as
   * `DynamicSupervisor`'s; OTP restarts at once, which stays the default.
   */
  readonly restartBackoff?: Schedule.Schedule<unknown, number> | undefined
  /** A child that stayed up this long starts its backoff afresh. @default the intensity window */
  readonly restartBackoffResetAfter?: Duration.Input | undefined
}

/**
 * The start error of any child in a list of specs.
 *
 * @category models
 * @since 0.1.0
 */
export type ChildrenError<Cs extends ReadonlyArray<ChildSpec.ChildSpec<any, any, any>>> = SpecError<Cs[number]>

type SpecError<S> = S extends ChildSpec.ChildSpec<any, infer E, any> ? E : never
type SpecServices<S> = S extends ChildSpec.ChildSpec<any, any, infer R> ? R : never

/**
 * The services any child in a list of specs needs.
 *
 * @category models
 * @since 0.1.0
 */
export type ChildrenServices<Cs extends ReadonlyArray<ChildSpec.ChildSpec<any, any, any>>> = SpecServices<Cs[number]>

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  },
  toJSON(this: StaticSupervisor) {
    return { _id: "Supervisor", name: this.name, strategy: this.strategy, state: this.state }
  }
}
Object.assign(StaticSupervisor.prototype, Proto)

const impl = (self: Supervisor): StaticSupervisor => self as unknown as StaticSupervisor

const M = "Supervisor"

const validateOptions = (options: Options): InvalidOptions | undefined => {
  if (typeof options !== "object" || options === null) {
    return new InvalidOptions({ module: M, field: "options", value: options, expected: "an object" })
  }
  const s = options.strategy
  if (s !== "oneForOne" && s !== "oneForAll" && s !== "restForOne") {
    return new InvalidOptions({
      module: M,
      field: "strategy",
      value: s,
      expected: '"oneForOne", "oneForAll" or "restForOne"'
    })
  }
  const policy = decodeRestartPolicy(M, {
    maxRestarts: options.maxRestarts,
    maxSeconds: options.maxSeconds,
    restartBackoff: options.restartBackoff,
    restartBackoffResetAfter: options.restartBackoffResetAfter
  })
  if (policy instanceof InvalidOptions) return policy
  const a = options.autoShutdown
  if (a !== undefined && a !== "never" && a !== "anySignificant" && a !== "allSignificant") {
    return new InvalidOptions({
      module: M,
      field: "autoShutdown",
      value: a,
      expected: '"never", "anySignificant" or "allSignificant"'
    })
  }
  if (options.name !== undefined && typeof options.name !== "string") {
    return new InvalidOptions({ module: M, field: "name", value: options.name, expected: "a string" })
  }
  return undefined
}

const validateSpec = (
  spec: ChildSpec.ChildSpec<any, any, any>,
  autoShutdown: AutoShutdown
): InvalidOptions | undefined => {
  if (!ChildSpec.isChildSpec(spec)) {
    return new InvalidOptions({ module: M, field: "child", value: spec, expected: "a ChildSpec" })
  }
  if (spec.invalid !== undefined) return spec.invalid
  if (typeof spec.id !== "string") {
    return new InvalidOptions({
      module: M,
      field: "id",
      value: spec.id,
      expected: "a string (static children need a unique id)"
    })
  }
  if (spec.significant && autoShutdown === "never") {
    return new InvalidOptions({
      module: M,
      field: "significant",
      value: true,
      expected: 'false when autoShutdown is "never" (OTP\'s bad_combination)'
    })
  }
  return undefined
}

const newSlot = (spec: ChildSpec.ChildSpec<any, any, any>, context: Context.Context<never>): Slot => ({
  id: spec.id!,
  spec,
  context,
  inc: undefined,
  restarting: false,
  removed: false,
  restarts: 0,
  timer: undefined,
  backoff: undefined
})

/**
 * Starts a supervisor with these children, owned by the current Scope:
 * closing the Scope stops every child, one at a time in reverse start order,
 * each by its own shutdown policy, before the Scope is released.
 *
 * **Details**
 *
 * - Options and specs are checked first (unknown strategy, fractional
 *   `maxRestarts`, zero `maxSeconds`, a missing or duplicate id, a
 *   `significant` child with `autoShutdown: "never"`): `InvalidOptions`
 *   naming the field and the value, and nothing is started.
 * - Children start in list order, each after the previous `start` finished.
 *   If one fails, those already started are stopped in reverse order and
 *   `make` fails with that start's error.
 * - A child that exits while later children are still starting is handled
 *   once all have started (OTP processes exits after `init`).
 *
 * **Example** (A rest-for-one application skeleton)
 *
 * ```ts
 * import { Effect, Ref } from "effect"
 * import { ChildSpec, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* Supervisor.make(
 *     [
 *       ChildSpec.make({ id: "config", start: Ref.make({ port: 8080 }) }),
 *       ChildSpec.make({ id: "server", start: Effect.log("listening") })
 *     ],
 *     { strategy: "restForOne" }
 *   )
 *   return (yield* Supervisor.whichChildren(sup)).map((c) => c.id)
 * })
 * // => ["server", "config"]
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <const Cs extends ReadonlyArray<ChildSpec.ChildSpec<any, any, any>>>(
  children: Cs,
  options: Options
): Effect.Effect<Supervisor, ChildrenError<Cs> | InvalidOptions, ChildrenServices<Cs> | Scope.Scope> =>
  Effect.suspend(() => {
    const error = validateOptions(options)
    if (error) return Effect.fail(error)
    const autoShutdown = options.autoShutdown ?? "never"
    if (!Array.isArray(children)) {
      return Effect.fail(
        new InvalidOptions({ module: M, field: "children", value: children, expected: "an array of ChildSpecs" })
      )
    }
    const ids = new Set<string>()
    for (const spec of children) {
      const e = validateSpec(spec, autoShutdown)
      if (e) return Effect.fail(e)
      if (ids.has(spec.id!)) {
        return Effect.fail(
          new InvalidOptions({ module: M, field: "id", value: spec.id, expected: "unique among the children" })
        )
      }
      ids.add(spec.id!)
    }
    return Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const scope = yield* Effect.scope
        const context = (yield* Effect.context<never>()) as Context.Context<never>
        const sup = new StaticSupervisor(
          options.name ?? "Supervisor",
          options.strategy,
          decodeRestartPolicy(M, options) as RestartPolicy,
          autoShutdown,
          context
        )
        yield* Scope.addFinalizer(scope, sup.terminate("shutdown", true))
        for (const spec of children) {
          const slot = newSlot(spec, context)
          sup.append(slot)
          const exit = yield* restore(sup.startSlot(slot))
          if (exit._tag === "Failure") {
            sup.remove(slot)
            yield* sup.logged(Effect.logError(`child ${showValue(slot.id)} failed to start`, exit.cause))
            yield* sup.terminate("shutdown", true)
            return yield* Effect.failCause(exit.cause)
          }
        }
        sup.ready = true
        sup.pump()
        return sup as unknown as Supervisor
      })
    ) as Effect.Effect<Supervisor, ChildrenError<Cs> | InvalidOptions, ChildrenServices<Cs> | Scope.Scope>
  })

/**
 * A layer that provides a supervisor under the given service key, started
 * when the layer is built and stopped (in reverse start order) when it is
 * released.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I, const Cs extends ReadonlyArray<ChildSpec.ChildSpec<any, any, any>>>(
  tag: Context.Key<I, Supervisor>,
  children: Cs,
  options: Options
): Layer.Layer<I, ChildrenError<Cs> | InvalidOptions | RestartIntensityExceeded, ChildrenServices<Cs>> =>
  supervisorLayer(tag, make(children, options), await_)

/**
 * Declares a supervision tree as a service class: the Effect counterpart of
 * an Elixir application's children list (`children = [...];
 * Supervisor.start_link(children, strategy: ...)`).
 *
 * **Details**
 *
 * `App.layer` builds the tree when the layer is built and stops it, leaves
 * before their parents, when the layer is released: so
 * `NodeRuntime.runMain(Layer.launch(App.layer))` runs the application until
 * SIGINT and then stops it in order. `App.launch` does the same and also
 * ends when the root supervisor stops by itself: with `RestartIntensityExceeded`
 * if it gave up, successfully after an automatic shutdown (as an OTP
 * application stops when its top supervisor exits).
 *
 * **Example** (An application)
 *
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { DynamicSupervisor, Supervisor } from "effect-otp"
 *
 * class App extends Supervisor.Service<App>()("MyApp", [
 *   DynamicSupervisor.childSpec({ id: "sessions" }),
 *   DynamicSupervisor.childSpec({ id: "jobs" })
 * ], { strategy: "oneForOne" }) {}
 *
 * // NodeRuntime.runMain(Layer.launch(App.layer))   or   NodeRuntime.runMain(App.launch)
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const Service =
  <Self>() =>
  <const Id extends string, const Cs extends ReadonlyArray<ChildSpec.ChildSpec<any, any, any>>>(
    id: Id,
    children: Cs,
    options: Options
  ): Context.ServiceClass<Self, Id, Supervisor> & {
    readonly layer: Layer.Layer<
      Self,
      ChildrenError<Cs> | InvalidOptions | RestartIntensityExceeded,
      ChildrenServices<Cs>
    >
    readonly launch: Effect.Effect<
      void,
      ChildrenError<Cs> | InvalidOptions | RestartIntensityExceeded,
      ChildrenServices<Cs>
    >
  } => {
    const Base = Context.Service<Self, Supervisor>()(id)
    const key = Base as unknown as Context.Key<Self, Supervisor>
    const started = make(children, { name: id, ...options })
    return Object.assign(Base, {
      layer: supervisorLayer(key, started, await_),
      launch: launchUntilStopped(started, await_)
    }) as any
  }

const isRunning = (slot: Slot): boolean => slot.inc !== undefined && child.started(slot.inc)

/**
 * Starts a child and appends it to the children (it is stopped first at
 * shutdown), returning after its `start` finished.
 *
 * **Details**
 *
 * - An id that is already running fails with `AlreadyStarted` carrying the
 *   running child; an id whose spec is kept but not running (terminated,
 *   restarting, transient that exited normally) fails with `AlreadyPresent`.
 * - A failing start fails with its own error; nothing is stored. If the
 *   caller is interrupted while the start runs (or while the call waits its
 *   turn), the child is stopped and released and nothing is stored.
 * - The call waits for any operation the supervisor is busy with (a group
 *   restart, say), as every Supervisor call does in OTP. The child starts
 *   with the services of this call.
 *
 * **Example** (Adding a child at runtime)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* Supervisor.make([ChildSpec.make({ id: "a", start: Effect.void })], { strategy: "oneForOne" })
 *   yield* Supervisor.startChild(sup, ChildSpec.make({ id: "b", start: Effect.succeed("hello") }))
 *   const again = yield* Effect.flip(Supervisor.startChild(sup, ChildSpec.make({ id: "b", start: Effect.void })))
 *   return [(yield* Supervisor.whichChildren(sup)).map((c) => c.id), again._tag]
 * })
 * // => [["b", "a"], "AlreadyStarted"]
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const startChild: {
  <A, E, R>(
    spec: ChildSpec.ChildSpec<A, E, R>
  ): (
    self: Supervisor
  ) => Effect.Effect<
    Child<A>,
    E | AlreadyStarted<Child<unknown>> | AlreadyPresent | SupervisorStopped | InvalidOptions,
    R
  >
  <A, E, R>(
    self: Supervisor,
    spec: ChildSpec.ChildSpec<A, E, R>
  ): Effect.Effect<
    Child<A>,
    E | AlreadyStarted<Child<unknown>> | AlreadyPresent | SupervisorStopped | InvalidOptions,
    R
  >
} = dual(
  2,
  <A, E, R>(
    self: Supervisor,
    spec: ChildSpec.ChildSpec<A, E, R>
  ): Effect.Effect<
    Child<A>,
    E | AlreadyStarted<Child<unknown>> | AlreadyPresent | SupervisorStopped | InvalidOptions,
    R
  > =>
    Effect.withFiber(
      (
        fiber
      ): Effect.Effect<
        Child<A>,
        E | AlreadyStarted<Child<unknown>> | AlreadyPresent | SupervisorStopped | InvalidOptions,
        R
      > => {
        const sup = impl(self)
        const invalid = validateSpec(spec, sup.autoShutdown)
        if (invalid) return Effect.fail(invalid)
        if (isTracing(fiber.context as Context.Context<never>)) {
          // a span (supervisor, id; pid once started) the child's run links to
          return Effect.withSpan(
            Effect.withFiber((inner) =>
              Effect.tap(startInSlot(sup, spec, inner.context as Context.Context<never>), (c) =>
                Effect.sync(() => {
                  const span = Context.getOption(inner.context, Tracer.ParentSpan)
                  if (span._tag === "Some" && span.value._tag === "Span") span.value.attribute("pid", c.pid)
                })
              )
            ),
            "Supervisor.startChild",
            { attributes: { supervisor: sup.name, id: spec.id } }
          )
        }
        return startInSlot(sup, spec, fiber.context as Context.Context<never>)
      }
    )
)

/** Supervisor.startChild's work, in the supervisor's mailbox; `context` is the starter's (its span the run links to). */
const startInSlot = <A, E, R>(
  sup: StaticSupervisor,
  spec: ChildSpec.ChildSpec<A, E, R>,
  context: Context.Context<never>
): Effect.Effect<Child<A>, E | AlreadyStarted<Child<unknown>> | AlreadyPresent | SupervisorStopped, R> =>
  sup.call(
    Effect.suspend((): Effect.Effect<Child<A>, unknown> => {
      const existing = sup.byId.get(spec.id!)
      if (existing !== undefined) {
        return isRunning(existing)
          ? Effect.fail(new AlreadyStarted({ key: spec.id, child: existing.inc as Child<unknown> }))
          : Effect.fail(new AlreadyPresent({ id: spec.id! }))
      }
      const slot = newSlot(spec, context)
      sup.append(slot)
      return Effect.flatMap(sup.startSlot(slot), (exit) => {
        if (exit._tag === "Success") return Effect.succeed(slot.inc as Child<A>)
        sup.remove(slot)
        return Effect.failCause(exit.cause)
      }).pipe(Effect.onInterrupt(() => Effect.sync(() => sup.remove(slot))))
    })
  ) as Effect.Effect<Child<A>, E | AlreadyStarted<Child<unknown>> | AlreadyPresent | SupervisorStopped, R>

/**
 * Stops a child by its shutdown policy and keeps its spec (a temporary
 * child's spec is dropped), so {@link restartChild} can start it again. The
 * exit is never treated as a crash: no restart, no intensity count, no
 * automatic shutdown. Succeeds also when the child was not running; cancels
 * the retries of a child that is restarting.
 *
 * **Gotchas**
 *
 * This blocks the supervisor until the child stopped, up to its `shutdown`
 * duration (with `"infinity"`, as long as it takes); it is often better to
 * ask the child itself to finish.
 *
 * **Example** (Stop, restart, delete)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* Supervisor.make([ChildSpec.make({ id: "a", start: Effect.void })], { strategy: "oneForOne" })
 *   yield* Supervisor.terminateChild(sup, "a")
 *   const kept = yield* Supervisor.countChildren(sup) // { specs: 1, active: 0, ... }
 *   yield* Supervisor.restartChild(sup, "a")
 *   const running = yield* Effect.flip(Supervisor.deleteChild(sup, "a")) // ChildRunning
 *   yield* Supervisor.terminateChild(sup, "a")
 *   yield* Supervisor.deleteChild(sup, "a")
 *   return [kept.specs, running._tag, (yield* Supervisor.countChildren(sup)).specs]
 * })
 * // => [1, "ChildRunning", 0]
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const terminateChild: {
  (id: string): (self: Supervisor) => Effect.Effect<void, ChildNotFound | SupervisorStopped>
  (self: Supervisor, id: string): Effect.Effect<void, ChildNotFound | SupervisorStopped>
} = dual(2, (self: Supervisor, id: string): Effect.Effect<void, ChildNotFound | SupervisorStopped> => {
  const sup = impl(self)
  return sup.call(
    Effect.suspend((): Effect.Effect<void, ChildNotFound> => {
      const slot = sup.byId.get(id)
      if (slot === undefined) return Effect.fail(new ChildNotFound({ child: id }))
      return Effect.sync(() => {
        if (slot.spec.restart === "temporary") sup.remove(slot)
      }).pipe(Effect.andThen(sup.stopSlot(slot)))
    })
  )
})

/**
 * Starts again a child whose spec is kept but that is not running (after
 * {@link terminateChild}, or a transient child that exited normally). Manual
 * restarts are not counted toward the restart intensity.
 *
 * **Details**
 *
 * Fails with `ChildRunning`, `ChildRestarting` or `ChildNotFound` (temporary
 * children cannot be restarted: their spec is gone), and with `StartFailed`
 * carrying the start's cause when the start fails (the child stays stopped).
 *
 * **Example** (Restarting a terminated child)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, Supervisor } from "effect-otp"
 *
 * let n = 0
 * const program = Effect.gen(function*() {
 *   const sup = yield* Supervisor.make([ChildSpec.make({ id: "a", start: Effect.sync(() => ++n) })], {
 *     strategy: "oneForOne"
 *   })
 *   yield* Supervisor.terminateChild(sup, "a")
 *   return (yield* Supervisor.restartChild(sup, "a")).handle
 * })
 * // => 2
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const restartChild: {
  (
    id: string
  ): (
    self: Supervisor
  ) => Effect.Effect<Child<unknown>, ChildNotFound | ChildRunning | ChildRestarting | StartFailed | SupervisorStopped>
  (
    self: Supervisor,
    id: string
  ): Effect.Effect<Child<unknown>, ChildNotFound | ChildRunning | ChildRestarting | StartFailed | SupervisorStopped>
} = dual(2, (self: Supervisor, id: string) => {
  const sup = impl(self)
  return sup.call(
    Effect.suspend((): Effect.Effect<Child<unknown>, ChildNotFound | ChildRunning | ChildRestarting | StartFailed> => {
      const slot = sup.byId.get(id)
      if (slot === undefined) return Effect.fail(new ChildNotFound({ child: id }))
      if (slot.restarting) return Effect.fail(new ChildRestarting({ id }))
      if (slot.inc !== undefined) return Effect.fail(new ChildRunning({ id }))
      return Effect.flatMap(sup.startSlot(slot), (exit) =>
        exit._tag === "Success"
          ? Effect.succeed(slot.inc as Child<unknown>)
          : Effect.fail(new StartFailed({ id, cause: exit.cause }))
      )
    })
  )
})

/**
 * Removes the spec of a child that is not running.
 *
 * **Details**
 *
 * Fails with `ChildRunning` (terminate it first), `ChildRestarting` or
 * `ChildNotFound`.
 *
 * **Example** (Deleting a spec)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* Supervisor.make([ChildSpec.make({ id: "a", start: Effect.void })], { strategy: "oneForOne" })
 *   yield* Supervisor.terminateChild(sup, "a")
 *   yield* Supervisor.deleteChild(sup, "a")
 *   return yield* Supervisor.countChildren(sup)
 * })
 * // => { specs: 0, active: 0, supervisors: 0, workers: 0 }
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const deleteChild: {
  (
    id: string
  ): (self: Supervisor) => Effect.Effect<void, ChildNotFound | ChildRunning | ChildRestarting | SupervisorStopped>
  (
    self: Supervisor,
    id: string
  ): Effect.Effect<void, ChildNotFound | ChildRunning | ChildRestarting | SupervisorStopped>
} = dual(2, (self: Supervisor, id: string) => {
  const sup = impl(self)
  return sup.call(
    Effect.suspend((): Effect.Effect<void, ChildNotFound | ChildRunning | ChildRestarting> => {
      const slot = sup.byId.get(id)
      if (slot === undefined) return Effect.fail(new ChildNotFound({ child: id }))
      if (slot.restarting) return Effect.fail(new ChildRestarting({ id }))
      if (slot.inc !== undefined) return Effect.fail(new ChildRunning({ id }))
      sup.remove(slot)
      return Effect.void
    })
  )
})

/**
 * The synchronous twin of {@link whichChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildrenUnsafe = (self: Supervisor): ReadonlyArray<ChildInfo> | undefined => {
  const sup = impl(self)
  if (sup.state === "stopped") return undefined
  const out: Array<ChildInfo> = []
  for (let i = sup.order.length - 1; i >= 0; i--) {
    const slot = sup.order[i]!
    out.push({
      id: slot.id,
      child: slot.restarting ? "restarting" : isRunning(slot) ? (slot.inc as Child<unknown>) : "undefined",
      type: slot.spec.type,
      restarts: slot.restarts
    })
  }
  return out
}

/**
 * Lists the children in Elixir's order: most recently started first (reverse
 * start order), each with its running incarnation, `"restarting"` or
 * `"undefined"`. It reads the table as it is now, without waiting for an
 * operation in progress.
 *
 * **Example** (Most recent first)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* Supervisor.make(
 *     ["a", "b", "c"].map((id) => ChildSpec.make({ id, start: Effect.void })),
 *     { strategy: "oneForOne" }
 *   )
 *   return (yield* Supervisor.whichChildren(sup)).map((c) => c.id)
 * })
 * // => ["c", "b", "a"]
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildren = (self: Supervisor): Effect.Effect<ReadonlyArray<ChildInfo>, SupervisorStopped> =>
  Effect.suspend(() => {
    const out = whichChildrenUnsafe(self)
    return out === undefined
      ? Effect.fail(new SupervisorStopped({ reason: impl(self).stopReason }))
      : Effect.succeed(out)
  })

/**
 * The synchronous twin of {@link countChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildrenUnsafe = (self: Supervisor): Counts | undefined => {
  const sup = impl(self)
  if (sup.state === "stopped") return undefined
  let active = 0
  let supervisors = 0
  for (const slot of sup.order) {
    if (isRunning(slot) && child.phase(slot.inc!) !== "Exited") active++
    if (slot.spec.type === "supervisor") supervisors++
  }
  return { specs: sup.order.length, active, supervisors, workers: sup.order.length - supervisors }
}

/**
 * Counts the children, with Elixir's meaning (see {@link Counts}).
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildren = (self: Supervisor): Effect.Effect<Counts, SupervisorStopped> =>
  Effect.suspend(() => {
    const counts = countChildrenUnsafe(self)
    return counts === undefined
      ? Effect.fail(new SupervisorStopped({ reason: impl(self).stopReason }))
      : Effect.succeed(counts)
  })

const await_ = (self: Supervisor): Effect.Effect<void, RestartIntensityExceeded> => Deferred.await(impl(self).done)

export {
  /**
   * Waits until the supervisor stops: succeeds when its Scope closed or it
   * shut down automatically, fails with `RestartIntensityExceeded` when it
   * gave up.
   *
   * **When to use**
   *
   * Use as the `run` body of a supervisor that is itself a child, so that its
   * giving up is a crash its own supervisor handles; {@link childSpec} does
   * that.
   *
   * @category getters
   * @since 0.1.0
   */
  await_ as await
}

/**
 * A child spec that runs a static supervisor as a child of another
 * supervisor: type `"supervisor"`, shutdown `"infinity"`, permanent unless
 * told, and a body that fails with `RestartIntensityExceeded` when the inner
 * supervisor gives up, so the outer one applies its strategy (escalation).
 * Its handle is the inner {@link Supervisor}.
 *
 * **Example** (A two-level tree)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor, Supervisor } from "effect-otp"
 *
 * const workers = Supervisor.childSpec(
 *   [ChildSpec.make({ id: "w1", start: Effect.void }), ChildSpec.make({ id: "w2", start: Effect.void })],
 *   { id: "workers", strategy: "oneForAll" }
 * )
 * const root = Supervisor.make([workers, DynamicSupervisor.childSpec({ id: "sessions" })], {
 *   strategy: "oneForOne"
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = <const Cs extends ReadonlyArray<ChildSpec.ChildSpec<any, any, any>>>(
  children: Cs,
  options: Options & {
    readonly id?: string | undefined
    readonly restart?: ChildSpec.Restart | undefined
    readonly significant?: boolean | undefined
  }
): ChildSpec.ChildSpec<Supervisor, ChildrenError<Cs> | InvalidOptions, ChildrenServices<Cs>> =>
  ChildSpec.make({
    id: options.id ?? options.name ?? "Supervisor",
    start: make(children, { ...options, name: options.name ?? options.id }),
    run: await_,
    restart: options.restart ?? "permanent",
    significant: options.significant,
    type: "supervisor"
  })

/**
 * One node of the live tree {@link tree} returns, as plain JSON data: its
 * `kind` (`"Worker"` for a plain child, or the kind of supervisor, pool,
 * registry or limiter its handle is), `id`, current `pid`, `state`
 * (`"running"`, `"restarting"`, `"stopped"` for a static child that is not
 * running — OTP's `:undefined` — …), `restarts`, child `counts`, per-kind
 * `stats` and its own `children`.
 *
 * @category models
 * @since 0.1.0
 */
export type TreeNode = Inspect.NodeSnapshot

/**
 * The live supervision tree under any supervisor kind (`Supervisor`,
 * `DynamicSupervisor`, `TaskSupervisor`, `RateLimitedSupervisor`, `Pool`…):
 * every child with its state, pid and restart count, descending into every
 * child whose handle can be inspected. Static children are listed in start
 * order. Print it with {@link formatTree}.
 *
 * **Example** (Printing a tree)
 *
 * ```ts
 * import { Console, Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* Supervisor.make(
 *     [ChildSpec.make({ id: "config", start: Effect.void }), DynamicSupervisor.childSpec({ id: "sessions" })],
 *     { name: "app", strategy: "oneForOne" }
 *   )
 *   yield* Console.log(Supervisor.formatTree(yield* Supervisor.tree(sup)))
 * })
 * // Output:
 * // app (Supervisor)
 * // ├─ config #1 running
 * // └─ sessions #2 running (DynamicSupervisor)
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const tree = (self: Pipeable): Effect.Effect<TreeNode> => Effect.sync(() => treeUnsafe(self))

/**
 * The synchronous twin of {@link tree}.
 *
 * @category getters
 * @since 0.1.0
 */
export const treeUnsafe = (self: Pipeable): TreeNode => {
  const inspector = Inspect.inspectorOf(self)
  return inspector === undefined
    ? { kind: "Worker", type: "worker", state: "stopped", restarts: 0, children: [] }
    : inspector.snapshot()
}

/**
 * Renders a {@link tree} as indented lines, one per child:
 * `id #pid state (kind) restarts: n`.
 *
 * @category getters
 * @since 0.1.0
 */
export const formatTree = (node: TreeNode): string => Inspect.formatNode(node)

/**
 * Returns true if the value is a {@link Supervisor}.
 *
 * @category guards
 * @since 0.1.0
 */
export const isSupervisor = (u: unknown): u is Supervisor => typeof u === "object" && u !== null && TypeId in u

/**
 * The handle of a child of the tree, typed by its spec, from its current
 * incarnation: after a restart it answers with the new handle, so code that
 * reaches a sibling (a registry, a session supervisor) through it is never
 * left holding a stale one. Fails with `ChildNotFound` (carrying the id) while
 * the child is not running: terminated, restarting, or never added.
 *
 * **Example** (Reaching a sibling by its spec)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DynamicSupervisor, Supervisor } from "effect-otp"
 *
 * const sessions = DynamicSupervisor.childSpec({ id: "sessions" })
 *
 * const program = Effect.gen(function*() {
 *   const app = yield* Supervisor.make([sessions], { strategy: "oneForOne" })
 *   const sup = yield* Supervisor.handle(app, sessions) // typed: DynamicSupervisor<never>
 *   return yield* DynamicSupervisor.countChildren(sup)
 * }).pipe(Effect.scoped)
 * // => { specs: 0, active: 0, supervisors: 0, workers: 0 }
 * ```
 *
 * @category getters
 * @since 0.2.0
 */
export const handle: {
  <A>(spec: ChildSpec.ChildSpec<A, any, any>): (self: Supervisor) => Effect.Effect<A, ChildNotFound>
  <A>(self: Supervisor, spec: ChildSpec.ChildSpec<A, any, any>): Effect.Effect<A, ChildNotFound>
} = dual(2, <A>(self: Supervisor, spec: ChildSpec.ChildSpec<A, any, any>): Effect.Effect<A, ChildNotFound> =>
  Effect.suspend(() => {
    const found = handleUnsafe(self, spec)
    return found === undefined ? Effect.fail(new ChildNotFound({ child: spec.id })) : Effect.succeed(found.value)
  })
)

/**
 * {@link handle}, synchronously: `{ value }` for a running child, `undefined`
 * otherwise.
 *
 * @category getters
 * @since 0.2.0
 */
export const handleUnsafe = <A>(
  self: Supervisor,
  spec: ChildSpec.ChildSpec<A, any, any>
): { readonly value: A } | undefined => {
  const sup = impl(self)
  if (sup.state === "stopped") return undefined
  for (const slot of sup.order) {
    if (slot.id === spec.id && isRunning(slot)) return { value: (slot.inc as Child<A>).handle }
  }
  return undefined
}
