/**
 * The errors of the Task modules (re-exported by `Task.ts`).
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import { showValue } from "../../internal/show.ts"

/**
 * A task did not finish in time: `Task.await` gave up waiting for it
 * (the task itself goes on), or an `asyncStream` task ran longer than the
 * stream's `timeout` from its start (that task was stopped).
 *
 * @category errors
 * @since 0.1.0
 */
export class TaskTimeout extends Data.TaggedError("TaskTimeout")<{
  /** The task's pid. */
  readonly pid: number
  /** The timeout that expired, in milliseconds. */
  readonly timeout: number
}> {
  override get message(): string {
    return `task ${this.pid} did not finish within ${this.timeout} ms`
  }
}

/**
 * `Task.shutdown` with a timeout: the task did not stop within it (a
 * finalizer or an uninterruptible region ran too long). JavaScript cannot
 * kill a fiber, so the task was abandoned: nobody waits for it any more, but
 * its finalizers may still be running. Elixir's `{:exit, :killed}`.
 *
 * @category errors
 * @since 0.1.0
 */
export class TaskKilled extends Data.TaggedError("TaskKilled")<{
  readonly pid: number
  /** The shutdown timeout that expired, in milliseconds. */
  readonly shutdown: number
}> {
  override get message(): string {
    return `task ${this.pid} did not stop within ${this.shutdown} ms: abandoned (its finalizers may still be running)`
  }
}

/**
 * A failed `asyncStream` item with `zipInputOnExit: true`: the input the task
 * was started with, beside the task's own cause (Elixir's
 * `{:exit, {element, reason}}`).
 *
 * @category errors
 * @since 0.1.0
 */
export class TaskExited<out A, out E> extends Data.TaggedError("TaskExited")<{
  readonly input: A
  readonly cause: Cause.Cause<E>
}> {
  override get message(): string {
    return `the task for input ${showValue(this.input)} exited`
  }
}
