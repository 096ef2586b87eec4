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
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import type * as Scope from "effect/Scope"
import { Rpc, RpcGroup } from "effect/rpc"
import { InvalidOptions } from "../Errors.ts"
import { showValue } from "../internal/show.ts"

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
  in out Name extends string,
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
 *         Tick: (_, self) => Effect.andThen(Effect.sync(() => ticks++), self.sendAfter("1 second", "Tick")),
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
 * ;[...Session.protocol.requests.keys()] // => ["Say", "Crash"]
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
  } else if (typeof protocol === "object" && protocol !== null && "~effect/rpc/RpcGroup" in protocol) {
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
