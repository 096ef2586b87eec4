/**
 * A running task: one supervised fiber that computes one value, started by
 * `TaskSupervisor.async` or `TaskSupervisor.asyncNolink`, and the ways to get
 * its result (`await`, `yield`, `yieldMany`) or to stop it (`shutdown`,
 * `ignore`).
 *
 * A `Task` is Elixir's `%Task{}`: a handle on work that runs concurrently
 * and ends with one result. Compared with a bare `Fiber`, a task is a child
 * of a `TaskSupervisor`: it is counted and limited there, and stopped by its
 * shutdown policy when the supervisor stops. Compared with a supervisor
 * child started by `TaskSupervisor.startChild`, a task is never restarted and
 * always has a result to collect.
 *
 * **Failures.** A task's failure or defect is its `Exit`: `await` fails with
 * that cause in the caller, `yield` returns it as a value. A task stopped by
 * `shutdown` or by its supervisor ends interrupted. `await` that runs out of
 * time fails with `TaskTimeout` and leaves the task running, as in Elixir (an
 * `async` task then ends with its caller, if the caller does not catch the
 * timeout).
 *
 * **Differences from Elixir, on purpose.** There is no mailbox: a result is a
 * value held by the task, so any fiber may await a task (Elixir allows only
 * its owner), awaiting twice returns the same result, and nothing can leak
 * into a caller's mailbox after a timeout.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import type { Pipeable } from "effect/Pipeable"
import { InvalidOptions } from "../Errors.ts"
import * as child from "../internal/child.ts"
import { TaskExited, TaskKilled, TaskTimeout } from "./internal/errors.ts"
import { decodeTaskShutdown, decodeTimeout, type TaskImpl, TaskTypeId, waitExit } from "./internal/task.ts"
import type { Entry } from "./internal/timers.ts"

export {
  /**
   * @category errors
   * @since 0.1.0
   */
  TaskExited,
  /**
   * @category errors
   * @since 0.1.0
   */
  TaskKilled,
  /**
   * @category errors
   * @since 0.1.0
   */
  TaskTimeout
}

/**
 * A task started under a `TaskSupervisor`. `A` is its value, `E` its error.
 *
 * @category models
 * @since 0.1.0
 */
export interface Task<out A, out E = never> extends Pipeable {
  readonly [TaskTypeId]: typeof TaskTypeId
  /** Identifies the task among the supervisor's children (`TaskSupervisor.children`). */
  readonly pid: number
  /** The id of the fiber that owns it (`async`), `undefined` for `asyncNolink`. */
  readonly owner: number | undefined
  /** The task's fiber. Its exit is the task's result. */
  readonly fiber: Fiber.Fiber<A, E>
}

/**
 * How long to wait: a duration or `"infinity"`.
 *
 * @category models
 * @since 0.1.0
 */
export type Timeout = Duration.Input | "infinity"

/** Elixir's default for `await`, `yield`, `yieldMany` and `shutdown`: 5 s. */
const defaultTimeoutMillis = 5_000

const impl = <A, E>(task: Task<A, E>): TaskImpl<A, E> => task as unknown as TaskImpl<A, E>

/** A bad timeout fails with `InvalidOptions` before anything else is looked at (so the same call always fails). */
const withMillis = <A, E>(
  field: string,
  timeout: Timeout | undefined,
  f: (ms: number) => Effect.Effect<A, E>
): Effect.Effect<A, E | InvalidOptions> =>
  Effect.suspend((): Effect.Effect<A, E | InvalidOptions> => {
    const ms = decodeTimeout("Task", field, timeout, defaultTimeoutMillis)
    return typeof ms === "number" ? f(ms) : Effect.fail(ms)
  })

/**
 * Returns true if the value is a {@link Task}.
 *
 * @category guards
 * @since 0.1.0
 */
export const isTask = (u: unknown): u is Task<unknown, unknown> =>
  typeof u === "object" && u !== null && TaskTypeId in u

const await_: {
  (timeout?: Timeout): <A, E>(self: Task<A, E>) => Effect.Effect<A, E | TaskTimeout | InvalidOptions>
  <A, E>(self: Task<A, E>, timeout?: Timeout): Effect.Effect<A, E | TaskTimeout | InvalidOptions>
} = dual(
  (args) => isTask(args[0]),
  <A, E>(self: Task<A, E>, timeout?: Timeout): Effect.Effect<A, E | TaskTimeout | InvalidOptions> => {
    // the timeout is checked first, so a bad one fails whether or not the task has finished
    if (timeout !== undefined) {
      const ms = decodeTimeout("Task", "timeout", timeout, defaultTimeoutMillis)
      if (typeof ms !== "number") return Effect.fail(ms)
    }
    // fast path: no timer, no closure for a task that has already finished
    const done = self.fiber.pollUnsafe()
    if (done !== undefined) return done
    return withMillis("timeout", timeout, (ms) =>
      Effect.flatMap(
        waitExit(impl(self), ms),
        (exit): Effect.Effect<A, E | TaskTimeout> =>
          exit ?? Effect.fail(new TaskTimeout({ pid: self.pid, timeout: ms }))
      )
    )
  }
)

export {
  /**
   * Waits for a task's result: succeeds with its value, fails with its cause
   * (its error, defect or interruption), or fails with `TaskTimeout` after
   * `timeout` (default 5 s, as Elixir).
   *
   * **When to use**
   *
   * Use after `TaskSupervisor.async` when the caller needs the value and
   * shares the task's fate: its failure becomes the caller's failure.
   *
   * **Details**
   *
   * - On timeout the task is **not** stopped (Elixir's rule): an `async` task
   *   ends when its owner fails, so a caller that lets `TaskTimeout` fail it
   *   stops the task too; a caller that catches the timeout leaves it
   *   running (stop it with {@link shutdown}).
   * - A task stopped by `shutdown` or by its supervisor ends interrupted, and
   *   `await` fails with that interruption, as `Fiber.join` does.
   * - A task that already finished costs no timer.
   * - An invalid `timeout` (negative, NaN) is a defect carrying `InvalidOptions`.
   *
   * **Gotchas**
   *
   * Use {@link yield} to receive a failure as a value instead.
   *
   * **Example** (Awaiting an async task)
   *
   * ```ts
   * import { Effect } from "effect"
   * import { Task, TaskSupervisor } from "effect-otp"
   *
   * const program = Effect.gen(function*() {
   *   const sup = yield* TaskSupervisor.make()
   *   const task = yield* TaskSupervisor.async(sup, Effect.succeed(21 * 2))
   *   return yield* Task.await(task)
   * })
   * // => 42
   * ```
   *
   * @category getters
   * @since 0.1.0
   */
  await_ as await
}

const yield_: {
  (timeout?: Timeout): <A, E>(self: Task<A, E>) => Effect.Effect<Option.Option<Exit.Exit<A, E>>, InvalidOptions>
  <A, E>(self: Task<A, E>, timeout?: Timeout): Effect.Effect<Option.Option<Exit.Exit<A, E>>, InvalidOptions>
} = dual(
  (args) => isTask(args[0]),
  <A, E>(self: Task<A, E>, timeout?: Timeout): Effect.Effect<Option.Option<Exit.Exit<A, E>>, InvalidOptions> =>
    withMillis("timeout", timeout, (ms) => Effect.map(waitExit(impl(self), ms), Option.fromUndefinedOr))
)

export {
  /**
   * Waits up to `timeout` (default 5 s) for a task's exit: `Some(exit)` when
   * it finished (successfully or not), `None` when it is still running. Never
   * fails, and never stops the task: call it again, or {@link shutdown} it.
   *
   * **When to use**
   *
   * Use with `asyncNolink` tasks, where a failure is an outcome to handle,
   * not the caller's failure. Elixir's idiom
   * `Task.yield(task, t) || Task.shutdown(task)` is
   * `Effect.flatMap(Task.yield(task, t), Option.match({ onNone: () => Task.shutdown(task), onSome: (e) => Effect.succeedSome(e) }))`.
   *
   * **Example** (A task that takes too long)
   *
   * ```ts
   * import { Effect, Option } from "effect"
   * import { Task, TaskSupervisor } from "effect-otp"
   *
   * const program = Effect.gen(function*() {
   *   const sup = yield* TaskSupervisor.make()
   *   const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
   *   return Option.isNone(yield* Task.yield(task, "10 millis"))
   * })
   * // => true
   * ```
   *
   * @category getters
   * @since 0.1.0
   */
  yield_ as yield
}

/**
 * Waits for several tasks and returns their values in input order, within one
 * `timeout` for the whole batch (default 5 s) — Elixir's `Task.await_many`.
 *
 * **Details**
 *
 * - Fails as soon as any task fails, with that task's cause, without waiting
 *   for the others; fails with `TaskTimeout` when the batch runs out of time.
 *   As with {@link await}, no task is stopped by a timeout or by another
 *   task's failure (owned tasks end with their caller if it lets the failure
 *   end it).
 * - An empty list returns `[]` at once.
 *
 * **Example** (Three lookups)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   const tasks = yield* Effect.forEach([1, 3, 9], (n) => TaskSupervisor.async(sup, Effect.succeed(n)))
 *   return yield* Task.awaitMany(tasks)
 * })
 * // => [1, 3, 9]
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const awaitMany = <A, E>(
  tasks: Iterable<Task<A, E>>,
  timeout?: Timeout
): Effect.Effect<Array<A>, E | TaskTimeout | InvalidOptions> =>
  Effect.suspend((): Effect.Effect<Array<A>, E | TaskTimeout | InvalidOptions> => {
    const checked = decodeTimeout("Task", "timeout", timeout, defaultTimeoutMillis)
    if (typeof checked !== "number") return Effect.fail(checked)
    const list = Array.from(tasks)
    const values: Array<A> = new Array(list.length)
    const waiting: Array<boolean> = new Array(list.length).fill(false)
    let pending = 0
    for (let i = 0; i < list.length; i++) {
      const exit = list[i]!.fiber.pollUnsafe()
      if (exit === undefined) {
        pending++
        waiting[i] = true
      } else if (exit._tag === "Failure") return Effect.failCause(exit.cause)
      else values[i] = exit.value
    }
    if (pending === 0) return Effect.succeed(values)
    return withMillis("timeout", timeout, (ms) =>
      Effect.callback<Array<A>, E | TaskTimeout>((resume) => {
        const timers = impl(list[0]!).supervisor.timers
        const removes: Array<() => void> = []
        let timer: Entry | undefined
        let over = false
        const stop = () => {
          over = true
          for (const r of removes) r()
          if (timer !== undefined) timers.cancel(timer)
        }
        const end = (result: Effect.Effect<Array<A>, E | TaskTimeout>) => {
          if (over) return
          stop()
          resume(result)
        }
        // a task that ended since the check above is reported at once by addObserver
        list.forEach((task, i) => {
          if (!waiting[i] || over) return
          removes.push(
            task.fiber.addObserver((exit) => {
              if (exit._tag === "Failure") return end(Effect.failCause(exit.cause))
              values[i] = exit.value
              if (--pending === 0) end(Effect.succeed(values))
            })
          )
        })
        if (ms !== Infinity && !over) {
          timer = timers.add(ms, () => end(Effect.fail(new TaskTimeout({ pid: list[0]!.pid, timeout: ms }))))
        }
        return Effect.sync(stop)
      })
    )
  })

/**
 * What {@link yieldMany} does with the tasks still running when its timeout
 * fires: leave them (`"nothing"`), release them from their owner
 * (`"ignore"`), or stop them without waiting (`"killTask"`).
 *
 * @category models
 * @since 0.1.0
 */
export type OnTimeout = "nothing" | "ignore" | "killTask"

/**
 * Waits for several tasks at once, up to one `timeout` for the whole batch
 * (default 5 s), and returns each task's result in input order: `Some(exit)`
 * for those that finished, `None` for the others.
 *
 * **Details**
 *
 * - `limit`: return as soon as that many tasks have finished (capped at the
 *   number of tasks). `onTimeout` applies only when the timeout fired, not
 *   when the limit was reached (Elixir's rule).
 * - `onTimeout: "killTask"` stops each unfinished task (`shutdown` with
 *   `"brutalKill"`); a task that finished in that instant reports its result
 *   instead of `None`.
 * - An invalid option is a defect carrying `InvalidOptions`.
 *
 * **Example** (Collecting what finished in time)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   const fast = yield* TaskSupervisor.asyncNolink(sup, Effect.succeed("fast"))
 *   const slow = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
 *   return yield* Task.yieldMany([fast, slow], { timeout: "10 millis", onTimeout: "killTask" })
 * })
 * // => [Option.some(Exit.succeed("fast")), Option.none()]
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const yieldMany = <A, E>(
  tasks: Iterable<Task<A, E>>,
  options?: {
    /** For the whole batch. @default "5 seconds" */
    readonly timeout?: Timeout | undefined
    /** @default "nothing" */
    readonly onTimeout?: OnTimeout | undefined
    /** Return once this many tasks have finished. @default all of them */
    readonly limit?: number | undefined
  }
): Effect.Effect<Array<Option.Option<Exit.Exit<A, E>>>, InvalidOptions> =>
  Effect.suspend(() => {
    const checked = decodeTimeout("Task", "timeout", options?.timeout, defaultTimeoutMillis)
    if (typeof checked !== "number") return Effect.fail(checked)
    const list = Array.from(tasks)
    const onTimeout = options?.onTimeout ?? "nothing"
    if (onTimeout !== "nothing" && onTimeout !== "ignore" && onTimeout !== "killTask") {
      return Effect.fail(invalid("onTimeout", onTimeout, '"nothing", "ignore" or "killTask"'))
    }
    const limitOption = options?.limit ?? list.length
    if (!(Number.isInteger(limitOption) && limitOption > 0) && limitOption !== Infinity) {
      return Effect.fail(invalid("limit", limitOption, "an integer > 0"))
    }
    const limit = Math.min(limitOption, list.length)
    const results: Array<Exit.Exit<A, E> | undefined> = list.map((t) => t.fiber.pollUnsafe())
    let finished = results.filter((r) => r !== undefined).length
    const collect = () => results.map(Option.fromUndefinedOr)
    if (finished >= limit) return Effect.succeed(collect())
    return withMillis("timeout", options?.timeout, (ms) =>
      Effect.flatMap(
        Effect.callback<boolean>((resume) => {
          // tasks of any supervisor: the first one's timer serves the batch
          const timers = impl(list[0]!).supervisor.timers
          const removes: Array<() => void> = []
          let timer: Entry | undefined
          let over = false
          const stop = () => {
            over = true
            for (const r of removes) r()
            if (timer !== undefined) timers.cancel(timer)
          }
          const end = (timedOut: boolean) => {
            if (over) return
            stop()
            resume(Effect.succeed(timedOut))
          }
          // a task that ended since the snapshot is reported at once by addObserver
          list.forEach((task, i) => {
            if (results[i] !== undefined || over) return
            removes.push(
              task.fiber.addObserver((exit) => {
                results[i] = exit
                if (++finished >= limit) end(false)
              })
            )
          })
          if (ms !== Infinity && !over) timer = timers.add(ms, () => end(true))
          return Effect.sync(stop)
        }),
        (timedOut) => {
          if (!timedOut || onTimeout === "nothing") return Effect.succeed(collect())
          const pending = list.flatMap((task, i) => (results[i] === undefined ? [[task, i] as const] : []))
          if (onTimeout === "ignore") {
            for (const [task] of pending) impl(task).disown()
            return Effect.succeed(collect())
          }
          return Effect.map(
            Effect.forEach(pending, ([task, i]) =>
              Effect.map(shutdown(task, "brutalKill"), (o) => {
                if (Option.isSome(o)) results[i] = o.value as Exit.Exit<A, E>
              })
            ),
            collect
          )
        }
      )
    )
  })

const invalid = (field: string, value: unknown, expected: string) =>
  new InvalidOptions({ module: "Task", field, value, expected })

const interruptedOnly = (exit: Exit.Exit<unknown, unknown>): boolean =>
  exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause)

/**
 * Stops a task and reports how it ended: `None` if it stopped because of
 * this call (or was abandoned with `"brutalKill"`), `Some(exit)` if it had
 * already finished or ended some other way meanwhile (a result that races
 * the shutdown is kept), `Some(Exit.fail(TaskKilled))` if it did not stop
 * within `shutdown`.
 *
 * **Details**
 *
 * `shutdown` is a duration (default 5 s: interrupt, then wait that long for
 * the task's finalizers), `"brutalKill"` (interrupt, do not wait) or
 * `"infinity"`. JavaScript cannot kill a fiber inside an uninterruptible
 * region: a task that overruns is abandoned, and stays counted by its
 * supervisor until it really ends. The task is released from its owner first.
 *
 * **Example** (Stopping a task that never ends)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
 *   return yield* Task.shutdown(task)
 * })
 * // => Option.none()
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const shutdown: {
  (
    shutdown?: Duration.Input | "brutalKill" | "infinity"
  ): <A, E>(self: Task<A, E>) => Effect.Effect<Option.Option<Exit.Exit<A, E | TaskKilled>>, InvalidOptions>
  <A, E>(
    self: Task<A, E>,
    shutdown?: Duration.Input | "brutalKill" | "infinity"
  ): Effect.Effect<Option.Option<Exit.Exit<A, E | TaskKilled>>, InvalidOptions>
} = dual(
  (args) => isTask(args[0]),
  <A, E>(
    self: Task<A, E>,
    shutdownOption?: Duration.Input | "brutalKill" | "infinity"
  ): Effect.Effect<Option.Option<Exit.Exit<A, E | TaskKilled>>, InvalidOptions> =>
    Effect.suspend(() => {
      const policy = decodeTaskShutdown("Task", shutdownOption, true)
      if (policy instanceof InvalidOptions) return Effect.fail(policy)
      const task = impl(self)
      task.disown()
      const done = task.fiber.pollUnsafe()
      if (done !== undefined) return Effect.succeed(Option.some(done))
      return Effect.map(child.stopFiber(task.fiber, policy), (outcome) => {
        const exit = task.fiber.pollUnsafe()
        if (exit !== undefined) return interruptedOnly(exit) ? Option.none() : Option.some(exit)
        if (outcome === "abandoned") {
          const millis = policy._tag === "Timeout" ? policy.millis : 0
          return Option.some(Exit.fail(new TaskKilled({ pid: task.pid, shutdown: millis })))
        }
        return Option.none()
      })
    })
)

/**
 * Lets a task run on without its owner: returns `Some(exit)` if it already
 * finished, `None` otherwise. From now on the caller failing does not stop it
 * (Elixir: unlinks it); it stays a child of its supervisor.
 *
 * **Example** (Leaving a slow task to finish by itself)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Task, TaskSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* TaskSupervisor.make()
 *   const task = yield* TaskSupervisor.async(sup, Effect.sleep("1 second"))
 *   return yield* Task.ignore(task)
 * })
 * // => Option.none()
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const ignore = <A, E>(self: Task<A, E>): Effect.Effect<Option.Option<Exit.Exit<A, E>>> =>
  Effect.sync(() => {
    const task = impl(self)
    task.disown()
    return Option.fromUndefinedOr(task.fiber.pollUnsafe())
  })
