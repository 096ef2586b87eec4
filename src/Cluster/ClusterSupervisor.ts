/**
 * A DynamicSupervisor whose children are effect/cluster entities: OTP's
 * supervision semantics across runners, on top of the engine.
 *
 * effect/cluster places entities on runners by shard locks in one SQL
 * database, keeps one live instance per id and fails over. Its entities are
 * virtual (any message activates one) and a handler that always dies is
 * retried forever. A ClusterSupervisor adds what OTP has:
 *
 * - `startChild` (typed `AlreadyStarted`), `terminateChild` and
 *   `restartChild` (typed `ChildNotFound`). A message to an id that was never
 *   started, or was terminated, fails `ChildNotFound` instead of creating it.
 * - Restart intensity per child id, counted in the database: after more than
 *   `maxRestarts` crashes within `maxSeconds` the child is `failed` (on no
 *   runner; it does not bounce from runner to runner) and its callers get
 *   `RestartIntensityExceeded`.
 * - `permanent` and `transient` children are kept alive: after their runner
 *   dies they come back on another one without any traffic. `temporary`
 *   children end with their incarnation.
 * - `maxChildren` across the whole cluster, `whichChildren` /
 *   `countChildren` across runners, an `events` stream.
 * - A fencing token (`fenced`) for a child's own writes.
 *
 * The bookkeeping is a table in the cluster's own database keyed by the
 * entity address; which runner is alive is read from the engine's runner
 * table. There is no second source of truth: no gossip, no membership, no
 * transport or failure detector of our own.
 *
 * The child is a Server definition: a Schema'd protocol of `Rpc`s and an
 * `init` that runs in the child's Scope and returns the handlers. The same
 * definition runs locally; here its handlers answer effect/cluster messages.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ClusterSchema from "effect/cluster/ClusterSchema"
import type {
  AlreadyProcessingMessage,
  EntityNotAssignedToRunner,
  MailboxFull,
  PersistenceError
} from "effect/cluster/ClusterError"
import * as Entity from "effect/cluster/Entity"
import type * as Sharding from "effect/cluster/Sharding"
import * as Rpc from "effect/rpc/Rpc"
import type * as RpcClient from "effect/rpc/RpcClient"
import * as RpcGroup from "effect/rpc/RpcGroup"
import * as Deferred from "effect/Deferred"
import * as Fiber from "effect/Fiber"
import * as Semaphore from "effect/Semaphore"
import { InvalidOptions } from "../Errors.ts"
import * as Server from "../Server/Server.ts"
import {
  AlreadyStarted,
  ChildCallError,
  ChildCrashed,
  ChildNotFound,
  Fenced,
  MaxChildren,
  RestartIntensityExceeded
} from "./ClusterErrors.ts"
import { ClusterStore, type ChildRow, defaultMaxEvents, processSession, type Store } from "./internal/store.ts"

const TypeId = "~effect-otp/ClusterSupervisor"

/**
 * The child an effect runs in, as its init and handlers see it.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildContext {
  readonly supervisor: string
  readonly id: string
  /** This incarnation's fencing token (bumped on every activation and restart). */
  readonly incarnation: number
  /** The runner (`host:port`) it runs on. */
  readonly runner: string
}

/**
 * The child an effect runs in (its init and handlers have it): supervisor,
 * id, the incarnation (the fencing token) and the runner.
 *
 * @category services
 * @since 0.1.0
 */
export class CurrentChild extends Context.Service<CurrentChild, ChildContext>()("effect-otp/cluster/CurrentChild") {}

/**
 * How a child is restarted: `permanent` (always; kept alive, so it is
 * re-homed after its runner dies without traffic), `transient` (after a crash
 * or a runner's death, not after it stopped normally), `temporary` (never:
 * a crash, a move to another runner or a runner's death ends it and removes
 * it).
 *
 * @category models
 * @since 0.1.0
 */
export type RestartType = "permanent" | "transient" | "temporary"

/**
 * Options of {@link make}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<Rpcs extends Rpc.Any, Args, E, R> {
  /** The child: a Server definition (protocol + init). */
  readonly server: Server.Definition<any, Rpcs, Args, E, R>
  /** Default `"permanent"`. */
  readonly restart?: RestartType | undefined
  /** Per child id, default 3. */
  readonly maxRestarts?: number | undefined
  /** Default 5. */
  readonly maxSeconds?: number | undefined
  /** Across the cluster, default `Infinity`. */
  readonly maxChildren?: number | undefined
  /** How long an entity no child runs in stays resident (default 1 minute). Started children never idle out. */
  readonly maxIdleTime?: Duration.Input | undefined
  /**
   * The event log's retention: about the last `maxEvents` events of this
   * supervisor are kept (default 10 000; an integer >= 1, or `Infinity` to
   * keep all). Older rows are pruned every `ceil(maxEvents / 10)` events
   * appended by one process, so the table holds at most `maxEvents` plus that
   * many per runner; an `events` reader that falls further behind skips them.
   */
  readonly maxEvents?: number | undefined
}

/**
 * A cluster supervisor: declared once, shared by runners (which run its
 * children, see {@link layer}) and clients (any process with `Sharding`).
 *
 * @category models
 * @since 0.1.0
 */
export interface ClusterSupervisor<Rpcs extends Rpc.Any, Args, E, R> extends Pipeable {
  readonly [TypeId]: typeof TypeId
  readonly name: string
  readonly restart: RestartType
  readonly maxRestarts: number
  readonly maxSeconds: number
  readonly maxChildren: number
  readonly maxIdleTime: Duration.Input
  /** The event log's retention (see {@link Options}). */
  readonly maxEvents: number
  readonly server: Server.Definition<any, Rpcs, Args, E, R>
  /** The effect/cluster entity the children run as (the protocol plus supervision errors and internal requests). */
  readonly entity: Entity.Entity<string, Rpc.Any>
  /** Set when the options were invalid: every operation fails with it. */
  readonly invalid: InvalidOptions | undefined
}

/**
 * The protocol's `Rpc` with the supervision errors added to its errors.
 *
 * @category models
 * @since 0.1.0
 */
export type WithChildErrors<R> =
  R extends Rpc.Rpc<infer Tag, infer Payload, infer Success, infer Error, infer Middleware, infer Requires>
    ? Rpc.Rpc<Tag, Payload, Success, Schema.Union<readonly [Error, typeof ChildCallError]>, Middleware, Requires>
    : never

/**
 * Errors of the transport a call can meet besides the protocol's own.
 *
 * @category models
 * @since 0.1.0
 */
export type ClientError = MailboxFull | AlreadyProcessingMessage | PersistenceError | EntityNotAssignedToRunner

/**
 * A client of one child: one method per request, as effect/cluster's entity
 * client (`client("u1").Say({ text })`), with `ChildNotFound`,
 * `RestartIntensityExceeded` and `ChildCrashed` among the errors.
 *
 * @category models
 * @since 0.1.0
 */
export type ChildClient<Rpcs extends Rpc.Any> = RpcClient.RpcClient<WithChildErrors<Rpcs>, ClientError>

/**
 * A child as seen across the cluster.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildInfo {
  readonly id: string
  /**
   * `running`: active on a live runner. `placing`: started but on no live
   * runner right now (its runner died and it is being re-homed, or it is
   * `temporary` and its runner died). `failed`: gave up after too many
   * restarts.
   */
  readonly status: "running" | "placing" | "failed"
  readonly runner: Option.Option<string>
  /** Bumped on every activation and restart: the fencing token. */
  readonly incarnation: number
  /** Restarts since it was started (moves are not restarts). */
  readonly restarts: number
  /** Wall-clock ms of `startChild`. */
  readonly startedAt: number
}

/**
 * Counts across the cluster, as `DynamicSupervisor.countChildren`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Counts {
  readonly specs: number
  readonly active: number
  readonly placing: number
  readonly failed: number
}

/**
 * What happened to a child, from any runner.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildEvent {
  readonly _tag: "Started" | "Restarted" | "Moved" | "Stopped" | "Failed"
  readonly id: string
  readonly runner: Option.Option<string>
  readonly incarnation: number
  /** For `Stopped`: why (`terminated`, `crashed`, `moved`, `normal`); for `Restarted`/`Failed`: the defect. */
  readonly detail: Option.Option<string>
  /** Wall-clock ms. */
  readonly at: number
}

const StartRpc = Rpc.make("effect-otp/Start", {
  success: Schema.Struct({ runner: Schema.String, incarnation: Schema.Number }),
  error: ChildCallError
}).annotate(ClusterSchema.Persisted, true)

const StopRpc = Rpc.make("effect-otp/Stop")

const RestartRpc = Rpc.make("effect-otp/Restart", {
  success: Schema.Struct({ runner: Schema.String, incarnation: Schema.Number }),
  error: ChildCallError
})

const validate = (
  name: string,
  options: { maxRestarts: number; maxSeconds: number; maxChildren: number; restart: string; maxEvents: number }
): InvalidOptions | undefined => {
  const bad = (field: string, value: unknown, expected: string) =>
    new InvalidOptions({ module: "ClusterSupervisor", field, value, expected })
  if (name.length === 0) return bad("name", name, "a non-empty string")
  if (!Number.isInteger(options.maxRestarts) || options.maxRestarts < 0) {
    return bad("maxRestarts", options.maxRestarts, "an integer >= 0")
  }
  if (!(options.maxSeconds > 0) || !Number.isFinite(options.maxSeconds)) {
    return bad("maxSeconds", options.maxSeconds, "a finite number > 0")
  }
  if (!(options.maxChildren === Infinity || (Number.isInteger(options.maxChildren) && options.maxChildren >= 0))) {
    return bad("maxChildren", options.maxChildren, "an integer >= 0 or Infinity")
  }
  if (!(options.maxEvents === Infinity || (Number.isInteger(options.maxEvents) && options.maxEvents >= 1))) {
    return bad("maxEvents", options.maxEvents, "an integer >= 1 or Infinity")
  }
  if (options.restart !== "permanent" && options.restart !== "transient" && options.restart !== "temporary") {
    return bad("restart", options.restart, `"permanent", "transient" or "temporary"`)
  }
  return undefined
}

/**
 * Declares a cluster supervisor. The name is the entity type, so it must be
 * the same in every process. Invalid options are reported by every operation
 * and by {@link layer} as `InvalidOptions`, naming the field.
 *
 * **Example** (Declaring sessions)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Say = Rpc.make("Say", { payload: { text: Schema.String }, success: Schema.String })
 *
 * const Session = Server.make("UserSession", [Say], {
 *   init: (user: string) =>
 *     Effect.sync(() => {
 *       let seen = 0
 *       return { Say: ({ text }) => Effect.sync(() => `${user} #${++seen}: ${text}`) }
 *     })
 * })
 *
 * const Sessions = ClusterSupervisor.make("app/Sessions", {
 *   server: Session,
 *   restart: "permanent",
 *   maxRestarts: 3,
 *   maxSeconds: 5
 * })
 * Sessions.name // => "app/Sessions"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <Rpcs extends Rpc.Any, Args, E, R>(
  name: string,
  options: Options<Rpcs, Args, E, R>
): ClusterSupervisor<Rpcs, Args, E, R> => {
  const restart = options.restart ?? "permanent"
  const maxRestarts = options.maxRestarts ?? 3
  const maxSeconds = options.maxSeconds ?? 5
  const maxChildren = options.maxChildren ?? Infinity
  const maxEvents = options.maxEvents ?? defaultMaxEvents
  const rpcs: Array<Rpc.Any> = []
  for (const rpc of options.server.protocol.requests.values()) {
    const props = rpc as unknown as Rpc.AnyWithProps & { setError: (schema: Schema.Top) => Rpc.Any }
    rpcs.push(props.setError(Schema.Union([props.errorSchema, ChildCallError])))
  }
  const entity = Entity.fromRpcGroup(name, RpcGroup.make(...rpcs, StartRpc, StopRpc, RestartRpc) as any)
  return {
    [TypeId]: TypeId,
    pipe() {
      return pipeArguments(this, arguments)
    },
    name,
    restart,
    maxRestarts,
    maxSeconds,
    maxChildren,
    maxIdleTime: options.maxIdleTime ?? Duration.minutes(1),
    maxEvents,
    server: options.server,
    entity: entity as Entity.Entity<string, Rpc.Any>,
    invalid: options.server.invalid ?? validate(name, { maxRestarts, maxSeconds, maxChildren, restart, maxEvents })
  }
}

const failInvalid = (self: ClusterSupervisor<any, any, any, any>) =>
  self.invalid === undefined ? Effect.void : Effect.fail(self.invalid)

const rawClient = (self: ClusterSupervisor<any, any, any, any>) =>
  self.entity.client as unknown as Effect.Effect<
    (id: string) => Record<string, (payload?: unknown, options?: unknown) => Effect.Effect<any, any>>,
    never,
    Sharding.Sharding
  >

// Each process registers its session once per runner address and store.
const registered = new WeakMap<Store, Set<string>>()
const registerSession = (store: Store, address: string): Effect.Effect<void, PersistenceError> =>
  Effect.suspend(() => {
    let done = registered.get(store)
    if (done === undefined) registered.set(store, (done = new Set()))
    if (done.has(address)) return Effect.void
    return Effect.tap(
      store.registerSession(address, processSession),
      Effect.sync(() => {
        done.add(address)
      })
    )
  })

const dieOnPersistence = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, PersistenceError>, R> =>
  Effect.catchIf(
    effect,
    (e): e is Extract<E, PersistenceError> =>
      typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "PersistenceError",
    (e) => Effect.die(e)
  ) as any

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const squashed = Cause.squash(cause)
  return squashed instanceof Error ? squashed.message : String(squashed)
}

interface Running {
  readonly _tag: "Running"
  readonly scope: Scope.Closeable
  readonly handlers: Record<string, (payload: unknown, self: unknown) => Effect.Effect<unknown, unknown>>
  readonly child: ChildContext
  readonly context: Context.Context<never>
  /**
   * Adds this incarnation's own services to a message fiber's context (which
   * already holds the runner layer's services `context` was built from): a
   * few overlays, where merging `context` in would copy both maps per message.
   */
  readonly provide: (context: Context.Context<never>) => Context.Context<never>
  readonly runtime: Server.Runtime
  /** Failed when the incarnation ends: callers waiting on a later reply (a Deferred) fail with it at once. */
  readonly ended: Deferred.Deferred<never, ChildCallError>
  /** Set by `stop(reason)`: acted on once the current handler has finished. */
  stopping: { readonly reason: unknown } | undefined
}

type State = { readonly _tag: "Unloaded" } | Running | { readonly _tag: "Failed" }

class Later {
  readonly deferred: Deferred.Deferred<unknown, unknown>
  readonly ended: Deferred.Deferred<never, ChildCallError>
  constructor(deferred: Deferred.Deferred<unknown, unknown>, ended: Deferred.Deferred<never, ChildCallError>) {
    this.deferred = deferred
    this.ended = ended
  }
}

const isNormalStop = (reason: unknown) => reason === undefined || reason === "normal" || reason === "shutdown"

/**
 * Runs the supervisor's children on this runner: registers the entity with
 * `Sharding`. `args` turns a child id into the Server's init argument
 * (default: the id itself). Needs the bookkeeping store (see `ClusterRunner`)
 * and whatever the Server's init and handlers need.
 *
 * **Details**
 *
 * - The Server definition runs as it does locally: `init(args)` in the
 *   incarnation's own Scope with `Server.CurrentServer` provided (`cast`,
 *   `sendAfter`, `stop`), its handlers one message at a time in arrival order;
 *   a handler may reply later with a `Deferred` while the next message is
 *   handled. `CurrentChild` (the fencing token) is provided too.
 * - A handler's typed failure is its reply. A defect is a crash: the child's
 *   Scope closes (its finalizers run), the crash is counted in the database,
 *   the child is started again at once and the caller gets `ChildCrashed`.
 *   Past the intensity the child is `failed` and callers get
 *   `RestartIntensityExceeded`. A failing `init` counts as a crash too.
 * - `stop("normal")` (or `"shutdown"`) ends a `transient` or `temporary`
 *   child (it is removed) and restarts a `permanent` one; any other reason is
 *   a crash.
 * - When its runner shuts down gracefully the child's Scope closes, so
 *   finalizers added in `init` run (the place for a state handoff's `save`);
 *   `init` on the next runner is the place for `load`. After `kill -9`
 *   nothing runs: the state is what the child wrote before.
 *
 * **Example** (A runner's layer)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * const PingersLive = ClusterSupervisor.layer(Pingers)
 * typeof PingersLive // => "object"
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <Rpcs extends Rpc.Any, Args, E, R>(
  self: ClusterSupervisor<Rpcs, Args, E, R>,
  ...options: string extends Args
    ? [options?: { readonly args?: ((id: string) => Args) | undefined }]
    : [options: { readonly args: (id: string) => Args }]
): Layer.Layer<never, InvalidOptions, Sharding.Sharding | ClusterStore | Exclude<R, Scope.Scope | CurrentChild>> => {
  const toArgs = options[0]?.args ?? ((id: string) => id as unknown as Args)
  const def = self.server
  return Layer.unwrap(
    Effect.gen(function* () {
      yield* failInvalid(self)
      const outer = yield* Effect.context<Sharding.Sharding | ClusterStore | Exclude<R, Scope.Scope | CurrentChild>>()
      const store = Context.get(outer, ClusterStore)
      const build = Effect.gen(function* () {
        const address = yield* Entity.CurrentAddress
        const runnerAddress = yield* Entity.CurrentRunnerAddress
        const buildContext = yield* Effect.context<never>()
        const runner = `${runnerAddress.host}:${runnerAddress.port}`
        const id: string = address.entityId
        const sup = self.name
        // one message at a time, in arrival order (a GenServer's mailbox)
        const mailbox = Semaphore.makeUnsafe(1)
        const serially = mailbox.withPermits(1)
        let state: State = { _tag: "Unloaded" }

        const keepAlive = (enabled: boolean) =>
          Entity.keepAlive(enabled).pipe(Effect.provideContext(buildContext as Context.Context<any>))
        const event = (kind: ChildEvent["_tag"], incarnation: number, detail: string | null, on: string | null) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) =>
            store.appendEvent({ scope: sup, kind, id, runner: on, incarnation, detail, at }, self.maxEvents)
          )
        const notFound = new ChildNotFound({ supervisor: sup, id })
        const intensity = new RestartIntensityExceeded({
          supervisor: sup,
          id,
          maxRestarts: self.maxRestarts,
          maxSeconds: self.maxSeconds
        })

        // Server.CurrentServer for one incarnation: cast and sendAfter go
        // through the mailbox, bound to this incarnation (dropped once it ended).
        const makeRuntime = (scope: Scope.Scope, holder: { current: Running | undefined }): Server.Runtime => {
          const castNow = (tag: string, payload: unknown) =>
            serially(
              Effect.suspend(() => {
                const running = holder.current
                if (running === undefined || state !== running) return Effect.void
                return Effect.ignore(handle(running, tag, payload))
              })
            )
          return {
            name: def.name,
            id,
            cast: (tag, payload) => Effect.asVoid(Effect.forkIn(castNow(tag, payload), scope)),
            sendAfter: (delay, tag, payload) =>
              Effect.gen(function* () {
                let fired = false
                const fiber = yield* Effect.forkIn(
                  Effect.sleep(delay).pipe(
                    Effect.andThen(
                      Effect.sync(() => {
                        fired = true
                      })
                    ),
                    Effect.andThen(castNow(tag, payload))
                  ),
                  scope
                )
                return {
                  cancel: Effect.suspend(() =>
                    fired ? Effect.succeed(false) : Effect.as(Fiber.interrupt(fiber), true)
                  )
                }
              }),
            stop: (reason) =>
              Effect.sync(() => {
                const running = holder.current
                if (running !== undefined && running.stopping === undefined) running.stopping = { reason }
              })
          }
        }

        // Runs init for this incarnation; on failure counts a restart and
        // tries again until the intensity is exceeded.
        const startInstance = (row: ChildRow): Effect.Effect<State, PersistenceError> =>
          Effect.gen(function* () {
            let current = row
            while (true) {
              const child: ChildContext = { supervisor: sup, id, incarnation: current.incarnation, runner }
              const scope = yield* Scope.make()
              const holder: { current: Running | undefined } = { current: undefined }
              const runtime = makeRuntime(scope, holder)
              const annotations = { supervisor: sup, child: id, incarnation: current.incarnation }
              const provide = (base: Context.Context<never>) =>
                Context.add(
                  Context.add(
                    Context.add(Context.add(base, CurrentChild, child), Server.CurrentServer, runtime),
                    Scope.Scope,
                    scope
                  ),
                  References.CurrentLogAnnotations,
                  annotations
                ) as Context.Context<never>
              const context = provide(outer as Context.Context<never>)
              const exit = yield* def
                .init(toArgs(id))
                .pipe(
                  Effect.provideContext(context as Context.Context<any>),
                  Effect.annotateLogs({ supervisor: sup, child: id, incarnation: current.incarnation }),
                  Effect.exit
                )
              if (Exit.isSuccess(exit)) {
                const running: Running = {
                  _tag: "Running",
                  scope,
                  handlers: exit.value as any,
                  child,
                  context,
                  provide,
                  runtime,
                  ended: Deferred.makeUnsafe<never, ChildCallError>(),
                  stopping: undefined
                }
                holder.current = running
                return running
              }
              yield* Scope.close(scope, exit)
              const next = yield* ended(describeCause(exit.cause), "crash")
              if (next._tag !== "Restart") return next.state
              current = next.row
            }
          })

        // An incarnation ended: a crash (or abnormal stop), or a normal stop.
        // Temporary children are removed, so are transient ones that stopped
        // normally; the others restart unless the window is full.
        const ended = (
          reason: string,
          kind: "crash" | "normal"
        ): Effect.Effect<
          { readonly _tag: "Restart"; readonly row: ChildRow } | { readonly _tag: "Done"; readonly state: State },
          PersistenceError
        > =>
          Effect.gen(function* () {
            if (kind === "crash") {
              yield* Effect.logWarning("child crashed").pipe(
                Effect.annotateLogs({ supervisor: sup, child: id, reason })
              )
            }
            if (self.restart === "temporary" || (kind === "normal" && self.restart === "transient")) {
              yield* store.deleteChild(sup, id)
              yield* event("Stopped", 0, kind === "crash" ? "crashed" : "normal", runner)
              yield* keepAlive(false)
              return { _tag: "Done", state: { _tag: "Unloaded" } } as const
            }
            const now = yield* Clock.currentTimeMillis
            const recorded = yield* store.recordRestart(
              sup,
              id,
              now,
              self.maxSeconds * 1000,
              self.maxRestarts,
              runner,
              processSession
            )
            if (Option.isNone(recorded)) {
              yield* keepAlive(false)
              return { _tag: "Done", state: { _tag: "Unloaded" } } as const
            }
            if (recorded.value.exceeded) {
              yield* event("Failed", recorded.value.row.incarnation, reason, null)
              yield* keepAlive(false)
              return { _tag: "Done", state: { _tag: "Failed" } } as const
            }
            yield* event("Restarted", recorded.value.row.incarnation, reason, runner)
            return { _tag: "Restart", row: recorded.value.row } as const
          })

        // Loads the child from its row: the only source of truth.
        const ensure: Effect.Effect<Running, ChildNotFound | RestartIntensityExceeded | PersistenceError> =
          Effect.suspend(() => {
            if (state._tag === "Running") return Effect.succeed(state)
            return Effect.gen(function* () {
              const found = yield* store.getChild(sup, id)
              if (Option.isNone(found)) return yield* notFound
              const row = found.value
              if (row.status === "failed") {
                state = { _tag: "Failed" }
                return yield* intensity
              }
              if (row.incarnation > 0 && self.restart === "temporary") {
                // Its incarnation ended elsewhere (runner died, or moved): a
                // temporary child is not started again.
                yield* store.deleteChild(sup, id)
                yield* event("Stopped", row.incarnation, "moved", row.runner)
                yield* keepAlive(false)
                return yield* notFound
              }
              yield* registerSession(store, runner)
              const activated = yield* store.activate(sup, id, runner, processSession)
              if (Option.isNone(activated)) return yield* notFound
              yield* event(row.incarnation === 0 ? "Started" : "Moved", activated.value.incarnation, row.runner, runner)
              yield* keepAlive(true)
              state = yield* startInstance(activated.value)
              if (state._tag === "Failed") return yield* intensity
              if (state._tag === "Unloaded") return yield* notFound
              return state
            })
          })

        const closeInstance = (exit: Exit.Exit<unknown, unknown>, error: ChildCallError) =>
          Effect.suspend(() => {
            const current = state
            state = { _tag: "Unloaded" }
            if (current._tag !== "Running") return Effect.void
            Deferred.doneUnsafe(current.ended, Exit.fail(error))
            return Scope.close(current.scope, exit)
          })

        // A graceful stop of the activation (runner shutdown, rebalance):
        // close the instance (finalizers: the handoff's save) and forget the
        // runner if no newer incarnation took over meanwhile.
        yield* Effect.addFinalizer(() =>
          Effect.suspend(() => {
            const current = state
            if (current._tag !== "Running") return Effect.void
            return closeInstance(Exit.void, notFound).pipe(
              Effect.andThen(store.release(sup, id, current.child.incarnation)),
              Effect.ignore
            )
          })
        )

        // After an incarnation ended (crash or stop): restart it or settle.
        const afterEnd = (reason: string, kind: "crash" | "normal") =>
          Effect.gen(function* () {
            const next = yield* ended(reason, kind)
            state = next._tag === "Restart" ? yield* startInstance(next.row) : next.state
          })

        // Runs one message in the running incarnation (inside the mailbox).
        // Ok(reply) / Later(deferred) / a typed failure / a crash.
        // The end of a handled message that was not a plain reply: a crash, a
        // stop requested by the handler, or a reply later.
        const settle = (running: Running, exit: Exit.Exit<unknown, unknown>) =>
          Effect.gen(function* () {
            if (Exit.isFailure(exit) && (Cause.hasDies(exit.cause) || Cause.hasInterrupts(exit.cause))) {
              const reason = describeCause(exit.cause)
              const crashed = new ChildCrashed({ supervisor: sup, id, reason })
              yield* closeInstance(exit, crashed)
              yield* afterEnd(reason, "crash")
              if (state._tag === "Failed") return yield* intensity
              return yield* crashed
            }
            const stopping = running.stopping
            if (stopping !== undefined && state === running) {
              const normal = isNormalStop(stopping.reason)
              const reason = normal ? String(stopping.reason ?? "normal") : `stopped: ${String(stopping.reason)}`
              yield* closeInstance(Exit.void, new ChildCrashed({ supervisor: sup, id, reason }))
              yield* afterEnd(reason, normal ? "normal" : "crash")
            }
            if (Exit.isSuccess(exit) && Deferred.isDeferred(exit.value)) {
              return new Later(exit.value as Deferred.Deferred<unknown, unknown>, running.ended)
            }
            return yield* exit
          })

        // Runs one message in the running incarnation (inside the mailbox):
        // a plain reply or typed failure goes straight back.
        const handle = (running: Running, tag: string, payload: unknown): Effect.Effect<unknown, unknown> => {
          const handler = running.handlers[tag]
          const run =
            handler === undefined
              ? Effect.die(`${def.name}: no handler for ${tag}`)
              : Effect.suspend(() => handler(payload, running.runtime))
          return Effect.flatMap(Effect.exit(Effect.updateContext(run, running.provide)), (exit) =>
            running.stopping === undefined &&
            (Exit.isSuccess(exit)
              ? !Deferred.isDeferred(exit.value)
              : !Cause.hasDies(exit.cause) && !Cause.hasInterrupts(exit.cause))
              ? exit
              : settle(running, exit)
          )
        }

        const call = (tag: string, payload: unknown) =>
          serially(
            Effect.suspend(() =>
              state._tag === "Running"
                ? handle(state, tag, payload)
                : Effect.flatMap(ensure, (running) => handle(running, tag, payload))
            )
          ).pipe(
            // a reply later is awaited outside the mailbox, so the next message
            // is handled meanwhile; the incarnation's end fails it at once
            Effect.flatMap((result) =>
              result instanceof Later
                ? Effect.raceFirst(Deferred.await(result.deferred), Deferred.await(result.ended))
                : Effect.succeed(result)
            ),
            dieOnPersistence
          )

        // An activation without a message to our handlers (the engine replaying
        // a kept-alive child's keep-alive on its next runner) must start the
        // child too: load it as soon as the entity is built.
        yield* serially(Effect.ignore(ensure)).pipe(Effect.forkScoped)

        const handlers: Record<string, (request: Entity.Request<any>) => Effect.Effect<unknown, unknown, any>> = {}
        for (const tag of def.protocol.requests.keys()) {
          handlers[tag] = (request) => call(tag, request.payload)
        }
        const where = (s: Running) => ({ runner, incarnation: s.child.incarnation })
        handlers[StartRpc._tag] = () => serially(Effect.map(ensure, where)).pipe(dieOnPersistence)
        handlers[StopRpc._tag] = () =>
          serially(
            closeInstance(Exit.void, notFound).pipe(
              Effect.andThen(keepAlive(false)),
              Effect.andThen(
                Effect.sync(() => {
                  state = { _tag: "Unloaded" }
                })
              )
            )
          )
        handlers[RestartRpc._tag] = () =>
          serially(
            closeInstance(Exit.void, new ChildCrashed({ supervisor: sup, id, reason: "restartChild" })).pipe(
              Effect.andThen(
                Effect.sync(() => {
                  state = { _tag: "Unloaded" }
                })
              ),
              Effect.andThen(ensure),
              Effect.map(where)
            )
          ).pipe(dieOnPersistence)
        return handlers
      })
      return (self.entity as Entity.Entity<string, any>).toLayer(build as any, {
        maxIdleTime: self.maxIdleTime,
        concurrency: "unbounded",
        mailboxCapacity: def.mailboxCapacity === Infinity ? "unbounded" : def.mailboxCapacity,
        disableFatalDefects: true
      }) as Layer.Layer<never>
    })
  ) as any
}

/**
 * Starts a child: records it in the cluster's database (failing
 * `AlreadyStarted` if the id is taken, `MaxChildren` at the cluster-wide
 * limit, in one transaction) and activates it on the runner that owns its
 * shard, returning where it runs. The start message is persisted: if that
 * runner dies first, the next owner starts it.
 *
 * **Example** (Starting a session)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * // needs Sharding and the bookkeeping store (ClusterRunner.layerTest in tests)
 * const start = ClusterSupervisor.startChild(Pingers, "p1")
 * Effect.isEffect(start) // => true
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const startChild: {
  (
    id: string
  ): <Rpcs extends Rpc.Any, Args, E, R>(
    self: ClusterSupervisor<Rpcs, Args, E, R>
  ) => Effect.Effect<
    ChildInfo,
    AlreadyStarted | MaxChildren | InvalidOptions | ChildCallError | PersistenceError | ClientError,
    Sharding.Sharding | ClusterStore
  >
  <Rpcs extends Rpc.Any, Args, E, R>(
    self: ClusterSupervisor<Rpcs, Args, E, R>,
    id: string
  ): Effect.Effect<
    ChildInfo,
    AlreadyStarted | MaxChildren | InvalidOptions | ChildCallError | PersistenceError | ClientError,
    Sharding.Sharding | ClusterStore
  >
} = dual(2, (self: ClusterSupervisor<any, any, any, any>, id: string) =>
  Effect.gen(function* () {
    yield* failInvalid(self)
    const store = yield* ClusterStore
    const now = yield* Clock.currentTimeMillis
    const inserted = yield* store.insertChild(self.name, id, now, self.maxChildren)
    if (inserted._tag === "Exists") {
      return yield* new AlreadyStarted({
        supervisor: self.name,
        id,
        status: inserted.row.status,
        runner: inserted.row.runner
      })
    }
    if (inserted._tag === "Max") return yield* new MaxChildren({ supervisor: self.name, maxChildren: self.maxChildren })
    const client = yield* rawClient(self)
    const started = (yield* client(id)[StartRpc._tag]!()) as { runner: string; incarnation: number }
    return {
      id,
      status: "running",
      runner: Option.some(started.runner),
      incarnation: started.incarnation,
      restarts: 0,
      startedAt: now
    } satisfies ChildInfo
  })
)

/**
 * Terminates a child: removes it from the cluster's database and stops it
 * where it runs (its Scope closes, its finalizers run, its keep-alive is
 * released). A message to it afterwards fails `ChildNotFound`; so does
 * terminating it again.
 *
 * **Example** (Stopping a session)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * const stop = Pingers.pipe(ClusterSupervisor.terminateChild("p1"))
 * Effect.isEffect(stop) // => true
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const terminateChild: {
  (
    id: string
  ): <Rpcs extends Rpc.Any, Args, E, R>(
    self: ClusterSupervisor<Rpcs, Args, E, R>
  ) => Effect.Effect<
    void,
    ChildNotFound | InvalidOptions | PersistenceError | ClientError,
    Sharding.Sharding | ClusterStore
  >
  <Rpcs extends Rpc.Any, Args, E, R>(
    self: ClusterSupervisor<Rpcs, Args, E, R>,
    id: string
  ): Effect.Effect<
    void,
    ChildNotFound | InvalidOptions | PersistenceError | ClientError,
    Sharding.Sharding | ClusterStore
  >
} = dual(2, (self: ClusterSupervisor<any, any, any, any>, id: string) =>
  Effect.gen(function* () {
    yield* failInvalid(self)
    const store = yield* ClusterStore
    const row = yield* store.getChild(self.name, id)
    const deleted = yield* store.deleteChild(self.name, id)
    if (!deleted) return yield* new ChildNotFound({ supervisor: self.name, id })
    const client = yield* rawClient(self)
    yield* client(id)[StopRpc._tag]!()
    const at = yield* Clock.currentTimeMillis
    yield* store.appendEvent(
      {
        scope: self.name,
        kind: "Stopped",
        id,
        runner: Option.isSome(row) ? row.value.runner : null,
        incarnation: Option.isSome(row) ? row.value.incarnation : 0,
        detail: "terminated",
        at
      },
      self.maxEvents
    )
  })
)

/**
 * Restarts a started child as a new incarnation: its Scope closes, `init`
 * runs again. A `failed` child is cleared (its restart window emptied) and
 * started again. Fails `ChildNotFound` if it is not started.
 *
 * **Example** (Giving a failed child another chance)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * const again = ClusterSupervisor.restartChild(Pingers, "p1")
 * Effect.isEffect(again) // => true
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const restartChild: {
  (
    id: string
  ): <Rpcs extends Rpc.Any, Args, E, R>(
    self: ClusterSupervisor<Rpcs, Args, E, R>
  ) => Effect.Effect<
    ChildInfo,
    ChildCallError | InvalidOptions | PersistenceError | ClientError,
    Sharding.Sharding | ClusterStore
  >
  <Rpcs extends Rpc.Any, Args, E, R>(
    self: ClusterSupervisor<Rpcs, Args, E, R>,
    id: string
  ): Effect.Effect<
    ChildInfo,
    ChildCallError | InvalidOptions | PersistenceError | ClientError,
    Sharding.Sharding | ClusterStore
  >
} = dual(2, (self: ClusterSupervisor<any, any, any, any>, id: string) =>
  Effect.gen(function* () {
    yield* failInvalid(self)
    const store = yield* ClusterStore
    const reset = yield* store.resetChild(self.name, id)
    if (Option.isNone(reset)) return yield* new ChildNotFound({ supervisor: self.name, id })
    const client = yield* rawClient(self)
    const started = (yield* client(id)[RestartRpc._tag]!()) as { runner: string; incarnation: number }
    return {
      id,
      status: "running",
      runner: Option.some(started.runner),
      incarnation: started.incarnation,
      restarts: reset.value.restarts,
      startedAt: reset.value.startedAt
    } satisfies ChildInfo
  })
)

/**
 * A client for the supervisor's children: `client(id)` has one method per
 * request of the protocol. A call to an id that is not started fails
 * `ChildNotFound`; to a failed one, `RestartIntensityExceeded`; a call whose
 * handler crashed, `ChildCrashed`. Through a runner's death the call waits
 * and is answered by the next owner (the engine re-routes it).
 *
 * **Example** (Calling a session)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * const call = Effect.flatMap(ClusterSupervisor.client(Pingers), (pinger) => pinger("p1").Ping())
 * Effect.isEffect(call) // => true
 * ```
 *
 * @category accessors
 * @since 0.1.0
 */
export const client = <Rpcs extends Rpc.Any, Args, E, R>(
  self: ClusterSupervisor<Rpcs, Args, E, R>
): Effect.Effect<(id: string) => ChildClient<Rpcs>, never, Sharding.Sharding> =>
  rawClient(self) as unknown as Effect.Effect<(id: string) => ChildClient<Rpcs>, never, Sharding.Sharding>

/**
 * A child of a cluster supervisor, by id: what {@link call} and {@link cast}
 * address, as `Server.call` and `Server.cast` address a local server.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildRef<Rpcs extends Rpc.Any> {
  readonly supervisor: ClusterSupervisor<Rpcs, any, any, any>
  readonly id: string
}

/**
 * The child `id` of `self`, to call or cast to. Nothing is checked until a
 * message is sent.
 *
 * **Example** (A reference)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * const p1 = ClusterSupervisor.ref(Pingers, "p1")
 * p1.id // => "p1"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const ref = <Rpcs extends Rpc.Any, Args, E, R>(
  self: ClusterSupervisor<Rpcs, Args, E, R>,
  id: string
): ChildRef<Rpcs> => ({ supervisor: self as ClusterSupervisor<Rpcs, any, any, any>, id })

/**
 * Sends a request to a child and waits for its reply: the cluster twin of
 * `Server.call(ref, tag, payload)`, with the same shape. Besides the
 * protocol's own error it can fail `ChildNotFound`, `RestartIntensityExceeded`
 * or `ChildCrashed` (the local `ServerDown`). Through a runner's death it
 * waits and is answered by the next owner; bound it with `Effect.timeout` if
 * you need a deadline.
 *
 * **Example** (Calling by reference)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Add = Rpc.make("Add", { payload: { n: Schema.Number }, success: Schema.Number })
 * const Counter = Server.make("Counter", [Add], { init: () => Effect.sync(() => { let total = 0; return { Add: ({ n }) => Effect.sync(() => (total += n)) } }) })
 * const Counters = ClusterSupervisor.make("app/Counters", { server: Counter })
 * const add = ClusterSupervisor.call(ClusterSupervisor.ref(Counters, "c1"), "Add", { n: 5 })
 * Effect.isEffect(add) // => true
 * ```
 *
 * @category calls
 * @since 0.1.0
 */
export const call = <Rpcs extends Rpc.Any, const Tag extends Rpcs["_tag"]>(
  target: ChildRef<Rpcs>,
  tag: Tag,
  ...payload: Server.PayloadArgs<Extract<Rpcs, { readonly _tag: Tag }>>
): Effect.Effect<
  Rpc.Success<Extract<Rpcs, { readonly _tag: Tag }>>,
  Rpc.Error<Extract<Rpcs, { readonly _tag: Tag }>> | ChildCallError | ClientError,
  Sharding.Sharding
> => Effect.flatMap(rawClient(target.supervisor), (client) => client(target.id)[tag]!(payload[0])) as any

/**
 * Sends a request without waiting for its reply: the cluster twin of
 * `Server.cast(ref, tag, payload)`. The message is delivered to the child's
 * mailbox (the call returns once the runner has it) and handled in order
 * with the others; its reply is dropped. A cast to an id that is not started
 * is dropped there too.
 *
 * **Example** (Casting by reference)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Push = Rpc.make("Push", { payload: { item: Schema.String } })
 * const Stack = Server.make("Stack", [Push], { init: () => Effect.succeed({ Push: () => Effect.void }) })
 * const Stacks = ClusterSupervisor.make("app/Stacks", { server: Stack })
 * const push = ClusterSupervisor.cast(ClusterSupervisor.ref(Stacks, "s1"), "Push", { item: "a" })
 * Effect.isEffect(push) // => true
 * ```
 *
 * @category calls
 * @since 0.1.0
 */
export const cast = <Rpcs extends Rpc.Any, const Tag extends Rpcs["_tag"]>(
  target: ChildRef<Rpcs>,
  tag: Tag,
  ...payload: Server.PayloadArgs<Extract<Rpcs, { readonly _tag: Tag }>>
): Effect.Effect<void, ClientError, Sharding.Sharding> =>
  Effect.flatMap(rawClient(target.supervisor), (client) =>
    Effect.asVoid((client(target.id)[tag] as any)(payload[0], { discard: true }))
  ) as any

/**
 * A typed client of one child with `Server.client`'s shape:
 * `client.call.Tag(payload)`, `client.cast.Tag(payload)`, `client.stop()`.
 * `stop` is `terminateChild`. The effects need `Sharding` (and `stop` the
 * bookkeeping store), where a local server's need nothing.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildServerClient<Rpcs extends Rpc.Any> {
  readonly call: {
    readonly [Current in Rpcs as Current["_tag"]]: (
      ...payload: Server.PayloadArgs<Current>
    ) => Effect.Effect<Rpc.Success<Current>, Rpc.Error<Current> | ChildCallError | ClientError, Sharding.Sharding>
  }
  readonly cast: {
    readonly [Current in Rpcs as Current["_tag"]]: (
      ...payload: Server.PayloadArgs<Current>
    ) => Effect.Effect<void, ClientError, Sharding.Sharding>
  }
  readonly stop: () => Effect.Effect<
    void,
    ChildNotFound | InvalidOptions | PersistenceError | ClientError,
    Sharding.Sharding | ClusterStore
  >
}

/**
 * A client of one child shaped as the local `Server.client(target)`, so code
 * written against a local server reads the same against a cluster child:
 * `client.call.Say({ text })`, `client.cast.Say({ text })`, `client.stop()`.
 *
 * **Example** (The same calls as a local client)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Greet = Rpc.make("Greet", { payload: { name: Schema.String }, success: Schema.String })
 * const Greeter = Server.make("Greeter", [Greet], { init: () => Effect.succeed({ Greet: ({ name }) => Effect.succeed(`hello, ${name}`) }) })
 * const Greeters = ClusterSupervisor.make("app/Greeters", { server: Greeter })
 * const greeter = ClusterSupervisor.childClient(ClusterSupervisor.ref(Greeters, "g1"))
 * Effect.isEffect(greeter.call.Greet({ name: "Ada" })) // => true
 * ```
 *
 * @category calls
 * @since 0.1.0
 */
export const childClient = <Rpcs extends Rpc.Any>(target: ChildRef<Rpcs>): ChildServerClient<Rpcs> => {
  const calls = new Proxy(
    {},
    {
      get: (_, tag) =>
        typeof tag === "string" ? (payload?: unknown) => (call as AnyCall)(target, tag, payload) : undefined
    }
  )
  const casts = new Proxy(
    {},
    {
      get: (_, tag) =>
        typeof tag === "string" ? (payload?: unknown) => (cast as AnyCall)(target, tag, payload) : undefined
    }
  )
  return {
    call: calls,
    cast: casts,
    stop: () => terminateChild(target.supervisor, target.id)
  } as unknown as ChildServerClient<Rpcs>
}

type AnyCall = (target: ChildRef<any>, tag: string, payload?: unknown) => Effect.Effect<unknown, unknown, any>

const toInfo = (row: ChildRow & { readonly alive: boolean }): ChildInfo => ({
  id: row.id,
  status: row.status === "failed" ? "failed" : row.alive ? "running" : "placing",
  runner: row.alive ? Option.fromNullishOr(row.runner) : Option.none(),
  incarnation: row.incarnation,
  restarts: row.restarts,
  startedAt: row.startedAt
})

/**
 * Every started child across the cluster, by id, with its status, runner,
 * incarnation and restarts. Read from the database; a child's runner counts
 * only while the engine's runner table has it alive.
 *
 * **Example** (Listing)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * Effect.isEffect(ClusterSupervisor.whichChildren(Pingers)) // => true
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildren = <Rpcs extends Rpc.Any, Args, E, R>(
  self: ClusterSupervisor<Rpcs, Args, E, R>
): Effect.Effect<ReadonlyArray<ChildInfo>, PersistenceError | InvalidOptions, ClusterStore> =>
  Effect.gen(function* () {
    yield* failInvalid(self)
    const store = yield* ClusterStore
    const rows = yield* store.listChildren(self.name)
    return rows.map(toInfo)
  })

/**
 * Counts across the cluster: `specs` (started), `active` (on a live runner),
 * `placing`, `failed`.
 *
 * **Example** (Counting)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * Effect.isEffect(ClusterSupervisor.countChildren(Pingers)) // => true
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildren = <Rpcs extends Rpc.Any, Args, E, R>(
  self: ClusterSupervisor<Rpcs, Args, E, R>
): Effect.Effect<Counts, PersistenceError | InvalidOptions, ClusterStore> =>
  Effect.map(whichChildren(self), (children) => {
    let active = 0
    let placing = 0
    let failed = 0
    for (const child of children) {
      if (child.status === "running") active++
      else if (child.status === "placing") placing++
      else failed++
    }
    return { specs: children.length, active, placing, failed }
  })

/**
 * What happens to the supervisor's children on every runner, from now on:
 * `Started`, `Restarted`, `Moved`, `Stopped`, `Failed`. Read from the
 * database's event log every `pollInterval` (default 250 ms). The log keeps
 * about the last `maxEvents` events (an option of {@link make}): a reader
 * further behind than that misses the pruned ones.
 *
 * **Example** (Watching)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Pinger = Server.make("Pinger", [Ping], { init: (id: string) => Effect.succeed({ Ping: () => Effect.succeed(id) }) })
 * const Pingers = ClusterSupervisor.make("app/Pingers", { server: Pinger })
 * const first = ClusterSupervisor.events(Pingers).pipe(Stream.take(1), Stream.runCollect)
 * Effect.isEffect(first) // => true
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const events = <Rpcs extends Rpc.Any, Args, E, R>(
  self: ClusterSupervisor<Rpcs, Args, E, R>,
  options?: { readonly pollInterval?: Duration.Input | undefined }
): Stream.Stream<ChildEvent, PersistenceError | InvalidOptions, ClusterStore> =>
  Stream.unwrap(
    Effect.gen(function* () {
      yield* failInvalid(self)
      const store = yield* ClusterStore
      let after = yield* store.lastEventSeq(self.name)
      const interval = options?.pollInterval ?? Duration.millis(250)
      const poll = Effect.gen(function* () {
        while (true) {
          const rows = yield* store.readEvents(self.name, after)
          if (rows.length > 0) {
            after = rows[rows.length - 1]!.seq
            return rows.map((row): ChildEvent => ({
              _tag: row.kind as ChildEvent["_tag"],
              id: row.id,
              runner: Option.fromNullishOr(row.runner),
              incarnation: row.incarnation,
              detail: Option.fromNullishOr(row.detail),
              at: row.at
            }))
          }
          yield* Effect.sleep(interval)
        }
      })
      return Stream.flattenIterable(Stream.fromEffectRepeat(poll))
    })
  )

/**
 * This incarnation's fencing token, inside a child (its init or handlers).
 *
 * **Example** (Reading the token)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const program = ClusterSupervisor.fencingToken.pipe(
 *   Effect.provideService(ClusterSupervisor.CurrentChild, { supervisor: "s", id: "a", incarnation: 7, runner: "h:1" })
 * )
 * // => 7
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const fencingToken: Effect.Effect<number, never, CurrentChild> = Effect.map(
  CurrentChild,
  (child) => child.incarnation
)

/**
 * Runs a child's write only while its incarnation is the current one, so a
 * runner paused past its lease (GC pause, SIGSTOP, VM freeze) cannot land a
 * side effect after a newer incarnation took over: it fails `Fenced`.
 *
 * **Details**
 *
 * On PostgreSQL the write runs in one transaction with the child's row held
 * `FOR SHARE`: a newer activation (which bumps the incarnation) waits for it,
 * and any write after that activation sees the newer incarnation. Writes made
 * with the same `SqlClient` inside `effect` are part of that transaction;
 * writes elsewhere (another database, an HTTP call) are only checked before,
 * not fenced.
 *
 * **Example** (A fenced write)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ClusterSupervisor } from "effect-otp/cluster"
 *
 * const write = ClusterSupervisor.fenced(Effect.log("write"))
 * Effect.isEffect(write) // => true
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const fenced = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | Fenced | PersistenceError, R | CurrentChild | ClusterStore> =>
  Effect.gen(function* () {
    const child = yield* CurrentChild
    const store = yield* ClusterStore
    return yield* store.fenced(child.supervisor, child.id, child.incarnation, effect).pipe(
      Effect.catchIf(
        (e): e is { readonly _tag: "StaleToken"; readonly current: number } =>
          typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "StaleToken",
        (e) =>
          Effect.fail(
            new Fenced({ supervisor: child.supervisor, id: child.id, token: child.incarnation, current: e.current })
          )
      )
    )
  }) as any
