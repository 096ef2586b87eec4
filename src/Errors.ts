/**
 * The typed errors shared by every effect-otp module.
 *
 * Each error is a `Data.TaggedError`, so callers handle it with
 * `Effect.catchTag("MaxChildren", ...)`. Every error carries the data that
 * explains it (the offending field and value, the running child, the limit),
 * never only a message. Their names are OTP's atoms in PascalCase, so an
 * Elixir user finds `{:error, :max_children}` as `MaxChildren`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import { showValue } from "./internal/show.ts"

/**
 * An option or child spec field had a value it cannot take. Raised at
 * construction, before anything runs: nothing is clamped and nothing is left
 * behind.
 *
 * **Example** (Rejecting a negative limit)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DynamicSupervisor } from "effect-otp"
 *
 * const program = DynamicSupervisor.make({ maxChildren: -1 }).pipe(
 *   Effect.catchTag("InvalidOptions", (e) => Effect.succeed(e.message))
 * )
 * // => "DynamicSupervisor: invalid maxChildren: -1 (must be an integer >= 0 or Infinity)"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidOptions extends Data.TaggedError("InvalidOptions")<{
  /** The module or constructor that rejected the value, e.g. `"DynamicSupervisor"`. */
  readonly module: string
  /** The option's name, e.g. `"maxChildren"`. */
  readonly field: string
  /** The rejected value, as given. */
  readonly value: unknown
  /** What the value must be. */
  readonly expected: string
}> {
  override get message(): string {
    return `${this.module}: invalid ${this.field}: ${showValue(this.value)} (must be ${this.expected})`
  }
}

/**
 * `startChild` was called on a supervisor that already has `maxChildren`
 * children (children waiting to be restarted count, as in Elixir).
 *
 * @category errors
 * @since 0.1.0
 */
export class MaxChildren extends Data.TaggedError("MaxChildren")<{
  readonly maxChildren: number
}> {
  override get message(): string {
    return `the supervisor already has its maximum of ${this.maxChildren} children`
  }
}

/**
 * The child (or incarnation of a child) named in an operation is not
 * supervised here: it never was, it was terminated, or it exited and was not
 * restarted, or it was restarted as a new incarnation.
 *
 * @category errors
 * @since 0.1.0
 */
export class ChildNotFound extends Data.TaggedError("ChildNotFound")<{
  /** The child identity that was asked for (a pid for dynamic children, an id for static ones). */
  readonly child: unknown
}> {
  override get message(): string {
    return `child not found: ${showValue(this.child)}`
  }
}

/**
 * A child exited more than `maxRestarts` times within `maxSeconds` (or its
 * restart backoff schedule ended), so the supervisor stopped all its children
 * and gave up. A supervisor that is itself a child fails with this error, so
 * its own supervisor applies its restart strategy (escalation).
 *
 * @category errors
 * @since 0.1.0
 */
export class RestartIntensityExceeded extends Data.TaggedError("RestartIntensityExceeded")<{
  readonly maxRestarts: number
  readonly maxSeconds: number
  /** The child whose exit crossed the limit. */
  readonly child: unknown
  /** `"intensity"` when the window overflowed, `"backoff"` when the restart backoff schedule ended. */
  readonly reason: "intensity" | "backoff"
}> {
  override get message(): string {
    return this.reason === "backoff"
      ? `restart backoff schedule ended for child ${showValue(this.child)}: the supervisor gave up`
      : `more than ${this.maxRestarts} restarts within ${this.maxSeconds}s (last: child ${showValue(this.child)}): the supervisor gave up`
  }
}

/**
 * The supervisor has stopped (its Scope closed, or it gave up after too many
 * restarts) and takes no more requests.
 *
 * @category errors
 * @since 0.1.0
 */
export class SupervisorStopped extends Data.TaggedError("SupervisorStopped")<{
  /** Why it stopped: `"shutdown"` (its Scope closed) or the error it gave up with. */
  readonly reason: "shutdown" | RestartIntensityExceeded
}> {
  override get message(): string {
    return this.reason === "shutdown"
      ? "the supervisor has shut down"
      : `the supervisor gave up: ${this.reason.message}`
  }
}

/**
 * A child with the same name or id is already running; carries it.
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyStarted<A = unknown> extends Data.TaggedError("AlreadyStarted")<{
  /** The key or id that is taken. */
  readonly key: unknown
  /** The running child (its handle or record, depending on the module). */
  readonly child: A
}> {
  override get message(): string {
    return `a child is already started under ${showValue(this.key)}`
  }
}

/**
 * A static `Supervisor` already has a child spec under this id, but the child
 * is not running (it was terminated, exited normally as a transient child, or
 * is waiting to be restarted). `restartChild` or `deleteChild` it first.
 * Elixir's `{:error, :already_present}`.
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyPresent extends Data.TaggedError("AlreadyPresent")<{
  /** The child id that is taken. */
  readonly id: string
}> {
  override get message(): string {
    return `a child spec is already present under ${showValue(this.id)}`
  }
}

/**
 * The operation needs the child to be stopped (`restartChild`,
 * `deleteChild`), but it is running. Elixir's `{:error, :running}`.
 *
 * @category errors
 * @since 0.1.0
 */
export class ChildRunning extends Data.TaggedError("ChildRunning")<{
  readonly id: string
}> {
  override get message(): string {
    return `child ${showValue(this.id)} is running`
  }
}

/**
 * The operation needs the child to be stopped, but the supervisor is
 * retrying a failed restart of it. `terminateChild` cancels the retries.
 * Elixir's `{:error, :restarting}`.
 *
 * @category errors
 * @since 0.1.0
 */
export class ChildRestarting extends Data.TaggedError("ChildRestarting")<{
  readonly id: string
}> {
  override get message(): string {
    return `child ${showValue(this.id)} is restarting`
  }
}

/**
 * Starting a child whose start error type is not known statically (a
 * `restartChild` of a stored spec) failed; `cause` is the start's own cause.
 *
 * @category errors
 * @since 0.1.0
 */
export class StartFailed extends Data.TaggedError("StartFailed")<{
  readonly id: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `child ${showValue(this.id)} failed to start`
  }
}
