/**
 * A supervisor for tasks: one-off pieces of work that run concurrently,
 * are counted and limited, and are stopped when the supervisor stops.
 *
 * A `TaskSupervisor` is a `DynamicSupervisor` whose children are tasks
 * (Elixir's `Task.Supervisor`). Choose the operation by what the caller wants
 * back:
 *
 * | want | use |
 * | --- | --- |
 * | nothing (fire and forget), maybe retried | {@link startChild} |
 * | the value, or fail together with the task | {@link async} + `Task.await` |
 * | the outcome as a value, without sharing the task's fate | {@link asyncNolink} + `Task.yield` / `Task.shutdown` |
 * | a bounded parallel map over many inputs | {@link asyncStream} / {@link asyncStreamNolink} |
 *
 * **Failures.** Tasks are `"temporary"`: a failed task is never restarted,
 * its failure is its result. `startChild` may ask for `"transient"` or
 * `"permanent"`, which re-runs the effect from scratch (under the usual
 * restart intensity). When the supervisor stops (its Scope closes, or it
 * gives up after too many restarts) every task is stopped by its shutdown
 * policy (default: interrupt, then wait up to 5 s), concurrently.
 *
 * **How tasks are supervised, and what it costs.** `startChild` goes through
 * `DynamicSupervisor.startChild` (tasks that may be restarted need its slot
 * table). The tasks of `async`, `asyncNolink` and `asyncStream` are never
 * restarted, so they are *light children*: one fiber each, counted in
 * `countChildren`/`whichChildren`, held against `maxChildren`, stopped by
 * their shutdown policy with the supervisor — without a slot, an
 * incarnation record or restart bookkeeping — yet they report through the
 * same supervisor shell as children (an abandoned task is counted and logged
 * like an abandoned child). `async` + `Task.await` costs less than a
 * `DynamicSupervisor` child with a Deferred (about 0.5x) and `asyncStream`
 * about 1.2–1.3x `Effect.forEach({ concurrency })` per trivial item
 * (`npm run bench -- task`; figures in bench/RESULTS.md). `async` tasks get
 * their own Scope (released inside the task when it ends, like any child's);
 * `asyncStream` tasks do not, because a Scope per task costs about as much
 * again as the fiber itself: wrap the function in `Effect.scoped` when an
 * item acquires resources. Timeouts cost one timer per supervisor (awaits)
 * or per stream (tasks), not one per task.
 *
 * @since 0.1.0
 */
import type * as Arr from "effect/Array"
import * as Channel from "effect/Channel"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type { Pipeable } from "effect/Pipeable"
import * as Pull from "effect/Pull"
import type * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  ChildNotFound,
  InvalidOptions,
  MaxChildren,
  type RestartIntensityExceeded,
  SupervisorStopped
} from "../Errors.ts"
import * as ChildSpec from "../Supervisor/ChildSpec.ts"
import * as DynamicSupervisor from "../Supervisor/DynamicSupervisor.ts"
import { checkSupervisorOptions } from "../internal/options.ts"
import { launchUntilStopped, supervisorLayer } from "../internal/launch.ts"
import { decodeRestartPolicy } from "../internal/policy.ts"
import type { TaskExited, TaskTimeout } from "./internal/errors.ts"
import { Timers } from "./internal/timers.ts"
import * as engine from "./internal/stream.ts"
import {
  decodeTaskShutdown,
  decodeTimeout,
  spawn,
  SupervisorImpl,
  TaskImpl,
  TaskSupervisorTypeId
} from "./internal/task.ts"
import type { Task } from "./Task.ts"
import { defaultWorkerShutdownMillis } from "../internal/shutdown.ts"

/**
 * A running task supervisor.
 *
 * @category models
 * @since 0.1.0
 */
export interface TaskSupervisor extends Pipeable {
  readonly [TaskSupervisorTypeId]: typeof TaskSupervisorTypeId
  /** The name given in the options, for logs and the live tree. */
  readonly name: string
  /** The DynamicSupervisor that holds the `startChild` tasks. */
  readonly supervisor: DynamicSupervisor.DynamicSupervisor<never>
}

/**
 * The options of {@link make}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** @default "TaskSupervisor" */
  readonly name?: string | undefined
  /** At most this many tasks at once, of every kind. @default Infinity */
  readonly maxChildren?: number | undefined
  /** For `startChild` tasks that are restarted. @default 3 */
  readonly maxRestarts?: number | undefined
  /** @default 5 */
  readonly maxSeconds?: number | undefined
  /**
   * Delays each restart of a `startChild` task by the schedule's next delay,
   * as `DynamicSupervisor`'s option of the same name does (so a transient task
   * that keeps crashing backs off instead of crash-looping at intensity pace).
   */
  readonly restartBackoff?: Schedule.Schedule<unknown, number> | undefined
  /** A task that stayed up this long starts its backoff afresh. @default the intensity window */
  readonly restartBackoffResetAfter?: Duration.Input | undefined
}

const impl = (self: TaskSupervisor): SupervisorImpl => self as unknown as SupervisorImpl

const defaultShutdown = { _tag: "Timeout", millis: defaultWorkerShutdownMillis } as const

const validate = (options: Options): InvalidOptions | undefined => {
  if (typeof options !== "object" || options === null) {
    return new InvalidOptions({ module: "TaskSupervisor", field: "options", value: options, expected: "an object" })
  }
  const policy = decodeRestartPolicy("TaskSupervisor", options)
  return policy instanceof InvalidOptions ? policy : checkSupervisorOptions("TaskSupervisor", options)
}

/**
 * Returns true if the value is a {@link TaskSupervisor}.
 *
 * @category guards
 * @since 0.1.0
 */
export const isTaskSupervisor = (u: unknown): u is TaskSupervisor =>
  typeof u === "object" && u !== null && TaskSupervisorTypeId in u

/**
 * Starts a task supervisor with no tasks, owned by the current Scope: closing
 * the Scope stops every task (concurrently, each by its shutdown policy).
 *
 * **Details**
 *
 * A negative or fractional `maxChildren`, a zero `maxSeconds`… fail with
 * `InvalidOptions` naming the field and the value; nothing is started.
 *
 * **Example** (A supervisor for at most 100 tasks)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make({ maxChildren: 100 })
 *   return yield* TaskSupervisor.countChildren(sup)
 * })
 * // => { specs: 0, active: 0, supervisors: 0, workers: 0 }
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<TaskSupervisor, InvalidOptions, Scope.Scope> =>
  Effect.suspend(() => {
    const error = validate(options)
    if (error) return Effect.fail(error)
    const name = options.name ?? "TaskSupervisor"
    return Effect.acquireRelease(
      Effect.gen(function* () {
        const dsScope = Scope.makeUnsafe()
        const ds = yield* Scope.provide(
          DynamicSupervisor.make({
            name,
            maxRestarts: options.maxRestarts,
            maxSeconds: options.maxSeconds,
            restartBackoff: options.restartBackoff,
            restartBackoffResetAfter: options.restartBackoffResetAfter
          }),
          dsScope
        )
        const fiber = yield* Effect.fiber
        const timers = new Timers(fiber.getRef(Clock.Clock), fiber.context)
        const sup = new SupervisorImpl(name, options.maxChildren ?? Infinity, ds, dsScope, timers, fiber.context)
        // when the DynamicSupervisor gives up (restart intensity), the tasks stop with it
        yield* Effect.forkDetach(
          Effect.catch(DynamicSupervisor.await(ds), (e) => sup.shutdown(e)),
          { startImmediately: true }
        )
        return sup as unknown as TaskSupervisor
      }),
      (sup) => impl(sup).shutdown("shutdown")
    )
  })

/**
 * A layer that provides a task supervisor under the given service key.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I>(
  tag: Context.Key<I, TaskSupervisor>,
  options?: Options
): Layer.Layer<I, InvalidOptions | RestartIntensityExceeded> => supervisorLayer(tag, make(options), await_)

/**
 * Declares a named task supervisor as a service class (Elixir's
 * `{Task.Supervisor, name: MyApp.TaskSupervisor}` child).
 *
 * **Example** (An application's task supervisor)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskSupervisor } from "effect-otp"
 *
 * class Tasks extends TaskSupervisor.Service<Tasks>()("MyApp/Tasks") {}
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* Tasks
 *   const task = yield* TaskSupervisor.async(sup, Effect.succeed("done"))
 *   return yield* Task.await(task)
 * }).pipe(Effect.provide(Tasks.layer))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const Service =
  <Self>() =>
  <const Id extends string>(
    id: Id,
    options?: Options
  ): Context.ServiceClass<Self, Id, TaskSupervisor> & {
    readonly layer: Layer.Layer<Self, InvalidOptions | RestartIntensityExceeded>
    readonly launch: Effect.Effect<void, InvalidOptions | RestartIntensityExceeded>
  } => {
    const Base = Context.Service<Self, TaskSupervisor>()(id)
    const started = make({ name: id, ...options })
    const layer = supervisorLayer(Base as unknown as Context.Key<Self, TaskSupervisor>, started, await_)
    return Object.assign(Base, { layer, launch: launchUntilStopped(started, await_) }) as any
  }

const await_ = (self: TaskSupervisor): Effect.Effect<void, RestartIntensityExceeded> => Deferred.await(impl(self).done)

export {
  /**
   * Waits until the supervisor stops: succeeds when its Scope closed, fails
   * with `RestartIntensityExceeded` when its `startChild` tasks were restarted
   * too often and it gave up (after stopping every task).
   *
   * @category getters
   * @since 0.1.0
   */
  await_ as await
}

/**
 * A child spec that runs a task supervisor under another supervisor (Elixir's
 * `{Task.Supervisor, name: ...}` child): type `"supervisor"`, shutdown
 * `"infinity"`, permanent unless told; its handle is the `TaskSupervisor`.
 *
 * **Example** (A task supervisor under a dynamic supervisor)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DynamicSupervisor, Task, TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const root = yield* DynamicSupervisor.make()
 *   const child = yield* DynamicSupervisor.startChild(root, TaskSupervisor.childSpec({ name: "tasks" }))
 *   const task = yield* TaskSupervisor.async(child.handle, Effect.succeed("hi"))
 *   return yield* Task.await(task)
 * })
 * // => "hi"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = (
  options: Options & {
    readonly id?: string | undefined
    readonly restart?: ChildSpec.Restart | undefined
  } = {}
): ChildSpec.ChildSpec<TaskSupervisor, InvalidOptions> =>
  ChildSpec.make({
    id: options.id ?? options.name,
    // without a name, the supervisor is named by its id (its events and logs say which one)
    start: make(options.name === undefined && options.id !== undefined ? { ...options, name: options.id } : options),
    run: await_,
    restart: options.restart ?? "permanent",
    type: "supervisor"
  })

/**
 * The options of {@link async} and {@link asyncNolink}.
 *
 * @category models
 * @since 0.1.0
 */
export interface AsyncOptions {
  /** How the task is stopped by its supervisor or its owner. @default "5 seconds" */
  readonly shutdown?: Duration.Input | "brutalKill" | "infinity" | undefined
}

const startTask = <A, E, R>(
  self: TaskSupervisor,
  effect: Effect.Effect<A, E, R>,
  options: AsyncOptions | undefined,
  owned: boolean
): Effect.Effect<Task<A, E>, MaxChildren | SupervisorStopped | InvalidOptions, Exclude<R, Scope.Scope>> =>
  Effect.withFiber(
    (caller): Effect.Effect<Task<A, E>, MaxChildren | SupervisorStopped | InvalidOptions, Exclude<R, Scope.Scope>> => {
      const policy =
        options?.shutdown === undefined ? defaultShutdown : decodeTaskShutdown("TaskSupervisor", options.shutdown, true)
      if (policy instanceof InvalidOptions) return Effect.fail(policy)
      const task = spawn(impl(self), effect, policy, caller, owned)
      return task instanceof TaskImpl ? Effect.succeed(task as unknown as Task<A, E>) : Effect.fail(task)
    }
  )

/**
 * Starts a task owned by the calling fiber and returns its handle; collect
 * its result with `Task.await`.
 *
 * **When to use**
 *
 * Use when the caller needs the task's value and should fail with it: the
 * task is an extension of the caller, not an isolation boundary.
 *
 * **Details**
 *
 * - The task starts at once, in its own fiber and Scope, with the caller's
 *   context (services, log annotations, span). It is a temporary child of
 *   the supervisor: counted, held against `maxChildren` (`MaxChildren` when
 *   full), stopped by its `shutdown` policy when the supervisor stops
 *   (`SupervisorStopped` after that).
 * - Ownership: when the calling fiber fails or is interrupted, the task is
 *   interrupted (Elixir's link). A caller that ends normally leaves its
 *   unfinished tasks to the supervisor, as a normal exit does not travel
 *   along an Elixir link — so `async` from a helper fiber (e.g. inside
 *   `Effect.forEach(..., { concurrency })`) does not kill the task when the
 *   helper returns. `Task.ignore` releases a task from its owner.
 * - Its failure reaches the caller only through `Task.await`.
 *
 * **Example** (Two lookups in parallel)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   const a = yield* TaskSupervisor.async(sup, Effect.succeed(1))
 *   const b = yield* TaskSupervisor.async(sup, Effect.succeed(2))
 *   return (yield* Task.await(a)) + (yield* Task.await(b))
 * })
 * // => 3
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const async: {
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: AsyncOptions
  ): (
    self: TaskSupervisor
  ) => Effect.Effect<Task<A, E>, MaxChildren | SupervisorStopped | InvalidOptions, Exclude<R, Scope.Scope>>
  <A, E, R>(
    self: TaskSupervisor,
    effect: Effect.Effect<A, E, R>,
    options?: AsyncOptions
  ): Effect.Effect<Task<A, E>, MaxChildren | SupervisorStopped | InvalidOptions, Exclude<R, Scope.Scope>>
} = function () {
  const args = arguments
  if (isTaskSupervisor(args[0])) return startTask(args[0], args[1], args[2], true)
  return (self: TaskSupervisor) => startTask(self, args[0], args[1], true)
} as any

/**
 * Starts a task owned only by the supervisor: the caller's failure or
 * interruption does not stop it, and its failure is only a value for whoever collects it with
 * `Task.yield` (or `Task.await`).
 *
 * **When to use**
 *
 * Use when a failure of the task must not become the caller's failure — a
 * server fiber that starts work and handles each outcome.
 *
 * **Details**
 *
 * As {@link async} (own fiber and Scope, counted, `maxChildren`, stopped with
 * the supervisor), without the ownership.
 *
 * **Example** (A task that fails without harming the caller)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   const task = yield* TaskSupervisor.asyncNolink(sup, Effect.fail("boom"))
 *   return yield* Task.yield(task)
 * })
 * // => Option.some(Exit.fail("boom"))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const asyncNolink: {
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: AsyncOptions
  ): (
    self: TaskSupervisor
  ) => Effect.Effect<Task<A, E>, MaxChildren | SupervisorStopped | InvalidOptions, Exclude<R, Scope.Scope>>
  <A, E, R>(
    self: TaskSupervisor,
    effect: Effect.Effect<A, E, R>,
    options?: AsyncOptions
  ): Effect.Effect<Task<A, E>, MaxChildren | SupervisorStopped | InvalidOptions, Exclude<R, Scope.Scope>>
} = function () {
  const args = arguments
  if (isTaskSupervisor(args[0])) return startTask(args[0], args[1], args[2], false)
  return (self: TaskSupervisor) => startTask(self, args[0], args[1], false)
} as any

/**
 * The options of {@link startChild}.
 *
 * @category models
 * @since 0.1.0
 */
export interface StartChildOptions {
  /** `"transient"` re-runs a task that failed; `"permanent"` re-runs it always. @default "temporary" */
  readonly restart?: ChildSpec.Restart | undefined
  /** @default "5 seconds" */
  readonly shutdown?: Duration.Input | "brutalKill" | undefined
}

/**
 * Starts a fire-and-forget task under the supervisor and returns its child
 * record; nobody collects its result.
 *
 * **Details**
 *
 * The task is a `DynamicSupervisor` child made with `ChildSpec.task`: with
 * `restart: "transient"` a failed run is re-run from scratch, with
 * `"permanent"` every end is, under the supervisor's restart intensity. Fails
 * with `MaxChildren`, `SupervisorStopped` or `InvalidOptions` (e.g.
 * `shutdown: "infinity"`, which Elixir rejects for tasks).
 *
 * **Example** (Sending an email in the background)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   yield* TaskSupervisor.startChild(sup, Effect.log("email sent"), { restart: "transient" })
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const startChild: {
  <E, R>(
    effect: Effect.Effect<unknown, E, R>,
    options?: StartChildOptions
  ): (
    self: TaskSupervisor
  ) => Effect.Effect<
    DynamicSupervisor.Child<void>,
    MaxChildren | SupervisorStopped | InvalidOptions,
    Exclude<R, Scope.Scope>
  >
  <E, R>(
    self: TaskSupervisor,
    effect: Effect.Effect<unknown, E, R>,
    options?: StartChildOptions
  ): Effect.Effect<
    DynamicSupervisor.Child<void>,
    MaxChildren | SupervisorStopped | InvalidOptions,
    Exclude<R, Scope.Scope>
  >
} = function () {
  const args = arguments
  const run = <E, R>(
    self: TaskSupervisor,
    effect: Effect.Effect<unknown, E, R>,
    options: StartChildOptions | undefined
  ): Effect.Effect<
    DynamicSupervisor.Child<void>,
    MaxChildren | SupervisorStopped | InvalidOptions,
    Exclude<R, Scope.Scope>
  > =>
    Effect.suspend(() => {
      if (options?.shutdown !== undefined) {
        const policy = decodeTaskShutdown("TaskSupervisor", options.shutdown, false)
        if (policy instanceof InvalidOptions) return Effect.fail(policy)
      }
      const sup = impl(self)
      const refused = sup.refuse()
      if (refused !== undefined) return Effect.fail(refused)
      const spec = ChildSpec.task(effect, { restart: options?.restart, shutdown: options?.shutdown })
      // checked again where the DynamicSupervisor takes the spec, synchronously with the start: the fiber may
      // have yielded since the check above and another fiber filled the last place
      return DynamicSupervisor.startChild(
        sup.supervisor,
        (): ChildSpec.ChildSpec<void, MaxChildren | SupervisorStopped, R> => {
          const late = sup.refuse()
          return late === undefined
            ? spec
            : (ChildSpec.make({ start: Effect.fail(late), restart: "temporary" }) as unknown as ChildSpec.ChildSpec<
                void,
                MaxChildren | SupervisorStopped,
                R
              >)
        }
      ) as Effect.Effect<
        DynamicSupervisor.Child<void>,
        MaxChildren | SupervisorStopped | InvalidOptions,
        Exclude<R, Scope.Scope>
      >
    })
  if (isTaskSupervisor(args[0])) return run(args[0], args[1], args[2])
  return (self: TaskSupervisor) => run(self, args[0], args[1])
} as any

/**
 * Stops a task (or a `startChild` child) by its shutdown policy and removes
 * it. Fails with `ChildNotFound` when it is not running under this
 * supervisor (any more).
 *
 * @category combinators
 * @since 0.1.0
 */
export const terminateChild: {
  (
    child: Task<unknown, unknown> | DynamicSupervisor.Child<unknown>
  ): (self: TaskSupervisor) => Effect.Effect<void, ChildNotFound | SupervisorStopped>
  (
    self: TaskSupervisor,
    child: Task<unknown, unknown> | DynamicSupervisor.Child<unknown>
  ): Effect.Effect<void, ChildNotFound | SupervisorStopped>
} = function () {
  const args = arguments
  const run = (
    self: TaskSupervisor,
    target: Task<unknown, unknown> | DynamicSupervisor.Child<unknown>
  ): Effect.Effect<void, ChildNotFound | SupervisorStopped> =>
    Effect.suspend(() => {
      const sup = impl(self)
      if (sup.state !== "open") return Effect.fail(new SupervisorStopped({ reason: sup.stopReason }))
      if (target instanceof TaskImpl) {
        if (target.supervisor !== sup || !sup.members.has(target)) {
          return Effect.fail(new ChildNotFound({ child: target.pid }))
        }
        sup.members.delete(target)
        target.disown()
        return Effect.uninterruptible(target.stopAll())
      }
      return DynamicSupervisor.terminateChild(sup.supervisor, target as DynamicSupervisor.Child<unknown>)
    })
  if (isTaskSupervisor(args[0])) return run(args[0], args[1])
  return (self: TaskSupervisor) => run(self, args[0])
} as any

const entries = (sup: SupervisorImpl): Array<DynamicSupervisor.ChildInfo> | undefined => {
  const out: Array<DynamicSupervisor.ChildInfo> = []
  if (sup.state === "stopped") return undefined
  for (const m of sup.members) m.entries(out)
  return out
}

/**
 * Lists every task: `startChild` children (as `DynamicSupervisor.whichChildren`
 * does) and the running `async`/`asyncNolink`/`asyncStream` tasks.
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildren = (
  self: TaskSupervisor
): Effect.Effect<ReadonlyArray<DynamicSupervisor.ChildInfo>, SupervisorStopped> =>
  Effect.flatMap(DynamicSupervisor.whichChildren(impl(self).supervisor), (ds) => {
    const light = entries(impl(self))
    return light === undefined
      ? Effect.fail(new SupervisorStopped({ reason: impl(self).stopReason }))
      : Effect.succeed([...ds, ...light])
  })

/**
 * The synchronous twin of {@link whichChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * **Example** (Listing tasks without an effect)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   yield* TaskSupervisor.async(sup, Effect.never)
 *   yield* TaskSupervisor.startChild(sup, Effect.never)
 *   return TaskSupervisor.whichChildrenUnsafe(sup)?.length
 * })
 * // => 2
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildrenUnsafe = (self: TaskSupervisor): ReadonlyArray<DynamicSupervisor.ChildInfo> | undefined => {
  const ds = DynamicSupervisor.whichChildrenUnsafe(impl(self).supervisor)
  const light = entries(impl(self))
  return ds === undefined || light === undefined ? undefined : [...ds, ...light]
}

/**
 * The pids of the running tasks (children waiting to be restarted are left
 * out, as in Elixir's `Task.Supervisor.children/1`).
 *
 * @category getters
 * @since 0.1.0
 */
export const children = (self: TaskSupervisor): Effect.Effect<ReadonlyArray<number>, SupervisorStopped> =>
  Effect.map(whichChildren(self), (all) => all.filter((c) => c.child !== "restarting").map((c) => c.pid))

/**
 * Counts the tasks, with `DynamicSupervisor.countChildren`'s meaning (every
 * task is a worker).
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildren = (self: TaskSupervisor): Effect.Effect<DynamicSupervisor.Counts, SupervisorStopped> =>
  Effect.suspend(() => {
    const counts = countChildrenUnsafe(self)
    return counts === undefined
      ? Effect.fail(new SupervisorStopped({ reason: impl(self).stopReason }))
      : Effect.succeed(counts)
  })

/**
 * The synchronous twin of {@link countChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildrenUnsafe = (self: TaskSupervisor): DynamicSupervisor.Counts | undefined => {
  const sup = impl(self)
  const ds = DynamicSupervisor.countChildrenUnsafe(sup.supervisor)
  if (sup.state === "stopped" || ds === undefined) return undefined
  return {
    specs: ds.specs + sup.light,
    active: ds.active + sup.light,
    supervisors: ds.supervisors,
    workers: ds.workers + sup.light
  }
}

// ---- asyncStream ---------------------------------------------------------------------

/**
 * The options of {@link asyncStream} and {@link asyncStreamNolink}.
 *
 * @category models
 * @since 0.1.0
 */
export interface AsyncStreamOptions {
  /** At most this many tasks run at once. @default the available parallelism (`navigator.hardwareConcurrency`) */
  readonly maxConcurrency?: number | undefined
  /** Emit results in input order. @default true */
  readonly ordered?: boolean | undefined
  /**
   * With `ordered`: exactly at most this many finished results wait for a
   * slower earlier one; when that many wait, no new task starts until the
   * slow one ends (so at most `maxBuffered + 1` tasks are started and not yet
   * emitted, which also caps the concurrency when it is below
   * `maxConcurrency`). Elixir's buffer is unbounded; this one is not.
   * An integer from 0 to 2^32 − 2.
   *
   * @default 4 * maxConcurrency
   */
  readonly maxBuffered?: number | undefined
  /** Per task, measured from its start. @default "5 seconds" */
  readonly timeout?: Duration.Input | "infinity" | undefined
  /**
   * On timeout the task is stopped; then `"exit"` fails the stream with
   * `TaskTimeout`, `"killTask"` emits `Exit.fail(TaskTimeout)` in its place
   * and goes on.
   *
   * @default "exit"
   */
  readonly onTimeout?: "exit" | "killTask" | undefined
  /** Emit failures as `TaskExited` carrying the input. @default false */
  readonly zipInputOnExit?: boolean | undefined
  /** How tasks are stopped when the stream ends early or the supervisor stops. @default "5 seconds" */
  readonly shutdown?: Duration.Input | "brutalKill" | undefined
}

/**
 * One emitted item: the task's `Exit`; with `zipInputOnExit: true` a failure
 * carries the input as a `TaskExited`.
 *
 * @category models
 * @since 0.1.0
 */
export type StreamItem<A, B, E, O> = O extends { readonly zipInputOnExit: true }
  ? Exit.Exit<B, TaskExited<A, E>>
  : Exit.Exit<B, E>

/**
 * What an async stream can fail with, besides the input's own errors.
 *
 * @category models
 * @since 0.1.0
 */
export type StreamError = TaskTimeout | MaxChildren | SupervisorStopped | InvalidOptions

const defaultParallelism = (): number => {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency
  return typeof n === "number" && n > 0 ? n : 1
}

/** The largest array length (results are kept in a ring of `maxBuffered + 1` slots). */
const maxArrayLength = 2 ** 32 - 1

const decodeStreamOptions = (
  options: AsyncStreamOptions | undefined,
  linked: boolean
): engine.Config | InvalidOptions => {
  const m = "TaskSupervisor.asyncStream"
  const bad = (field: string, value: unknown, expected: string) =>
    new InvalidOptions({ module: m, field, value, expected })
  const maxConcurrency = options?.maxConcurrency ?? defaultParallelism()
  if (!(Number.isInteger(maxConcurrency) && maxConcurrency > 0 && maxConcurrency <= maxArrayLength)) {
    return bad("maxConcurrency", maxConcurrency, "an integer from 1 to 2^32 - 1")
  }
  const ordered = options?.ordered ?? true
  if (typeof ordered !== "boolean") return bad("ordered", ordered, "a boolean")
  const maxBuffered = options?.maxBuffered ?? Math.min(4 * maxConcurrency, maxArrayLength - 1)
  if (!(Number.isInteger(maxBuffered) && maxBuffered >= 0 && maxBuffered < maxArrayLength)) {
    return bad("maxBuffered", maxBuffered, "an integer from 0 to 2^32 - 2")
  }
  const timeout = decodeTimeout(m, "timeout", options?.timeout, 5_000)
  if (timeout instanceof InvalidOptions) return timeout
  const onTimeout = options?.onTimeout ?? "exit"
  if (onTimeout !== "exit" && onTimeout !== "killTask") return bad("onTimeout", onTimeout, '"exit" or "killTask"')
  const zip = options?.zipInputOnExit ?? false
  if (typeof zip !== "boolean") return bad("zipInputOnExit", zip, "a boolean")
  const shutdown = options?.shutdown === undefined ? defaultShutdown : decodeTaskShutdown(m, options.shutdown, false)
  if (shutdown instanceof InvalidOptions) return shutdown
  return {
    maxConcurrency,
    ordered,
    maxBuffered,
    timeout,
    killOnTimeout: onTimeout === "killTask",
    zipInputOnExit: zip,
    shutdown,
    linked
  }
}

const makeStream = (
  self: TaskSupervisor,
  items: Iterable<unknown> | Stream.Stream<unknown, unknown, unknown>,
  f: (a: unknown) => Effect.Effect<unknown, unknown, unknown>,
  options: AsyncStreamOptions | undefined,
  linked: boolean
): Stream.Stream<any, any, any> => {
  const config = decodeStreamOptions(options, linked)
  if (config instanceof InvalidOptions) return Stream.fail(config)
  const open = (input: engine.Input, scope: Scope.Scope) =>
    Effect.withFiber((fiber) => {
      const run = new engine.Run(
        impl(self),
        f as (a: unknown) => Effect.Effect<unknown, unknown>,
        config,
        input,
        fiber.context,
        fiber.getRef(Clock.Clock)
      )
      return Effect.as(
        Scope.addFinalizer(
          scope,
          Effect.suspend(() => run.close())
        ),
        run.pull
      )
    })
  if (Stream.isStream(items)) {
    return Stream.transformPull(items, (pull, scope) =>
      open({ _tag: "Pull", pull: pull as Pull.Pull<Arr.NonEmptyReadonlyArray<unknown>, unknown, void> }, scope)
    )
  }
  return Stream.fromChannel(
    Channel.fromTransform((_, scope) =>
      open({ _tag: "Iterator", iterator: (items as Iterable<unknown>)[Symbol.iterator]() }, scope)
    )
  )
}

const streamDual = (linked: boolean) =>
  function () {
    const args = arguments
    if (typeof args[1] === "function") {
      return (items: any) => makeStream(args[0], items, args[1], args[2], linked)
    }
    return makeStream(args[0], args[1], args[2], args[3], linked)
  } as any

/**
 * Runs `f` on every item as a task under the supervisor, at most
 * `maxConcurrency` at a time, and streams their results — Elixir's
 * `Task.Supervisor.async_stream`. The tasks are owned by the stream: a task
 * failure fails the stream.
 *
 * **When to use**
 *
 * Use for a bounded, supervised parallel map over many inputs (an Iterable
 * or a `Stream`), when any failure should stop the whole job. Use
 * {@link asyncStreamNolink} to receive failures as items instead.
 *
 * **Details**
 *
 * - Emits each task's `Exit` (success, or a `TaskTimeout` failure with
 *   `onTimeout: "killTask"`), in input order unless `ordered: false`.
 * - `timeout` is per task from its own start. On timeout the task is stopped;
 *   `"exit"` fails the stream with `TaskTimeout`, `"killTask"` emits
 *   `Exit.fail(TaskTimeout)` and goes on.
 * - A concurrency slot frees when a task ends, not when its result is
 *   emitted; with `ordered`, finished results wait in a buffer of at most
 *   `maxBuffered` (Elixir's is unbounded), then starts pause.
 * - When the stream ends for any reason — done, failed, halted early by
 *   `Stream.take`, or its consumer interrupted — every task still running is
 *   stopped by `shutdown` before the stream's Scope is released: none is
 *   left behind. As in Elixir, halting early wastes up to `maxConcurrency`
 *   started tasks.
 * - `maxChildren` reached while starting a task: the stream stops its tasks
 *   and fails with `MaxChildren`. Keep `maxConcurrency` below `maxChildren`.
 * - The input is pulled lazily; each run of the stream is independent.
 *   While the stream waits for its input, finished results wait too (as in
 *   Elixir, where the caller is busy enumerating): they are emitted once the
 *   input produces or ends. A failure does not wait (the input's pull is
 *   interrupted).
 * - Options are validated when the stream is built: `InvalidOptions` when run.
 * - Tasks have no Scope of their own (for speed, see the module docs): use
 *   `Effect.scoped` inside `f` for per-item resources.
 *
 * **Gotchas**
 *
 * Items are `Exit`s even here, where a failure fails the stream: with
 * `onTimeout: "killTask"` a timed-out item is an `Exit.fail(TaskTimeout)`.
 * `Stream.mapEffect((exit) => exit)` turns them back into values (failing
 * the stream on the first `TaskTimeout`).
 *
 * **Example** (A supervised parallel map)
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   return yield* Stream.range(1, 5).pipe(
 *     TaskSupervisor.asyncStream(sup, (n: number) => Effect.succeed(n * n), { maxConcurrency: 2 }),
 *     Stream.mapEffect((exit) => exit), // an Exit is an Effect: back to the value
 *     Stream.runCollect
 *   )
 * })
 * // => [1, 4, 9, 16, 25]
 * ```
 *
 * @category streams
 * @since 0.1.0
 */
export const asyncStream: {
  <A, B, E, R, const O extends AsyncStreamOptions = {}>(
    self: TaskSupervisor,
    f: (a: A) => Effect.Effect<B, E, R>,
    options?: O
  ): <EI = never, RI = never>(
    items: Iterable<A> | Stream.Stream<A, EI, RI>
  ) => Stream.Stream<StreamItem<A, B, TaskTimeout, O>, E | EI | StreamError, R | RI>
  <A, B, E, R, EI = never, RI = never, const O extends AsyncStreamOptions = {}>(
    self: TaskSupervisor,
    items: Iterable<A> | Stream.Stream<A, EI, RI>,
    f: (a: A) => Effect.Effect<B, E, R>,
    options?: O
  ): Stream.Stream<StreamItem<A, B, TaskTimeout, O>, E | EI | StreamError, R | RI>
} = streamDual(true)

/**
 * As {@link asyncStream}, but the tasks' failures are emitted as items
 * (`Exit.Failure`, with the input when `zipInputOnExit`) instead of failing
 * the stream — Elixir's `async_stream_nolink`.
 *
 * **Example** (Reporting failures as values)
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   return yield* Stream.runCollect(
 *     TaskSupervisor.asyncStreamNolink(sup, [1, 2, 3], (n) => (n === 2 ? Effect.fail("two") : Effect.succeed(n)))
 *   )
 * })
 * // => [Exit.succeed(1), Exit.fail("two"), Exit.succeed(3)]
 * ```
 *
 * @category streams
 * @since 0.1.0
 */
export const asyncStreamNolink: {
  <A, B, E, R, const O extends AsyncStreamOptions = {}>(
    self: TaskSupervisor,
    f: (a: A) => Effect.Effect<B, E, R>,
    options?: O
  ): <EI = never, RI = never>(
    items: Iterable<A> | Stream.Stream<A, EI, RI>
  ) => Stream.Stream<StreamItem<A, B, E | TaskTimeout, O>, EI | StreamError, R | RI>
  <A, B, E, R, EI = never, RI = never, const O extends AsyncStreamOptions = {}>(
    self: TaskSupervisor,
    items: Iterable<A> | Stream.Stream<A, EI, RI>,
    f: (a: A) => Effect.Effect<B, E, R>,
    options?: O
  ): Stream.Stream<StreamItem<A, B, E | TaskTimeout, O>, EI | StreamError, R | RI>
} = streamDual(false)
