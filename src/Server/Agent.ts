/**
 * Elixir's `Agent` for Effect: a supervised server holding one value, read
 * and changed with functions that run inside it, one at a time.
 *
 * An agent is a {@link Server} whose requests carry functions: `get(agent, f)`
 * runs `f(state)` in the agent and replies with the result, `update` replaces
 * the state with `f(state)`, `getAndUpdate` does both at once, and `cast`
 * updates without waiting. The functions run in the agent, serialized with
 * every other request, so read-modify-write sequences never interleave. A
 * function that throws crashes the agent (its callers get `ServerDown`) and
 * its supervisor restarts it from its initial value, as in Elixir.
 *
 * Agents are local: their requests carry functions, which cannot cross
 * processes. For state shared across a cluster, define a {@link Server} with
 * a Schema'd protocol.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Schema from "effect/Schema"
import { Rpc } from "effect/rpc"
import type { InvalidOptions } from "../Errors.ts"
import type * as Registry from "../Registry/Registry.ts"
import type * as ChildSpec from "../Supervisor/ChildSpec.ts"
import * as Server from "./Server.ts"

type Fn = (state: unknown) => unknown

const Get = Rpc.make("Get", { payload: Schema.Unknown, success: Schema.Unknown })
const Update = Rpc.make("Update", { payload: Schema.Unknown })
const GetAndUpdate = Rpc.make("GetAndUpdate", { payload: Schema.Unknown, success: Schema.Unknown })
const Cast = Rpc.make("Cast", { payload: Schema.Unknown })

/**
 * The protocol of every agent.
 *
 * @category models
 * @since 0.1.0
 */
export type Protocol = typeof Get | typeof Update | typeof GetAndUpdate | typeof Cast

const definition = (name: string, mailboxCapacity: number | undefined) =>
  Server.make(name, [Get, Update, GetAndUpdate, Cast], {
    init: (initial: Effect.Effect<unknown, unknown, unknown>) =>
      Effect.map(initial, (first) => {
        let state = first
        return {
          Get: (f) => Effect.sync(() => (f as Fn)(state)),
          Update: (f) =>
            Effect.sync(() => {
              state = (f as Fn)(state)
            }),
          GetAndUpdate: (f) =>
            Effect.sync(() => {
              const [reply, next] = (f as Fn)(state) as readonly [unknown, unknown]
              state = next
              return reply
            }),
          Cast: (f) =>
            Effect.sync(() => {
              state = (f as Fn)(state)
            })
        }
      }),
    mailboxCapacity
  })

const Default = definition("Agent", undefined)

/**
 * A running agent holding a value of type `S` (one incarnation).
 *
 * @category models
 * @since 0.1.0
 */
export interface Agent<in out S> extends Server.ServerRef<Protocol> {
  /** Type-level only: the state. */
  readonly "~state"?: { readonly _: (_: S) => S } | undefined
}

/**
 * An agent addressed by a registry name, resolved at every request.
 *
 * @category models
 * @since 0.1.0
 */
export interface Via<in out S> extends Server.Via<Protocol> {
  readonly "~state"?: { readonly _: (_: S) => S } | undefined
}

/**
 * Where a request goes: a running agent or a registry name.
 *
 * @category models
 * @since 0.1.0
 */
export type Target<S> = Agent<S> | Via<S>

/**
 * The options of {@link childSpec} and {@link start}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** The server kind's name, for logs, metrics and spans. @default "Agent" */
  readonly name?: string | undefined
  /** @default the name */
  readonly id?: string | undefined
  /** @default "permanent" */
  readonly restart?: ChildSpec.Restart | undefined
  /** @default "5 seconds" */
  readonly shutdown?: ChildSpec.Shutdown | undefined
  /** The most requests waiting; beyond it they fail with `MailboxFull`. @default Infinity */
  readonly mailboxCapacity?: number | undefined
}

const initialOf = <S, E, R>(initial: Effect.Effect<S, E, R> | (() => S)): Effect.Effect<S, E, R> =>
  Effect.isEffect(initial) ? initial : Effect.sync(initial as () => S)

const definitionOf = (options: Options | undefined) =>
  options?.name === undefined ? Default : definition(options.name, undefined)

/**
 * A child spec that runs an agent: its initial state is computed (in the
 * child's Scope) by `initial` — a function or an Effect — at every
 * incarnation, so a restarted agent starts from it again.
 *
 * **Example** (A supervised counter)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Agent, DynamicSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const sup = yield* DynamicSupervisor.make()
 *   const counter = (yield* DynamicSupervisor.startChild(sup, Agent.childSpec(() => 0))).handle
 *   yield* Agent.update(counter, (n) => n + 1)
 *   return yield* Agent.getAndUpdate(counter, (n) => [n, n * 10])
 * })
 * // => 1
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = <S, E = never, R = never>(
  initial: Effect.Effect<S, E, R> | (() => S),
  options?: Options
): ChildSpec.ChildSpec<Agent<S>, E | InvalidOptions, Exclude<R, Scope.Scope>> =>
  Server.childSpec(definitionOf(options), initialOf(initial) as Effect.Effect<unknown, unknown, unknown>, {
    id: options?.id ?? options?.name ?? "Agent",
    restart: options?.restart,
    shutdown: options?.shutdown,
    mailboxCapacity: options?.mailboxCapacity
  }) as unknown as ChildSpec.ChildSpec<Agent<S>, E | InvalidOptions, Exclude<R, Scope.Scope>>

/**
 * Starts an agent that is not supervised, for the length of the current
 * Scope (Elixir's `Agent.start/2`).
 *
 * **Example** (A scoped agent)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Agent } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const agent = yield* Agent.start(() => new Map<string, string>())
 *   yield* Agent.update(agent, (m) => new Map(m).set("hello", "world"))
 *   return yield* Agent.get(agent, (m) => m.get("hello"))
 * })
 * // => "world"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const start = <S, E = never, R = never>(
  initial: Effect.Effect<S, E, R> | (() => S),
  options?: Pick<Options, "name" | "mailboxCapacity">
): Effect.Effect<Agent<S>, E | InvalidOptions, Exclude<R, Scope.Scope> | Scope.Scope> =>
  Server.start(definitionOf(options), initialOf(initial) as Effect.Effect<unknown, unknown, unknown>, {
    mailboxCapacity: options?.mailboxCapacity
  }) as unknown as Effect.Effect<Agent<S>, E | InvalidOptions, Exclude<R, Scope.Scope> | Scope.Scope>

/**
 * Addresses the agent registered under `key` in a unique registry, resolved
 * at every request.
 *
 * **Example** (An agent by name)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Agent, DynamicSupervisor, Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const names = yield* Registry.make<string, Agent.Agent<number>>({ keys: "unique" })
 *   const sup = yield* DynamicSupervisor.make()
 *   yield* DynamicSupervisor.startChild(sup, Registry.via(names, "hits", Agent.childSpec(() => 0)))
 *   yield* Agent.cast(Agent.via(names, "hits"), (n) => n + 1)
 *   return yield* Agent.get(Agent.via(names, "hits"), (n) => n)
 * })
 * // => 1
 * ```
 *
 * @category addressing
 * @since 0.1.0
 */
export const via = <K, S>(registry: Registry.Registry<K, Agent<S>, "unique">, key: K): Via<S> =>
  Server.via(registry as unknown as Registry.Registry<K, Server.ServerRef<Protocol>, "unique">, key) as Via<S>

const target = <S>(agent: Target<S>): Server.Target<Protocol> => agent as Server.Target<Protocol>

/**
 * Runs `f` on the state inside the agent and replies with its result
 * (Elixir's `Agent.get/3`). `f` should be quick: the agent handles nothing
 * else meanwhile.
 *
 * @category requests
 * @since 0.1.0
 */
export const get = <S, A>(
  agent: Target<S>,
  f: (state: S) => A,
  options?: Server.CallOptions
): Effect.Effect<A, Server.CallError> =>
  Server.call(target(agent), "Get", f as Fn, options) as Effect.Effect<A, Server.CallError>

/**
 * Replaces the state with `f(state)` and waits until it is done (Elixir's
 * `Agent.update/3`).
 *
 * @category requests
 * @since 0.1.0
 */
export const update = <S>(
  agent: Target<S>,
  f: (state: S) => S,
  options?: Server.CallOptions
): Effect.Effect<void, Server.CallError> => Server.call(target(agent), "Update", f as Fn, options)

/**
 * Runs `f` on the state, replies with the first element of its result and
 * keeps the second as the new state (Elixir's `Agent.get_and_update/3`).
 *
 * @category requests
 * @since 0.1.0
 */
export const getAndUpdate = <S, A>(
  agent: Target<S>,
  f: (state: S) => readonly [A, S],
  options?: Server.CallOptions
): Effect.Effect<A, Server.CallError> =>
  Server.call(target(agent), "GetAndUpdate", f as Fn, options) as Effect.Effect<A, Server.CallError>

/**
 * Replaces the state with `f(state)` without waiting (Elixir's
 * `Agent.cast/2`); dropped when there is no live agent.
 *
 * @category requests
 * @since 0.1.0
 */
export const cast = <S>(agent: Target<S>, f: (state: S) => S): Effect.Effect<void, Server.MailboxFull> =>
  Server.cast(target(agent), "Cast", f as Fn)

/**
 * Stops the agent with a reason and waits until it has ended (Elixir's
 * `Agent.stop/3`).
 *
 * @category requests
 * @since 0.1.0
 */
export const stop = <S>(
  agent: Target<S>,
  reason?: unknown
): Effect.Effect<void, Server.NoServer | Server.MailboxFull> => Server.stop(target(agent), reason)
