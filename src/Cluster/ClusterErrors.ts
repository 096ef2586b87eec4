/**
 * The typed errors of `effect-otp/cluster`.
 *
 * They cross processes (a runner answers a client with them), so each is a
 * `Schema.TaggedError`: encoded on the runner, decoded on the caller. Their
 * tags are the ones the single-process modules use (`ChildNotFound`,
 * `AlreadyStarted`, `MaxChildren`, `RestartIntensityExceeded`), so
 * `Effect.catchTag("ChildNotFound", ...)` reads the same in both.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The child is not started in this cluster supervisor: it never was, it was
 * terminated, or it was `temporary` and its incarnation ended. A message to it
 * fails with this error instead of creating it (effect/cluster alone would
 * activate any id it is sent to).
 *
 * **Example** (Catching it)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ClusterErrors } from "effect-otp/cluster"
 *
 * const program = Effect.fail(new ClusterErrors.ChildNotFound({ supervisor: "app/Sessions", id: "u1" })).pipe(
 *   Effect.catchTag("ChildNotFound", (e) => Effect.succeed(e.message))
 * )
 * // => "child not found: app/Sessions/u1"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ChildNotFound extends Schema.TaggedError<ChildNotFound>()("ChildNotFound", {
  supervisor: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `child not found: ${this.supervisor}/${this.id}`
  }
}

/**
 * `startChild` for an id that is already started (running, placing or
 * `failed`): OTP's `{:error, {:already_started, pid}}`. Carries where it runs.
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyStarted extends Schema.TaggedError<AlreadyStarted>()("AlreadyStarted", {
  supervisor: Schema.String,
  id: Schema.String,
  status: Schema.String,
  runner: Schema.NullOr(Schema.String)
}) {
  override get message(): string {
    return `child already started: ${this.supervisor}/${this.id} (${this.status}${this.runner === null ? "" : ` on ${this.runner}`})`
  }
}

/**
 * `startChild` when the supervisor already has `maxChildren` children across
 * the whole cluster (counted in the same transaction as the insert).
 *
 * @category errors
 * @since 0.1.0
 */
export class MaxChildren extends Schema.TaggedError<MaxChildren>()("MaxChildren", {
  supervisor: Schema.String,
  maxChildren: Schema.Number
}) {
  override get message(): string {
    return `cluster supervisor ${this.supervisor} already has its maximum of ${this.maxChildren} children`
  }
}

/**
 * The child crashed more than `maxRestarts` times within `maxSeconds`. It is
 * now `failed`: it stays stopped (on no runner: it does not bounce from runner
 * to runner) and every call to it fails with this error until
 * `restartChild` or `terminateChild`.
 *
 * @category errors
 * @since 0.1.0
 */
export class RestartIntensityExceeded extends Schema.TaggedError<RestartIntensityExceeded>()(
  "RestartIntensityExceeded",
  {
    supervisor: Schema.String,
    id: Schema.String,
    maxRestarts: Schema.Number,
    maxSeconds: Schema.Number
  }
) {
  override get message(): string {
    return `child ${this.supervisor}/${this.id} crashed more than ${this.maxRestarts} times within ${this.maxSeconds}s: it is failed`
  }
}

/**
 * The call's handler crashed (a defect, not a typed error of the protocol):
 * the child was restarted (or, `temporary`, removed) and the call is not
 * retried. The cluster form of the local `ServerDown`.
 *
 * @category errors
 * @since 0.1.0
 */
export class ChildCrashed extends Schema.TaggedError<ChildCrashed>()("ChildCrashed", {
  supervisor: Schema.String,
  id: Schema.String,
  /** The defect, rendered. */
  reason: Schema.String
}) {
  override get message(): string {
    return `child ${this.supervisor}/${this.id} crashed while handling the call: ${this.reason}`
  }
}

/**
 * A fenced write was refused: a newer incarnation of the child exists (it was
 * restarted or moved to another runner), so this one must not write.
 *
 * @category errors
 * @since 0.1.0
 */
export class Fenced extends Schema.TaggedError<Fenced>()("Fenced", {
  supervisor: Schema.String,
  id: Schema.String,
  /** This incarnation's token. */
  token: Schema.Number,
  /** The current incarnation, or -1 when the child is gone. */
  current: Schema.Number
}) {
  override get message(): string {
    return `fenced: ${this.supervisor}/${this.id} incarnation ${this.token} is stale (current ${this.current})`
  }
}

/**
 * `ClusterRegistry.register` for a key held by another live owner.
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyRegistered extends Schema.TaggedError<AlreadyRegistered>()("AlreadyRegistered", {
  registry: Schema.String,
  key: Schema.String,
  owner: Schema.String
}) {
  override get message(): string {
    return `key ${this.key} is already registered in ${this.registry} by ${this.owner}`
  }
}

/**
 * The errors a child adds to every call of its protocol, as one Schema.
 *
 * @category schemas
 * @since 0.1.0
 */
export const ChildCallError = Schema.Union([ChildNotFound, RestartIntensityExceeded, ChildCrashed])

/**
 * The type of {@link ChildCallError}.
 *
 * @category models
 * @since 0.1.0
 */
export type ChildCallError = ChildNotFound | RestartIntensityExceeded | ChildCrashed
