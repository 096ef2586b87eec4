/**
 * The machinery shared by `Task` and `TaskSupervisor`: the supervisor's
 * record of its light tasks, one task's record, and caller ownership.
 *
 * A task started by `async`, `asyncNolink` or `asyncStream` is a *light
 * child*: one fiber, counted as a child of the supervisor (against
 * `maxChildren`, in `countChildren`/`whichChildren`), stopped by its shutdown
 * policy when the supervisor stops — but it is never restarted, so it needs no
 * slot in the `DynamicSupervisor`'s restart table. `startChild` tasks, which
 * may be restarted, are ordinary `DynamicSupervisor` children.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as Fiber from "effect/Fiber"
import { pipeArguments } from "effect/Pipeable"
import * as Scope from "effect/Scope"
import { InvalidOptions, MaxChildren, RestartIntensityExceeded, SupervisorStopped } from "../../Errors.ts"
import type { ShutdownPolicy } from "../../Supervisor/ChildSpec.ts"
import { decodeShutdown } from "../../internal/shutdown.ts"
import * as DynamicSupervisor from "../../Supervisor/DynamicSupervisor.ts"
import * as child from "../../internal/child.ts"
import * as Inspect from "../../internal/inspect.ts"
import type { Shell } from "../../internal/shell.ts"
import { type DynamicEngine, shellNodeState } from "../../Supervisor/internal/dynamic.ts"
import { type Entry, Timers } from "./timers.ts"

/** @internal */
export const TaskTypeId = "~effect-otp/Task"

/** @internal */
export const TaskSupervisorTypeId = "~effect-otp/TaskSupervisor"

/** What the supervisor holds besides its DynamicSupervisor: an async task or a running stream. @internal */
export interface Member {
  /** stop every task of this member by its policy (the supervisor is stopping) */
  readonly stopAll: (reason: SupervisorStopped) => Effect.Effect<void>
  /** push one `whichChildren` entry per live task */
  readonly entries: (out: Array<DynamicSupervisor.ChildInfo>) => void
}

/** @internal */
export const tasksActive = Metric.gauge("effect_otp_tasks_active", {
  description:
    "async, asyncNolink and asyncStream tasks currently running (startChild tasks are DynamicSupervisor children)"
})

/** @internal */
export class SupervisorImpl implements Inspect.Inspector {
  declare readonly [TaskSupervisorTypeId]: typeof TaskSupervisorTypeId
  readonly kind = "TaskSupervisor" as const
  readonly [Inspect.TypeId]: Inspect.Inspector = this
  state: "open" | "stopping" | "stopped" = "open"
  stopReason: "shutdown" | RestartIntensityExceeded = "shutdown"
  /** live light tasks (fibers that have not ended yet) */
  light = 0
  /** what the gauge shows */
  reported = 0
  readonly gauge: Metric.Metric<number, unknown>
  readonly members = new Set<Member>()
  /** completes when stopped: fails when it gave up */
  readonly done = Deferred.makeUnsafe<void, RestartIntensityExceeded>()

  constructor(
    readonly name: string,
    readonly maxChildren: number,
    readonly supervisor: DynamicSupervisor.DynamicSupervisor<never>,
    readonly dsScope: Scope.Closeable,
    readonly timers: Timers,
    readonly context: Context.Context<never>
  ) {
    this.gauge = Metric.withAttributes(tasksActive, { supervisor: name })
  }

  /** Brings the tasks gauge up to date (called once per stream pull and when the supervisor stops). */
  syncGauge(): void {
    this.gaugeQueued = false
    const delta = this.light - this.reported
    if (delta !== 0) {
      this.reported = this.light
      this.gauge.modifyUnsafe(delta, this.context)
    }
  }

  /**
   * Brings the gauge up to date at the end of the current macrotask: tasks
   * that start and end in the same tick cost no metric update, and many
   * starts cost one.
   */
  syncGaugeSoon(): void {
    if (this.gaugeQueued) return
    this.gaugeQueued = true
    queueMicrotask(this.syncGaugeBound)
  }

  gaugeQueued = false
  readonly syncGaugeBound = () => this.syncGauge()

  pipe() {
    return pipeArguments(this, arguments)
  }

  toJSON(): unknown {
    return { _id: "TaskSupervisor", name: this.name, state: this.state, tasks: this.light }
  }

  /** The shell of the DynamicSupervisor that holds the `startChild` tasks: the one place tasks report to. */
  get shell(): Shell {
    return (this.supervisor as unknown as DynamicEngine).shell
  }

  // ---- Inspect.Inspector ----------------------------------------------------------------

  snapshot(): Inspect.NodeSnapshot {
    const inner = (this.supervisor as unknown as DynamicEngine).snapshot()
    const tasks: Array<DynamicSupervisor.ChildInfo> = []
    for (const m of this.members) m.entries(tasks)
    const children = inner.children.slice()
    for (const t of tasks) {
      children.push({ kind: "Task", type: "worker", pid: t.pid, state: "running", restarts: 0, children: [] })
    }
    const counts = inner.counts!
    return {
      kind: "TaskSupervisor",
      type: "supervisor",
      name: this.name,
      id: this.name,
      state: this.state === "open" ? shellNodeState(this.shell) : this.state === "stopping" ? "stopping" : inner.state,
      restarts: 0,
      counts: {
        specs: counts.specs + this.light,
        active: counts.active + this.light,
        supervisors: counts.supervisors,
        workers: counts.workers + this.light
      },
      stats: { tasks: this.light, startChildTasks: counts.specs },
      children
    }
  }

  subscribe(listener: (event: Inspect.InspectEvent) => void): () => void {
    return Inspect.addListener(this.shell, listener)
  }

  childInspectors(): ReadonlyArray<Inspect.Inspector> {
    return (this.supervisor as unknown as DynamicEngine).childInspectors()
  }

  /** undefined when a new task may start now, else why not */
  refuse(): MaxChildren | SupervisorStopped | undefined {
    if (this.state !== "open") return new SupervisorStopped({ reason: this.stopReason })
    if (this.maxChildren !== Infinity) {
      const counts = DynamicSupervisor.countChildrenUnsafe(this.supervisor)
      if (counts === undefined) return new SupervisorStopped({ reason: this.stopReason })
      if (counts.specs + this.light >= this.maxChildren) return new MaxChildren({ maxChildren: this.maxChildren })
    }
    return undefined
  }

  /** Stops every light task (concurrently, each by its policy) and the DynamicSupervisor. */
  shutdown(reason: "shutdown" | RestartIntensityExceeded): Effect.Effect<void> {
    if (this.state !== "open") return Effect.asVoid(Effect.exit(Deferred.await(this.done)))
    this.state = "stopping"
    this.stopReason = reason
    const error = new SupervisorStopped({ reason })
    const stops: Array<Effect.Effect<void>> = [Scope.close(this.dsScope, Exit.void)]
    for (const m of this.members) stops.push(m.stopAll(error))
    return Effect.uninterruptible(
      Effect.ensuring(
        Effect.all(stops, { concurrency: "unbounded", discard: true }),
        Effect.sync(() => {
          this.members.clear()
          this.state = "stopped"
          this.timers.close()
          this.syncGauge()
          Deferred.doneUnsafe(this.done, reason === "shutdown" ? Exit.void : Exit.fail(reason))
        })
      )
    )
  }
}
Object.defineProperty(SupervisorImpl.prototype, TaskSupervisorTypeId, { value: TaskSupervisorTypeId })

/**
 * Stops a task by its policy; one that overruns its shutdown is abandoned and
 * reported once through the supervisor's shell — log, the
 * `effect_otp_child_shutdown_abandoned_total` metric and the `Abandoned`
 * event — exactly as a child is.
 *
 * @internal
 */
export const stopTask = (
  sup: SupervisorImpl,
  pid: number,
  fiber: Fiber.Fiber<unknown, unknown>,
  policy: ShutdownPolicy
): Effect.Effect<void> =>
  sup.shell.report({ id: undefined, pid }, policy, child.stopFiber(fiber, policy), child.stoppedNow, "task")

/** The tasks a caller fiber owns (`async`): stopped when that fiber fails or is interrupted. @internal */
const owners = new WeakMap<Fiber.Fiber<unknown, unknown>, Set<TaskImpl<unknown, unknown>>>()

const own = (caller: Fiber.Fiber<unknown, unknown>, task: TaskImpl<unknown, unknown>): void => {
  let set = owners.get(caller)
  if (set === undefined) {
    const owned = new Set<TaskImpl<unknown, unknown>>()
    set = owned
    owners.set(caller, owned)
    caller.addObserver((exit) => {
      owners.delete(caller)
      // a link, in Elixir's words: a caller that fails or is interrupted takes its tasks with it; one that
      // ends normally leaves them to the supervisor (a helper fiber that only started a task, say)
      for (const t of owned) {
        t.owned = undefined
        if (exit._tag === "Failure") t.fiber.interruptUnsafe()
      }
      owned.clear()
    })
  }
  set.add(task)
  task.owned = set
}

/** @internal */
export class TaskImpl<A, E> implements Member {
  declare readonly [TaskTypeId]: typeof TaskTypeId
  readonly pid = child.newPid()
  fiber: Fiber.Fiber<A, E> = undefined as any
  /** the owner's set, while a caller owns it */
  owned: Set<TaskImpl<unknown, unknown>> | undefined = undefined

  constructor(
    readonly supervisor: SupervisorImpl,
    readonly shutdownPolicy: ShutdownPolicy,
    /** the caller's fiber id for `async`, undefined for `asyncNolink` */
    readonly owner: number | undefined
  ) {}

  get id(): undefined {
    return undefined
  }
  get type(): "worker" {
    return "worker"
  }
  get handle(): undefined {
    return undefined
  }

  pipe() {
    return pipeArguments(this, arguments)
  }
  toJSON(): unknown {
    return { _id: "Task", pid: this.pid, owner: this.owner, done: this.fiber.pollUnsafe() !== undefined }
  }

  /** Releases ownership: the caller's failure no longer stops it. */
  disown(): void {
    if (this.owned !== undefined) {
      this.owned.delete(this as TaskImpl<unknown, unknown>)
      this.owned = undefined
    }
  }

  stopAll(): Effect.Effect<void> {
    return stopTask(this.supervisor, this.pid, this.fiber, this.shutdownPolicy)
  }

  entries(out: Array<DynamicSupervisor.ChildInfo>): void {
    out.push({ pid: this.pid, id: undefined, child: this, type: "worker", restarts: 0 })
  }
}
Object.defineProperty(TaskImpl.prototype, TaskTypeId, { value: TaskTypeId })

/**
 * Starts a light task: the effect runs in its own fiber and Scope (released
 * inside the fiber when it ends), with the caller's context. With `owned`,
 * the caller's fiber owns it. Starts immediately, in the caller's tick.
 *
 * @internal
 */
export const spawn = <A, E, R>(
  sup: SupervisorImpl,
  effect: Effect.Effect<A, E, R>,
  policy: ShutdownPolicy,
  caller: Fiber.Fiber<unknown, unknown>,
  owned: boolean
): TaskImpl<A, E> | MaxChildren | SupervisorStopped => {
  const refused = sup.refuse()
  if (refused !== undefined) return refused
  const task = new TaskImpl<A, E>(sup, policy, owned ? caller.id : undefined)
  const scope = Scope.makeUnsafe()
  sup.light++
  sup.members.add(task)
  if (owned) own(caller, task as TaskImpl<unknown, unknown>)
  const fiber = Effect.runForkWith(Context.add(caller.context as Context.Context<R>, Scope.Scope, scope))(
    Effect.onExit(effect, (exit) => Scope.close(scope, exit))
  )
  task.fiber = fiber
  fiber.addObserver(() => {
    sup.light--
    sup.members.delete(task)
    task.disown()
    sup.syncGaugeSoon()
  })
  sup.syncGaugeSoon()
  return task
}

/** Reads a timeout option: milliseconds, Infinity, or an error naming it. @internal */
export const decodeTimeout = (
  module: string,
  field: string,
  value: Duration.Input | "infinity" | undefined,
  fallback: number
): number | InvalidOptions => {
  if (value === undefined) return fallback
  if (value === "infinity") return Infinity
  const expected = 'a duration >= 0 or "infinity"'
  if (typeof value === "number" && (Number.isNaN(value) || value < 0)) {
    return new InvalidOptions({ module, field, value, expected })
  }
  const d = Duration.fromInput(value)
  if (d._tag === "None") return new InvalidOptions({ module, field, value, expected })
  const millis = Duration.toMillis(d.value)
  return millis >= 0 ? millis : new InvalidOptions({ module, field, value, expected })
}

/** A task shutdown option, as Elixir takes it for tasks. @internal */
export const decodeTaskShutdown = (
  module: string,
  value: Duration.Input | "brutalKill" | "infinity" | undefined,
  allowInfinity: boolean
): ShutdownPolicy | InvalidOptions => {
  const policy = decodeShutdown(value, "worker")
  if (policy instanceof InvalidOptions || (!allowInfinity && policy._tag === "Infinity")) {
    return new InvalidOptions({
      module,
      field: "shutdown",
      value,
      expected: allowInfinity ? 'a duration >= 0, "brutalKill" or "infinity"' : 'a duration >= 0 or "brutalKill"'
    })
  }
  return policy
}

/**
 * Waits for a task's exit for at most `millis` (on Effect's Clock);
 * `undefined` when the time ran out first. Costs no timer when the task has
 * already ended, and shares its supervisor's timer otherwise.
 *
 * @internal
 */
export const waitExit = <A, E>(task: TaskImpl<A, E>, millis: number): Effect.Effect<Exit.Exit<A, E> | undefined> =>
  Effect.suspend(() => {
    const fiber = task.fiber
    const done = fiber.pollUnsafe()
    if (done !== undefined) return Effect.succeed(done)
    if (millis <= 0) return Effect.succeed(undefined)
    const timers = task.supervisor.timers
    return Effect.callback<Exit.Exit<A, E> | undefined>((resume) => {
      let timer: Entry | undefined
      const remove = fiber.addObserver((exit) => {
        if (timer !== undefined) timers.cancel(timer)
        resume(Effect.succeed(exit))
      })
      if (millis !== Infinity) {
        timer = timers.add(millis, () => {
          remove()
          resume(Effect.succeed(undefined))
        })
      }
      return Effect.sync(() => {
        remove()
        if (timer !== undefined) timers.cancel(timer)
      })
    })
  })
