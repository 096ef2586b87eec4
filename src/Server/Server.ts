/**
 * OTP's GenServer for Effect: a supervised child that answers a typed request
 * protocol, one message at a time.
 *
 * A server **definition** ({@link make}) is a protocol — a list of Effect
 * `Rpc`s, each with a payload, a success and an error Schema — and an `init`
 * that runs in the child's own Scope (it acquires what the server owns and
 * builds its state) and returns one handler per request. Handlers run one
 * message at a time, in arrival order, in the server's own context (its
 * Scope, its log annotations, its trace), as a GenServer's callbacks do.
 *
 * Locally nothing is encoded or decoded: payloads and replies are passed as
 * values. Because the protocol is Schema'd, the same definition can run
 * across processes as an `effect/cluster` entity (`definition.protocol` is an
 * `RpcGroup`, `definition.init` builds the handlers; see {@link Definition}).
 *
 * **Failures it handles.** A handler that dies crashes the server, never the
 * caller: the caller and every caller waiting in the mailbox fail at once with
 * {@link ServerDown} carrying the exit reason, and the supervisor restarts the
 * server as a new incarnation. A call to a server that has ended fails with
 * {@link NoServer}; a call by registry name reaches whichever incarnation is
 * running. A caller that is interrupted (or times out) withdraws its request
 * if it has not started; a handler already running is never cut short by its
 * caller.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Scope from "effect/Scope"
import { Rpc, RpcGroup } from "effect/rpc"
import { InvalidOptions } from "../Errors.ts"
import { showValue } from "../internal/show.ts"
import * as Registry from "../Registry/Registry.ts"
import * as ChildSpec from "../Supervisor/ChildSpec.ts"
import { isDefaultClock } from "./internal/metrics.ts"
import * as internal from "./internal/server.ts"

const ScopeTag = Scope.Scope

export {
  /**
   * @category errors
   * @since 0.1.0
   */
  InvalidOptions
}

const TypeId = "~effect-otp/Server"

// ---------------------------------------------------------------------------
// the definition (the contract shared with effect-otp/cluster)

/**
 * A server definition: what {@link make} returns, and what
 * {@link childSpec} and the cluster's supervisor run.
 *
 * - `Name` names the server kind (logs, metrics, spans, the entity type).
 * - `Rpcs` is the protocol: a union of Effect `Rpc`s. `protocol` holds them as
 *   an `RpcGroup`, so `Entity.fromRpcGroup(definition.name, definition.protocol)`
 *   makes an `effect/cluster` entity of the same server.
 * - `Args` is what each incarnation is started with (`init(args)`).
 * - `E` is the error `init` can fail with (the start fails with it).
 * - `R` is what `init` and the handlers need, besides the `Scope` and the
 *   {@link CurrentServer} every runtime provides.
 *
 * **What a runtime does with it** (the local one in this module, the cluster's
 * entity runtime in `effect-otp/cluster`):
 *
 * 1. run `init(args)` in the incarnation's own Scope, with {@link CurrentServer}
 *    provided; its value is the handler record, one handler per `_tag`;
 * 2. for each request, call `handlers[tag](payload, self)` with the payload as
 *    its decoded value (`Rpc.Payload`) and `self` the same value as the
 *    {@link CurrentServer} service, one request at a time, in arrival order;
 * 3. reply with the handler's success, or with its failure when it fails
 *   with the Rpc's error; when it succeeds with a `Deferred`, reply later,
 *   when that `Deferred` completes (Effect RPC's own convention, so a cluster
 *   entity does the same), and go on with the next message meanwhile;
 * 4. treat a defect (or an interruption from inside) as a crash of the
 *   incarnation: every request it holds fails with {@link ServerDown}.
 *
 * Streaming Rpcs are not supported by the local runtime.
 *
 * @category models
 * @since 0.1.0
 */
export interface Definition<
  out Name extends string,
  in out Rpcs extends Rpc.Any,
  in out Args,
  out E = never,
  out R = never
> extends Pipeable {
  readonly [TypeId]: typeof TypeId
  /** The server kind's name, for logs, metrics, spans, and the entity type in a cluster. */
  readonly name: Name
  /** The protocol as an `RpcGroup` (one `Rpc` per request `_tag`). */
  readonly protocol: RpcGroup.RpcGroup<Rpcs>
  /**
   * Builds one incarnation: runs in its own Scope with {@link CurrentServer}
   * provided, acquires what the server owns, and returns its handlers.
   */
  readonly init: (args: Args) => Effect.Effect<Handlers<Rpcs, R>, E, R | Scope.Scope | CurrentServer>
  /** The most messages waiting in the mailbox; `Infinity` when unbounded (the default, as Elixir). */
  readonly mailboxCapacity: number
  /** Set when an option was invalid: starting the server fails with it before anything runs. */
  readonly invalid: InvalidOptions | undefined
}

/**
 * A definition of any protocol, arguments, error and services.
 *
 * @category models
 * @since 0.1.0
 */
export interface Any {
  readonly [TypeId]: typeof TypeId
  readonly name: string
}

/**
 * What a handler may succeed with: the Rpc's success value (the reply), or a
 * `Deferred` that another fiber completes later (reply later, Elixir's
 * `{:noreply, state}` + `GenServer.reply/2`). A `Deferred` that fails replies
 * with its error.
 *
 * @category models
 * @since 0.1.0
 */
export type Reply<Current extends Rpc.Any> =
  Rpc.Success<Current> | Deferred.Deferred<Rpc.Success<Current>, Rpc.Error<Current>>

/**
 * The handler of one request: `(payload, self) => Effect<Reply, Error, R>`.
 *
 * - `payload` is the request's decoded value (`Rpc.Payload<Current>`).
 * - `self` is the running server ({@link Self}): messages and timers to
 *   itself, stop with a reason. It is the value of {@link CurrentServer}, so
 *   code called from a handler can reach it without being passed it.
 * - A failure with the Rpc's error is the reply; a defect crashes the server.
 *
 * @category models
 * @since 0.1.0
 */
export type Handler<Current extends Rpc.Any, Rpcs extends Rpc.Any, R = never> = (
  payload: Rpc.Payload<Current>,
  self: Self<Rpcs>
) => Effect.Effect<Reply<Current>, Rpc.Error<Current>, R>

/**
 * One handler per request of the protocol, keyed by the Rpc's `_tag`.
 *
 * @category models
 * @since 0.1.0
 */
export type Handlers<Rpcs extends Rpc.Any, R = never> = {
  readonly [Current in Rpcs as Current["_tag"]]: Handler<Current, Rpcs, R>
}

/**
 * The services a handler record needs (the union over its handlers).
 *
 * @category models
 * @since 0.1.0
 */
export type HandlersServices<H> = {
  [K in keyof H]: H[K] extends (...args: ReadonlyArray<never>) => Effect.Effect<infer _A, infer _E, infer R> ? R : never
}[keyof H]

/**
 * The protocol (`Rpc` union) of a definition.
 *
 * @category models
 * @since 0.1.0
 */
export type Rpcs<D> = D extends Definition<infer _N, infer R, infer _A, infer _E, infer _R> ? R : never

/**
 * The `Args` of a definition.
 *
 * @category models
 * @since 0.1.0
 */
export type Args<D> = D extends Definition<infer _N, infer _R, infer A, infer _E, infer _S> ? A : never

/**
 * The payload argument of a request: optional when the Rpc has no payload
 * (`Rpc.make("Crash")`).
 *
 * @category models
 * @since 0.1.0
 */
export type PayloadArgs<Current extends Rpc.Any> = [Rpc.Payload<Current>] extends [void]
  ? [payload?: Rpc.Payload<Current>]
  : [payload: Rpc.Payload<Current>]

// ---------------------------------------------------------------------------
// the running server, as its handlers see it

/**
 * A message to self scheduled by {@link Self.sendAfter}; `cancel` succeeds
 * with `true` when it had not been delivered yet (Elixir's
 * `Process.cancel_timer/1`). Timers belong to the incarnation: they are
 * cancelled when it ends.
 *
 * @category models
 * @since 0.1.0
 */
export interface Timer {
  readonly cancel: Effect.Effect<boolean>
}

/**
 * The running server, as its `init` and handlers see it, whatever runs it (the
 * local runtime or a cluster entity). Erased here; {@link Self} is its typed
 * view and {@link self} gives it for a definition.
 *
 * **What a runtime implements**
 *
 * - `name`: the definition's name; `id`: this incarnation (the local runtime:
 *   a number unique in the process; a cluster: the entity id).
 * - `cast(tag, payload)`: puts a request in the server's own mailbox, behind
 *   the messages already there; it is handled as a cast (its reply is
 *   dropped). Never runs it inside the current handler.
 * - `sendAfter(delay, tag, payload)`: the same after `delay` on Effect's
 *   `Clock` (Elixir's `Process.send_after(self(), msg, ms)`), cancelled with
 *   the incarnation.
 * - `stop(reason)`: ends the incarnation once the current handler has
 *   finished and its reply is sent (Elixir's `{:stop, reason, reply, state}`).
 *   `"normal"` (the default) and `"shutdown"` are normal exits; any other
 *   reason is abnormal (a `"transient"` server is restarted). Messages still
 *   in the mailbox fail with {@link ServerDown} carrying the reason.
 *
 * @category models
 * @since 0.1.0
 */
export interface Runtime {
  readonly name: string
  readonly id: string
  readonly cast: (tag: string, payload?: unknown) => Effect.Effect<void>
  readonly sendAfter: (delay: Duration.Input, tag: string, payload?: unknown) => Effect.Effect<Timer>
  readonly stop: (reason?: unknown) => Effect.Effect<void>
}

/**
 * The running server typed by its protocol: the second argument of every
 * handler, and what {@link self} gives inside `init`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Self<Rpcs extends Rpc.Any> {
  /** The definition's name. */
  readonly name: string
  /** This incarnation's id. */
  readonly id: string
  /** Puts a request in this server's own mailbox, handled after the messages already there, as a cast. */
  readonly cast: <const Tag extends Rpcs["_tag"]>(
    tag: Tag,
    ...payload: PayloadArgs<Extract<Rpcs, { readonly _tag: Tag }>>
  ) => Effect.Effect<void>
  /** The same after `delay` (Elixir's `Process.send_after/3`); cancelled with the incarnation. */
  readonly sendAfter: <const Tag extends Rpcs["_tag"]>(
    delay: Duration.Input,
    tag: Tag,
    ...payload: PayloadArgs<Extract<Rpcs, { readonly _tag: Tag }>>
  ) => Effect.Effect<Timer>
  /**
   * Ends the incarnation once the current handler has finished and replied.
   * `"normal"` (the default) and `"shutdown"` are normal exits; any other
   * reason is abnormal.
   */
  readonly stop: (reason?: unknown) => Effect.Effect<void>
}

/**
 * The running server, provided by the runtime to `init`, to every handler and
 * to everything they call (locally: the server's own context; in a cluster:
 * the entity's). Reach it typed with {@link self}.
 *
 * @category services
 * @since 0.1.0
 */
export class CurrentServer extends Context.Service<CurrentServer, Runtime>()("effect-otp/Server/CurrentServer") {}

internal.setCurrentServerKey(CurrentServer as unknown as Context.Key<unknown, Runtime>)

/**
 * The running server, typed by a definition's protocol, for `init` and for
 * code that a handler calls.
 *
 * **Example** (A tick to self every second, set up in init)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 *
 * const Tick = Rpc.make("Tick")
 * const Ticks = Rpc.make("Ticks", { success: Schema.Number })
 *
 * const Ticker = Server.make("Ticker", [Tick, Ticks], {
 *   init: () =>
 *     Effect.gen(function* () {
 *       const self = yield* Server.self<typeof Tick | typeof Ticks>()
 *       yield* self.sendAfter("1 second", "Tick")
 *       let ticks = 0
 *       return {
 *         Tick: (_, self) => Effect.asVoid(Effect.andThen(Effect.sync(() => ticks++), self.sendAfter("1 second", "Tick"))),
 *         Ticks: () => Effect.succeed(ticks)
 *       }
 *     })
 * })
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const self = <Rpcs extends Rpc.Any>(): Effect.Effect<Self<Rpcs>, never, CurrentServer> =>
  Effect.service(CurrentServer) as unknown as Effect.Effect<Self<Rpcs>, never, CurrentServer>

// ---------------------------------------------------------------------------
// errors

/**
 * Why an incarnation ended, as {@link ServerDown} carries it:
 *
 * - `Normal`: stopped with reason `"normal"` (Elixir `:normal`);
 * - `Shutdown`: stopped by its supervisor or its Scope, or with reason
 *   `"shutdown"` (Elixir `:shutdown`);
 * - `Stopped`: stopped with any other reason (abnormal);
 * - `Crashed`: a handler or a timer died, with the cause (Elixir: the
 *   exception and its stack trace).
 *
 * @category models
 * @since 0.1.0
 */
export type DownReason =
  | { readonly _tag: "Normal" }
  | { readonly _tag: "Shutdown" }
  | { readonly _tag: "Stopped"; readonly reason: unknown }
  | { readonly _tag: "Crashed"; readonly cause: Cause.Cause<unknown> }

const showReason = (reason: DownReason): string =>
  reason._tag === "Stopped"
    ? `stopped (${showValue(reason.reason)})`
    : reason._tag === "Crashed"
      ? "crashed"
      : reason._tag === "Normal"
        ? "stopped normally"
        : "shut down"

/**
 * The server ended while the call waited for it (its handler crashed, it
 * stopped, or its supervisor stopped it): the call fails at once, not at its
 * timeout. Elixir: the caller exits with the server's reason (the `:DOWN` of
 * the monitor `GenServer.call` sets).
 *
 * @category errors
 * @since 0.1.0
 */
export class ServerDown extends Data.TaggedError("ServerDown")<{
  /** The definition's name. */
  readonly server: string
  /** The request's `_tag`. */
  readonly tag: string
  readonly reason: DownReason
}> {
  override get message(): string {
    return `${this.server}.${this.tag}: the server ${showReason(this.reason)} before it replied`
  }
}

/**
 * No live server: the name is not registered, or the server has ended.
 * Elixir: `exit({:noproc, {GenServer, :call, ...}})`.
 *
 * @category errors
 * @since 0.1.0
 */
export class NoServer extends Data.TaggedError("NoServer")<{
  /** The definition's name, when known. */
  readonly server: string
  readonly tag: string
  /** The registry key the call was addressed to, when it was by name. */
  readonly name?: unknown
}> {
  override get message(): string {
    return `${this.server}.${this.tag}: no server${"name" in this ? ` registered as ${showValue(this.name)}` : ""}`
  }
}

/**
 * The server did not reply within the call's timeout (5 s by default, as
 * `GenServer.call`). The request is withdrawn if it had not started; a
 * handler already running finishes and its reply is dropped.
 *
 * @category errors
 * @since 0.1.0
 */
export class CallTimeout extends Data.TaggedError("CallTimeout")<{
  readonly server: string
  readonly tag: string
  readonly timeout: Duration.Duration
}> {
  override get message(): string {
    return `${this.server}.${this.tag}: no reply within ${this.timeout.toString()}`
  }
}

/**
 * The server's mailbox already holds `mailboxCapacity` messages. Elixir has no
 * bound (a slow server's mailbox grows until the node runs out of memory);
 * a bound turns overload into a typed, immediate error the caller can shed or
 * retry.
 *
 * @category errors
 * @since 0.1.0
 */
export class MailboxFull extends Data.TaggedError("MailboxFull")<{
  readonly server: string
  readonly tag: string
  readonly capacity: number
}> {
  override get message(): string {
    return `${this.server}.${this.tag}: mailbox full (${this.capacity} messages)`
  }
}

// ---------------------------------------------------------------------------
// constructors

/**
 * The options of {@link make}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<Args, H, E, R> {
  /**
   * Builds an incarnation from its start arguments: runs in the child's own
   * Scope (whatever it acquires is released when the incarnation ends) and
   * returns the handlers, one per request. Its state lives in its closure.
   */
  readonly init: (args: Args) => Effect.Effect<H, E, R>
  /**
   * The most messages that may wait in the mailbox; beyond it `call` and
   * `cast` fail with {@link MailboxFull}. @default Infinity (Elixir has no bound)
   */
  readonly mailboxCapacity?: number | undefined
}

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  },
  toJSON(this: Definition<string, Rpc.Any, unknown>) {
    return { _id: "Server.Definition", name: this.name, requests: [...this.protocol.requests.keys()] }
  },
  toString(this: Definition<string, Rpc.Any, unknown>) {
    return `Server(${this.name})`
  }
}

const invalid = (field: string, value: unknown, expected: string) =>
  new InvalidOptions({ module: "Server", field, value, expected })

/**
 * Defines a server: its name, its protocol (a list of `Rpc`s or an
 * `RpcGroup`) and its `init`.
 *
 * **When to use**
 *
 * Use for a stateful child that callers talk to with requests and replies:
 * a session per user, a cache, a connection owner. For one value behind
 * get/update, `Agent` is shorter.
 *
 * **Details**
 *
 * - `init(args)` runs in the incarnation's own Scope, with {@link CurrentServer}
 *   provided; it returns the handlers, whose closure is the server's state.
 *   When it fails, starting the server fails with its error.
 * - Each handler gets the request's payload and {@link Self}; a failure with
 *   the Rpc's error is the reply, a defect crashes the server.
 * - Bad options (`mailboxCapacity` not a positive integer or `Infinity`, a
 *   protocol that is not Rpcs) make starting fail with `InvalidOptions`.
 *
 * **Example** (A session counting its messages)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 *
 * const Say = Rpc.make("Say", { payload: { text: Schema.String }, success: Schema.String })
 * const Crash = Rpc.make("Crash")
 *
 * const Session = Server.make("Session", [Say, Crash], {
 *   init: (userId: string) =>
 *     Effect.gen(function* () {
 *       let seen = 0
 *       return {
 *         Say: ({ text }) => Effect.sync(() => `${userId}#${++seen}: ${text}`),
 *         Crash: () => Effect.die("boom")
 *       }
 *     })
 * })
 *
 * const requests = [...Session.protocol.requests.keys()]
 * requests // => ["Say", "Crash"]
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <
  const Name extends string,
  Rpcs extends Rpc.Any,
  Args,
  H extends Handlers<Rpcs, unknown>,
  E = never,
  R = never
>(
  name: Name,
  protocol: ReadonlyArray<Rpcs> | RpcGroup.RpcGroup<Rpcs>,
  options: Options<Args, H, E, R>
): Definition<Name, Rpcs, Args, E, Exclude<R | HandlersServices<H>, Scope.Scope | CurrentServer>> => {
  let error: InvalidOptions | undefined
  if (typeof name !== "string" || name.length === 0) error = invalid("name", name, "a non-empty string")
  let group: RpcGroup.RpcGroup<Rpcs>
  if (Array.isArray(protocol)) {
    for (const rpc of protocol) {
      if (!Rpc.isRpc(rpc)) error ??= invalid("protocol", rpc, "an Rpc (Rpc.make)")
    }
    group = RpcGroup.make(...(protocol as ReadonlyArray<Rpcs>)) as unknown as RpcGroup.RpcGroup<Rpcs>
  } else if (
    (typeof protocol === "object" || typeof protocol === "function") &&
    protocol !== null &&
    // an RpcGroup's type id is declared in its type only; its requests map is what every group has at run time
    (protocol as { readonly requests?: unknown }).requests instanceof Map
  ) {
    group = protocol as unknown as RpcGroup.RpcGroup<Rpcs>
  } else {
    error ??= invalid("protocol", protocol, "a list of Rpcs or an RpcGroup")
    group = RpcGroup.make() as unknown as RpcGroup.RpcGroup<Rpcs>
  }
  if (typeof options !== "object" || options === null || typeof options.init !== "function") {
    error ??= invalid(
      "init",
      (options as { init?: unknown } | null)?.init,
      "a function from the start arguments to an Effect"
    )
  }
  const capacity = options?.mailboxCapacity ?? Infinity
  if (capacity !== Infinity && !(Number.isInteger(capacity) && capacity >= 1)) {
    error ??= invalid("mailboxCapacity", capacity, "an integer >= 1 or Infinity")
  }
  const self = Object.create(Proto)
  self.name = name
  self.protocol = group
  self.init = options?.init
  self.mailboxCapacity = capacity
  self.invalid = error
  return self
}

/**
 * Whether `u` is a server definition.
 *
 * @category guards
 * @since 0.1.0
 */
export const isDefinition = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

// ---------------------------------------------------------------------------
// running servers

/**
 * A running server (one incarnation): the handle {@link childSpec} gives its
 * child, and what a `Registry` name holds. Calls to it after it has ended fail
 * with {@link NoServer}; callers that must survive restarts address it by
 * name ({@link via}).
 *
 * @category models
 * @since 0.1.0
 */
export interface ServerRef<in out Rpcs extends Rpc.Any> extends Pipeable {
  readonly [internal.RefTypeId]: typeof internal.RefTypeId
  /** Type-level only: the protocol. */
  readonly "~rpcs"?: { readonly _: (_: Rpcs) => Rpcs } | undefined
  /** The definition's name. */
  readonly name: string
  /** This incarnation's id, unique in the process. */
  readonly id: string
}

/**
 * The handle type of a definition's servers, for declaring registries:
 * `Registry.make<string, Server.RefOf<typeof Session>>({ keys: "unique" })`.
 *
 * @category models
 * @since 0.1.0
 */
export type RefOf<D> = ServerRef<Rpcs<D>>

const ViaTypeId = "~effect-otp/Server/Via"

/**
 * A server addressed by a registry name, resolved at every call (Elixir's
 * `{:via, Registry, {registry, key}}`): it reaches whichever incarnation holds
 * the name.
 *
 * @category models
 * @since 0.1.0
 */
export interface Via<in out Rpcs extends Rpc.Any> {
  readonly [ViaTypeId]: typeof ViaTypeId
  readonly "~rpcs"?: { readonly _: (_: Rpcs) => Rpcs } | undefined
  readonly registry: Registry.Registry<unknown, ServerRef<Rpcs>, "unique">
  readonly key: unknown
}

/**
 * Where a call goes: a running server or a registry name.
 *
 * @category models
 * @since 0.1.0
 */
export type Target<Rpcs extends Rpc.Any> = ServerRef<Rpcs> | Via<Rpcs>

/**
 * Addresses the server registered under `key` in a unique registry, resolved
 * at every call, so a call by name reaches the current incarnation after a
 * restart. A name with no live server fails the call with {@link NoServer}.
 *
 * **Example** (Calling a session by user id)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { DynamicSupervisor, Registry, Server } from "effect-otp"
 *
 * const Ping = Rpc.make("Ping", { success: Schema.String })
 * const Session = Server.make("Session", [Ping], {
 *   init: (user: string) => Effect.succeed({ Ping: () => Effect.succeed(`pong from ${user}`) })
 * })
 *
 * const program = Effect.gen(function* () {
 *   const sessions = yield* Registry.make<string, Server.RefOf<typeof Session>>({ keys: "unique" })
 *   const sup = yield* DynamicSupervisor.make()
 *   yield* DynamicSupervisor.startChild(sup, Registry.via(sessions, "alice", Server.childSpec(Session, "alice")))
 *   return yield* Server.call(Server.via(sessions, "alice"), "Ping")
 * })
 * // => "pong from alice"
 * ```
 *
 * @category addressing
 * @since 0.1.0
 */
export const via = <K, Rpcs extends Rpc.Any>(
  registry: Registry.Registry<K, ServerRef<Rpcs>, "unique">,
  key: K
): Via<Rpcs> =>
  ({
    [ViaTypeId]: ViaTypeId,
    registry: registry as unknown as Registry.Registry<unknown, ServerRef<Rpcs>, "unique">,
    key
  }) as Via<Rpcs>

/**
 * Whether `u` is a running server's handle.
 *
 * @category guards
 * @since 0.1.0
 */
export const isServerRef = (u: unknown): u is ServerRef<Rpc.Any> =>
  typeof u === "object" && u !== null && internal.RefTypeId in u

const downError = (server: string, tag: string, reason: DownReason) => new ServerDown({ server, tag, reason })

/** The server a target names now, or undefined. */
const resolve = (target: Target<Rpc.Any>): internal.ServerImpl | undefined => {
  if (internal.RefTypeId in target) return target as unknown as internal.ServerImpl
  const via = target as Via<Rpc.Any>
  return Registry.whereisUnsafe(via.registry, via.key) as unknown as internal.ServerImpl | undefined
}

const targetName = (target: Target<Rpc.Any>): string =>
  internal.RefTypeId in target ? (target as ServerRef<Rpc.Any>).name : "Server"

const noServer = (target: Target<Rpc.Any>, server: string | undefined, tag: string): NoServer =>
  ViaTypeId in target
    ? new NoServer({ server: server ?? targetName(target), tag, name: (target as Via<Rpc.Any>).key })
    : new NoServer({ server: server ?? targetName(target), tag })

/**
 * The options of {@link call}.
 *
 * @category models
 * @since 0.1.0
 */
export interface CallOptions {
  /**
   * How long to wait for the reply before failing with {@link CallTimeout}.
   *
   * @default "5 seconds" (as `GenServer.call`)
   */
  readonly timeout?: Duration.Input | "infinity" | undefined
}

/**
 * The arguments of a call after its tag: the payload (optional when the Rpc
 * has none) and the {@link CallOptions}.
 *
 * @category models
 * @since 0.1.0
 */
export type CallArgs<Current extends Rpc.Any> = [Rpc.Payload<Current>] extends [void]
  ? [payload?: Rpc.Payload<Current>, options?: CallOptions]
  : [payload: Rpc.Payload<Current>, options?: CallOptions]

/**
 * The errors every call can fail with besides the Rpc's own.
 *
 * @category models
 * @since 0.1.0
 */
export type CallError = CallTimeout | ServerDown | NoServer | MailboxFull

const defaultTimeout = Duration.seconds(5)

const decodeTimeout = (options: CallOptions | undefined): Duration.Duration | InvalidOptions => {
  const timeout = options?.timeout
  if (timeout === undefined) return defaultTimeout
  if (timeout === "infinity") return Duration.infinity
  const decoded = Duration.fromInput(timeout)
  if (decoded._tag === "None" || Duration.isNegative(decoded.value)) {
    return invalid("timeout", timeout, 'a non-negative Duration or "infinity"')
  }
  return decoded.value
}

/**
 * Waits for the reply to a message sent (or started) by the calling fiber.
 * The timeout is a timer fiber of its own, not a race: the wait stays in the
 * caller's fiber, so interrupting the caller always reaches the canceler that
 * withdraws the request.
 */
/** The longest delay setTimeout takes (about 24.8 days); longer timeouts sleep on the Clock. */
const maxTimer = 2_147_483_647

const waitReply = (
  server: internal.ServerImpl,
  message: internal.Message,
  timeout: Duration.Duration,
  context: Context.Context<never>
): Effect.Effect<unknown, unknown> =>
  Effect.callback<unknown, unknown>((resume, signal) => {
    if (message.exit !== undefined) return resume(message.exit)
    // Withdrawn in the abort listener, which runs in the same step as the
    // interruption: a canceler effect would run one step later, and under a
    // scheduler that yields between steps the server could start the request
    // in between.
    let cancel: (() => void) | undefined
    signal.addEventListener("abort", () => {
      cancel?.()
      server.withdraw(message)
    })
    if (!Duration.isFinite(timeout)) {
      message.resume = resume
      return
    }
    const fire = () => {
      if (message.resume === undefined) return
      server.withdraw(message)
      server.kind.failed("timeout")
      resume(Effect.fail(new CallTimeout({ server: server.name, tag: message.tag, timeout })))
    }
    const millis = Duration.toMillis(timeout)
    if (millis <= maxTimer && isDefaultClock(context)) {
      // Effect's default Clock sleeps with setTimeout: use one directly
      const t = setTimeout(fire, millis)
      cancel = () => clearTimeout(t)
    } else {
      const t = Effect.runForkWith(context)(Effect.andThen(Effect.sleep(timeout), Effect.sync(fire)))
      cancel = () => t.interruptUnsafe()
    }
    message.resume = (exit) => {
      cancel!()
      resume(exit)
    }
  })

/**
 * Sends a request and waits for its reply: Elixir's `GenServer.call/3`.
 *
 * **When to use**
 *
 * Use for a request whose answer (or completion) the caller needs. For fire
 * and forget, use {@link cast}.
 *
 * **Details**
 *
 * - Fails with the Rpc's error when the handler fails with it; with
 *   {@link ServerDown} **at once** when the server ends while the call waits
 *   (its handler crashed, an earlier message crashed it, it stopped, its
 *   supervisor stopped it); with {@link NoServer} when the target has no live
 *   server; with {@link MailboxFull} when a bounded mailbox is full; with
 *   {@link CallTimeout} after `timeout` (default 5 s).
 * - Interrupting the caller (or the timeout) withdraws the request if its
 *   handler has not started; a handler already running finishes, and its
 *   reply is dropped.
 * - When the server is idle, the handler starts in the caller's turn (in the
 *   server's own fiber and context) and a handler that does not suspend
 *   replies without any scheduler hop.
 * - A span `Name.Tag` is recorded per handled message, a child of the
 *   server's own span and linked to the caller's.
 *
 * **Example** (A call and a crash)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { DynamicSupervisor, Server } from "effect-otp"
 *
 * const Add = Rpc.make("Add", { payload: { n: Schema.Number }, success: Schema.Number })
 * const Crash = Rpc.make("Crash")
 * const Counter = Server.make("Counter", [Add, Crash], {
 *   init: (start: number) =>
 *     Effect.sync(() => {
 *       let total = start
 *       return { Add: ({ n }) => Effect.sync(() => (total += n)), Crash: () => Effect.die("boom") }
 *     })
 * })
 *
 * const program = Effect.gen(function* () {
 *   const sup = yield* DynamicSupervisor.make()
 *   const child = yield* DynamicSupervisor.startChild(sup, Server.childSpec(Counter, 10))
 *   const total = yield* Server.call(child.handle, "Add", { n: 5 })
 *   const crashed = yield* Effect.flip(Server.call(child.handle, "Crash"))
 *   return [total, crashed._tag]
 * })
 * // => [15, "ServerDown"]
 * ```
 *
 * @category calls
 * @since 0.1.0
 */
export const call = <Rpcs extends Rpc.Any, const Tag extends Rpcs["_tag"]>(
  target: Target<Rpcs>,
  tag: Tag,
  ...args: CallArgs<Extract<Rpcs, { readonly _tag: Tag }>>
): Effect.Effect<
  Rpc.Success<Extract<Rpcs, { readonly _tag: Tag }>>,
  Rpc.Error<Extract<Rpcs, { readonly _tag: Tag }>> | CallError
> => callUnknown(target as unknown as Target<Rpc.Any>, tag, args[0], args[1]) as any

const callUnknown = (
  target: Target<Rpc.Any>,
  tag: string,
  payload: unknown,
  options: CallOptions | undefined
): Effect.Effect<unknown, unknown> =>
  Effect.withFiber((caller) => {
    const server = resolve(target)
    if (server === undefined || server.down !== undefined) {
      server?.kind.failed("noserver")
      return Effect.fail(noServer(target, server?.name, tag))
    }
    if (server.isFull()) {
      server.kind.failed("mailbox_full")
      return Effect.fail(new MailboxFull({ server: server.name, tag, capacity: server.capacity }))
    }
    const timeout = options === undefined ? defaultTimeout : decodeTimeout(options)
    if (timeout instanceof InvalidOptions) return Effect.die(timeout)
    const message = new internal.Message(internal.CALL_KIND, tag, payload, caller.cache.span, server.now(), caller)
    if (!server.busy && server.queued === 0) {
      // idle: start the handler now, in the caller's turn
      server.busy = true
      const ended = server.run(message)
      if (ended && server.down === undefined) {
        server.busy = false
        if (server.queued > 0 && !server.scheduled) server.schedule()
      }
      if (message.exit !== undefined) return message.exit
    } else {
      // sent now, in the caller's turn (so messages keep the order they were
      // sent in); a caller interrupted before it starts waiting is noticed
      // when its message reaches the head of the mailbox
      server.enqueue(message)
    }
    return waitReply(server, message, timeout, caller.context)
  })

/**
 * Sends a request without waiting for a reply: Elixir's `GenServer.cast/2`.
 *
 * **Details**
 *
 * The message goes to the end of the mailbox and the caller goes on; the
 * handler never runs in the caller's turn, and its reply (or error) is
 * dropped. As in Elixir, a cast to a name with no live server is dropped
 * without error. Fails only with {@link MailboxFull}, when a bounded mailbox
 * is full.
 *
 * **Example** (Casting, then calling)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 *
 * const Push = Rpc.make("Push", { payload: { item: Schema.String } })
 * const Items = Rpc.make("Items", { success: Schema.Array(Schema.String) })
 * const Stack = Server.make("Stack", [Push, Items], {
 *   init: () =>
 *     Effect.sync(() => {
 *       const items: Array<string> = []
 *       return { Push: ({ item }) => Effect.sync(() => void items.push(item)), Items: () => Effect.succeed([...items]) }
 *     })
 * })
 *
 * const program = Effect.gen(function* () {
 *   const stack = yield* Server.start(Stack)
 *   yield* Server.cast(stack, "Push", { item: "a" })
 *   yield* Server.cast(stack, "Push", { item: "b" })
 *   return yield* Server.call(stack, "Items") // handled after the casts: one mailbox, in order
 * })
 * // => ["a", "b"]
 * ```
 *
 * @category calls
 * @since 0.1.0
 */
export const cast: <Rpcs extends Rpc.Any, const Tag extends Rpcs["_tag"]>(
  target: Target<Rpcs>,
  tag: Tag,
  ...payload: PayloadArgs<Extract<Rpcs, { readonly _tag: Tag }>>
) => Effect.Effect<void, MailboxFull> = ((target: Target<Rpc.Any>, tag: string, payload?: unknown) =>
  Effect.suspend(() => {
    const server = resolve(target)
    if (server === undefined || server.down !== undefined) return Effect.void
    if (server.isFull()) {
      return Effect.fail(new MailboxFull({ server: server.name, tag, capacity: server.capacity }))
    }
    server.enqueue(new internal.Message(internal.CAST_KIND, tag, payload, undefined, -1))
    return Effect.void
  })) as never

/**
 * Stops a server with a reason and waits until it has ended (its Scope
 * closed, its finalizers run): Elixir's `GenServer.stop/3`.
 *
 * **Details**
 *
 * The stop is a message like the others: handled after those already in the
 * mailbox; messages behind it fail with {@link ServerDown}. `"normal"` (the
 * default) and `"shutdown"` are normal exits, so a `"transient"` or
 * `"temporary"` child is not restarted; a `"permanent"` one is, as in OTP.
 * Fails with {@link NoServer} when there is no live server.
 *
 * @category calls
 * @since 0.1.0
 */
export const stop = <Rpcs extends Rpc.Any>(
  target: Target<Rpcs>,
  reason?: unknown
): Effect.Effect<void, NoServer | MailboxFull> =>
  Effect.suspend((): Effect.Effect<void, NoServer | MailboxFull> => {
    const server = resolve(target as unknown as Target<Rpc.Any>)
    if (server === undefined || server.down !== undefined) {
      return Effect.fail(noServer(target as unknown as Target<Rpc.Any>, server?.name, "stop"))
    }
    const message = new internal.Message(internal.STOP_KIND, "stop", internal.decodeStopReason(reason), undefined, -1)
    if (!server.busy && server.queued === 0) {
      server.busy = true
      server.run(message)
    } else {
      if (server.isFull()) {
        return Effect.fail(new MailboxFull({ server: server.name, tag: "stop", capacity: server.capacity }))
      }
      server.enqueue(message)
    }
    return server.awaitClosed()
  })

/**
 * A typed client of a server: one function per request for calls and for
 * casts (see {@link client}).
 *
 * @category models
 * @since 0.1.0
 */
export interface Client<Rpcs extends Rpc.Any> {
  readonly call: {
    readonly [Current in Rpcs as Current["_tag"]]: (
      ...args: CallArgs<Current>
    ) => Effect.Effect<Rpc.Success<Current>, Rpc.Error<Current> | CallError>
  }
  readonly cast: {
    readonly [Current in Rpcs as Current["_tag"]]: (
      ...payload: PayloadArgs<Current>
    ) => Effect.Effect<void, MailboxFull>
  }
  readonly stop: (reason?: unknown) => Effect.Effect<void, NoServer | MailboxFull>
}

/**
 * A typed client of a running server or of a registry name: `client.call.Tag(payload, options?)`,
 * `client.cast.Tag(payload)`, `client.stop(reason?)`. The same as {@link call},
 * {@link cast} and {@link stop} on the target (a name is resolved at every call).
 *
 * **Example** (A client by name)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { DynamicSupervisor, Registry, Server } from "effect-otp"
 *
 * const Greet = Rpc.make("Greet", { payload: { name: Schema.String }, success: Schema.String })
 * const Greeter = Server.make("Greeter", [Greet], {
 *   init: () => Effect.succeed({ Greet: ({ name }) => Effect.succeed(`hello, ${name}`) })
 * })
 *
 * const program = Effect.gen(function* () {
 *   const names = yield* Registry.make<string, Server.RefOf<typeof Greeter>>({ keys: "unique" })
 *   const sup = yield* DynamicSupervisor.make()
 *   yield* DynamicSupervisor.startChild(sup, Registry.via(names, "greeter", Server.childSpec(Greeter)))
 *   const greeter = Server.client(Server.via(names, "greeter"))
 *   return yield* greeter.call.Greet({ name: "joe" })
 * })
 * // => "hello, joe"
 * ```
 *
 * @category calls
 * @since 0.1.0
 */
export const client = <Rpcs extends Rpc.Any>(target: Target<Rpcs>): Client<Rpcs> => {
  const erased = target as unknown as Target<Rpc.Any>
  const calls = new Proxy(
    {},
    {
      get: (_, tag) =>
        typeof tag === "string"
          ? (payload?: unknown, options?: CallOptions) => callUnknown(erased, tag, payload, options)
          : undefined
    }
  )
  const casts = new Proxy(
    {},
    {
      get: (_, tag) =>
        typeof tag === "string" ? (payload?: unknown) => (cast as AnyCast)(erased, tag, payload) : undefined
    }
  )
  return { call: calls, cast: casts, stop: (reason?: unknown) => stop(erased, reason) } as unknown as Client<Rpcs>
}

type AnyCast = (target: Target<Rpc.Any>, tag: string, payload?: unknown) => Effect.Effect<void, MailboxFull>

// ---------------------------------------------------------------------------
// starting servers

/**
 * The options of {@link childSpec}: those of `ChildSpec.make`, and the
 * mailbox bound.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildOptions {
  /** @default the definition's name */
  readonly id?: string | undefined
  /** @default "permanent" */
  readonly restart?: ChildSpec.Restart | undefined
  /** @default "5 seconds" */
  readonly shutdown?: ChildSpec.Shutdown | undefined
  /** Overrides the definition's `mailboxCapacity`. */
  readonly mailboxCapacity?: number | undefined
}

const decodeCapacity = (value: number | undefined, fallback: number): number | InvalidOptions => {
  const capacity = value ?? fallback
  if (capacity !== Infinity && !(Number.isInteger(capacity) && capacity >= 1)) {
    return invalid("mailboxCapacity", capacity, "an integer >= 1 or Infinity")
  }
  return capacity
}

/**
 * Starts an incarnation in the Scope of the current fiber (the child's). The
 * Scope's first finalizer (so the last to run) marks the incarnation closed
 * for `stop`. A supervised server is shut down by its body's interruption,
 * before the Scope closes (see `awaitDown`); an unsupervised one (`ownScope`)
 * by a finalizer added after init, so either way the handlers stop before
 * what init acquired is released.
 */
const startIn = <Rpcs extends Rpc.Any, Args, E, R>(
  definition: Definition<string, Rpcs, Args, E, R>,
  args: Args,
  capacity: number | InvalidOptions,
  watch: ((server: internal.ServerImpl) => void) | undefined
): Effect.Effect<ServerRef<Rpcs>, E | InvalidOptions, R | Scope.Scope> =>
  Effect.withFiber<ServerRef<Rpcs>, E | InvalidOptions, R | Scope.Scope>((fiber) => {
    if (definition.invalid !== undefined) return Effect.fail(definition.invalid)
    if (capacity instanceof InvalidOptions) return Effect.fail(capacity)
    const scope = Context.getUnsafe(fiber.context, ScopeTag)
    const server = new internal.ServerImpl(definition.name, capacity, scope, downError)
    // supervised: the child's context (its own trace and log context, made by
    // its supervisor); unsupervised: the starter's, without its span and log
    // spans, so handlers never run inside the starter's trace
    server.setContext(
      watch === undefined
        ? fiber.context
        : (Context.add(
            Context.omit(Tracer.ParentSpan)(fiber.context),
            References.CurrentLogSpans,
            []
          ) as Context.Context<never>)
    )
    if (watch !== undefined) watch(server)
    const init = Effect.provideService(
      definition.init(args) as Effect.Effect<Record<string, internal.AnyHandler>, E, R | Scope.Scope | CurrentServer>,
      CurrentServer,
      server as Runtime
    )
    const ready = (handlers: Record<string, internal.AnyHandler>) => {
      if (watch === undefined) {
        server.ready(handlers)
        return Effect.succeed(server as unknown as ServerRef<Rpcs>)
      }
      return Effect.map(Scope.addFinalizer(scope, server.shutdown()), () => {
        server.ready(handlers)
        return server as unknown as ServerRef<Rpcs>
      })
    }
    return Effect.andThen(
      Scope.addFinalizer(
        scope,
        Effect.sync(() => server.markClosed())
      ),
      Effect.flatMap(init, ready)
    )
  })

/**
 * The child's body: alive until the incarnation ends, then exits as its
 * reason says. Interrupted (its supervisor stops it), it shuts the server
 * down first: waiting callers fail with ServerDown, the running handler is
 * interrupted and awaited, before the Scope's finalizers run.
 */
const awaitDown = (server: internal.ServerImpl): Effect.Effect<void, unknown> =>
  Effect.callback<void, unknown>((resume) => {
    if (server.down !== undefined) return resume(internal.exitOf(server.down))
    server.onDown = (reason) => resume(internal.exitOf(reason))
    return server.shutdown()
  })

/**
 * A child spec that runs a server: `start` runs `init(args)` in the child's
 * Scope and gives the server's handle ({@link ServerRef}); the child lives
 * until the server crashes (an abnormal exit, with the handler's cause), stops
 * (normal for `"normal"`/`"shutdown"`, abnormal otherwise) or is stopped.
 *
 * **When to use**
 *
 * Use to put a server under any supervisor — `DynamicSupervisor`,
 * `Supervisor`, `RateLimitedSupervisor` — with any restart type, and with
 * `Registry.via` to name it.
 *
 * **Example** (A permanent server restarted after a crash)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Registry, Server, Supervisor } from "effect-otp"
 *
 * const Get = Rpc.make("Get", { success: Schema.Number })
 * const Crash = Rpc.make("Crash")
 * let incarnations = 0
 * const Cache = Server.make("Cache", [Get, Crash], {
 *   init: () =>
 *     Effect.sync(() => {
 *       const incarnation = ++incarnations
 *       return { Get: () => Effect.succeed(incarnation), Crash: () => Effect.die("boom") }
 *     })
 * })
 *
 * const program = Effect.gen(function* () {
 *   const names = yield* Registry.make<string, Server.RefOf<typeof Cache>>({ keys: "unique" })
 *   yield* Supervisor.make([Registry.via(names, "cache", Server.childSpec(Cache))], { strategy: "oneForOne" })
 *   const cache = Server.via(names, "cache")
 *   yield* Effect.flip(Server.call(cache, "Crash"))
 *   return yield* Server.call(cache, "Get") // the restarted incarnation, by name
 * })
 * // => 2
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = <Rpcs extends Rpc.Any, Args, E, R>(
  definition: Definition<string, Rpcs, Args, E, R>,
  ...args: [unknown] extends [Args] ? [args?: Args, options?: ChildOptions] : [args: Args, options?: ChildOptions]
): ChildSpec.ChildSpec<ServerRef<Rpcs>, E | InvalidOptions, R> => {
  const options = args[1]
  return ChildSpec.make({
    id: options?.id ?? definition.name,
    start: startIn(
      definition,
      args[0] as Args,
      decodeCapacity(options?.mailboxCapacity, definition.mailboxCapacity),
      undefined
    ),
    run: (ref) => awaitDown(ref as unknown as internal.ServerImpl),
    restart: options?.restart,
    shutdown: options?.shutdown
  })
}

/**
 * Starts a server that is not supervised, for the length of the current
 * Scope: Elixir's `GenServer.start/3`. When it crashes or stops nothing
 * restarts it (calls then fail with {@link NoServer}); closing the Scope
 * stops it.
 *
 * **When to use**
 *
 * Use in tests, scripts and short-lived workflows; under a supervisor use
 * {@link childSpec}.
 *
 * **Example** (A scoped server)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc } from "effect/rpc"
 * import { Server } from "effect-otp"
 *
 * const Echo = Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String })
 * const Echoer = Server.make("Echoer", [Echo], { init: () => Effect.succeed({ Echo: ({ text }) => Effect.succeed(text) }) })
 *
 * const program = Effect.gen(function* () {
 *   const echoer = yield* Server.start(Echoer)
 *   return yield* Server.call(echoer, "Echo", { text: "hi" })
 * })
 * // => "hi"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const start = <Rpcs extends Rpc.Any, Args, E, R>(
  definition: Definition<string, Rpcs, Args, E, R>,
  ...args: [unknown] extends [Args]
    ? [args?: Args, options?: { readonly mailboxCapacity?: number | undefined }]
    : [args: Args, options?: { readonly mailboxCapacity?: number | undefined }]
): Effect.Effect<ServerRef<Rpcs>, E | InvalidOptions, R | Scope.Scope> =>
  Effect.flatMap(Effect.scope, (parent) =>
    Effect.flatMap(Scope.fork(parent), (scope) =>
      Effect.onExit(
        startIn(
          definition,
          args[0] as Args,
          decodeCapacity(args[1]?.mailboxCapacity, definition.mailboxCapacity),
          (server) => {
            // when it ends by itself, release what it holds
            server.onDown = (reason) => {
              Effect.runFork(Scope.close(scope, internal.exitOf(reason)))
            }
          }
        ).pipe(Scope.provide(scope)),
        (exit): Effect.Effect<void> => (exit._tag === "Failure" ? Scope.close(scope, exit) : Effect.void)
      )
    )
  )
