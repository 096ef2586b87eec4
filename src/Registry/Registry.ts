/**
 * A local, in-memory key → value store whose entries belong to a `Scope`:
 * Elixir's `Registry` for Effect. An entry lives exactly as long as the Scope
 * that registered it — inside a supervised child, that incarnation — so
 * registries name children, group them by topic and dispatch to them.
 *
 * A `DynamicSupervisor` identifies a child by the `Child` value `startChild`
 * returned, and that value names one incarnation only: after a crash the
 * restarted child has a new `pid` and a new handle. A Registry gives children
 * names that survive restarts ({@link via}): the name is registered in each
 * incarnation's Scope, removed when that incarnation ends and registered again
 * by the next one, so `lookup` and {@link whereis} always give the live handle.
 *
 * Keys are either `"unique"` (at most one entry per key: names) or
 * `"duplicate"` (any number: topics, pub/sub groups). Keys of any type compare
 * with Effect's structural equality (`Equal.equals`), so a tuple such as
 * `["session", userId]` is a key; primitive keys take a fast path that costs
 * one `Map.get`.
 *
 * **Failures it handles.** An owner that ends for any reason — success,
 * failure, defect, interruption — loses its entries when its Scope closes,
 * before anything it started can be restarted. Between the moment its Scope
 * closes and the moment the registry's finalizer runs (other finalizers of the
 * same Scope may run first), reads already skip its entries and a unique key it
 * held can be registered again (Elixir's registry cleans up asynchronously and
 * may return dead processes; this one does not). A failed registration leaves
 * nothing behind.
 *
 * **Differences from Elixir, on purpose.**
 * - The owner of an entry is the `Scope` that registered it (Elixir: the
 *   calling process). `unregister` removes the entries of the Scope in context.
 * - Listeners are a `Stream` of {@link Event}s ({@link listen}); every removal
 *   is announced, including those caused by an owner's exit (Elixir sends
 *   nothing on process death and announces `unregister` even when nothing was
 *   registered).
 * - ETS match specs are replaced by typed predicates (`match`, `select`).
 * - There are no partitions: every operation is synchronous on one event loop,
 *   so partitions would add hashing without adding parallelism.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AlreadyStarted, InvalidOptions } from "../Errors.ts"
import { showValue } from "../internal/show.ts"
import * as Inspect from "../internal/inspect.ts"
import * as ChildSpec from "../Supervisor/ChildSpec.ts"
import * as KeyMap from "./internal/keyMap.ts"
import * as internal from "./internal/registry.ts"

export {
  /**
   * @category errors
   * @since 0.1.0
   */
  AlreadyStarted,
  /**
   * @category errors
   * @since 0.1.0
   */
  InvalidOptions
}

const TypeId = "~effect-otp/Registry"

/**
 * The two kinds of registry: `"unique"` keeps at most one entry per key,
 * `"duplicate"` any number.
 *
 * @category models
 * @since 0.1.0
 */
export type Keys = "unique" | "duplicate"

/**
 * A running registry from keys `K` to values `V`. `Kind` records whether keys
 * are unique, so operations that only make sense for names ({@link via},
 * {@link updateValue}) accept only unique registries.
 *
 * @category models
 * @since 0.1.0
 */
export interface Registry<in out K, in out V, out Kind extends Keys = Keys> extends Pipeable {
  readonly [TypeId]: { readonly _K: (_: K) => K; readonly _V: (_: V) => V }
  /** `"unique"` or `"duplicate"`, as given to {@link make}. */
  readonly keys: Kind
}

/**
 * One registration: `key` → `value`, owned by the Scope that registered it.
 *
 * @category models
 * @since 0.1.0
 */
export interface Entry<out K, out V> {
  readonly key: K
  readonly value: V
  /** The Scope the entry lives in; the entry is removed when it closes. */
  readonly owner: Scope.Scope
}

/**
 * A change announced to listeners, in the order the changes happened.
 * `Unregistered.reason` is `"unregister"` for {@link unregister} and
 * {@link unregisterMatch}, `"exit"` when the owner's Scope closed, and
 * `"shutdown"` when the registry itself closed.
 *
 * @category models
 * @since 0.1.0
 */
export type Event<K, V> =
  | { readonly _tag: "Registered"; readonly key: K; readonly value: V; readonly owner: Scope.Scope }
  | {
      readonly _tag: "Unregistered"
      readonly key: K
      readonly value: V
      readonly owner: Scope.Scope
      readonly reason: "unregister" | "exit" | "shutdown"
    }

/**
 * A unique key is already held by a live owner; carries that owner's entry.
 * Elixir: `{:error, {:already_registered, pid}}`.
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyRegistered<K = unknown, V = unknown> extends Data.TaggedError("AlreadyRegistered")<{
  readonly key: K
  /** The current owner's entry. */
  readonly entry: Entry<K, V>
}> {
  override get message(): string {
    return `key already registered: ${showValue(this.key)}`
  }
}

/**
 * The registry's Scope has closed: it takes no more registrations (reads
 * return nothing). Elixir: `ArgumentError "unknown registry"`.
 *
 * @category errors
 * @since 0.1.0
 */
export class RegistryClosed extends Data.TaggedError("RegistryClosed")<{}> {
  override get message(): string {
    return "the registry has shut down"
  }
}

/**
 * The options of {@link make}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<Kind extends Keys> {
  /** `"unique"`: at most one entry per key; `"duplicate"`: any number. */
  readonly keys: Kind
  /** Initial registry metadata (see {@link meta}). */
  readonly meta?: Iterable<readonly [unknown, unknown]> | Readonly<Record<string, unknown>> | undefined
}

// ---------------------------------------------------------------------------
// internals

interface RegistryImpl<K, V> {
  readonly [TypeId]: { readonly _K: (_: K) => K; readonly _V: (_: V) => V }
  readonly keys: Keys
  readonly state: internal.State<K, V>
  pipe: Pipeable["pipe"]
}

const Proto = {
  [TypeId]: { _K: (k: unknown) => k, _V: (v: unknown) => v },
  pipe() {
    return pipeArguments(this, arguments)
  },
  toJSON(this: RegistryImpl<unknown, unknown>) {
    return { _id: "Registry", keys: this.keys, open: this.state.open, count: this.state.count }
  },
  toString(this: RegistryImpl<unknown, unknown>) {
    return `Registry(${this.keys}, ${this.state.count} entries)`
  },
  [NodeInspectSymbol](this: RegistryImpl<unknown, unknown>) {
    return { _id: "Registry", keys: this.keys, open: this.state.open, count: this.state.count }
  },
  /** the inspection protocol (src/internal/inspect.ts): a leaf with its entry counts */
  get [Inspect.TypeId](): Inspect.Inspector {
    const self = this as unknown as RegistryImpl<unknown, unknown>
    return {
      kind: "Registry",
      name: undefined,
      snapshot: () => ({
        kind: "Registry",
        type: "worker",
        state: self.state.open ? "running" : "stopped",
        restarts: 0,
        stats: {
          keys: self.keys,
          entries: self.state.count,
          reserved: self.state.reserved,
          listeners: self.state.listeners.size
        },
        children: []
      }),
      subscribe: () => () => {},
      childInspectors: () => []
    }
  }
}

const stateOf = <K, V>(self: Registry<K, V, Keys>): internal.State<K, V> =>
  (self as unknown as RegistryImpl<K, V>).state

const invalid = (field: string, value: unknown, expected: string) =>
  new InvalidOptions({ module: "Registry", field, value, expected })

const metaEntries = (meta: Options<Keys>["meta"]): Iterable<readonly [unknown, unknown]> | InvalidOptions => {
  if (meta === undefined) return []
  if (typeof meta !== "object" || meta === null) {
    return invalid("meta", meta, "an iterable of [key, value] pairs or a record")
  }
  if (Symbol.iterator in meta) {
    const out: Array<readonly [unknown, unknown]> = []
    for (const pair of meta as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        return invalid("meta", meta, "an iterable of [key, value] pairs or a record")
      }
      out.push([pair[0], pair[1]])
    }
    return out
  }
  return Object.entries(meta)
}

// ---------------------------------------------------------------------------
// constructors

/**
 * Creates a registry that lives as long as the current Scope.
 *
 * **When to use**
 *
 * Use to name children (`keys: "unique"`) or to group them under topics
 * (`keys: "duplicate"`). For a registry shared by an application, use
 * {@link Service} or {@link layer}.
 *
 * **Details**
 *
 * Fails with `InvalidOptions` when `keys` is not `"unique"` or `"duplicate"`
 * or `meta` is not a list of pairs or a record. When its Scope closes, every
 * entry is removed (announced with reason `"shutdown"`), every owner loses its
 * registry finalizer, every listener stream ends, and registering fails with
 * `RegistryClosed`.
 *
 * **Example** (Naming a value for the length of a Scope)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<string, number>({ keys: "unique" })
 *   yield* Effect.scoped(
 *     Effect.gen(function* () {
 *       yield* Registry.register(registry, "answer", 42)
 *       Registry.lookupUnsafe(registry, "answer").map((e) => e.value) // => [42]
 *     })
 *   )
 *   Registry.lookupUnsafe(registry, "answer").length // => 0
 * }).pipe(Effect.scoped)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: {
  <K, V>(options: Options<"unique">): Effect.Effect<Registry<K, V, "unique">, InvalidOptions, Scope.Scope>
  <K, V>(options: Options<"duplicate">): Effect.Effect<Registry<K, V, "duplicate">, InvalidOptions, Scope.Scope>
  <K, V>(options: Options<Keys>): Effect.Effect<Registry<K, V, Keys>, InvalidOptions, Scope.Scope>
} = (<K, V>(options: Options<Keys>): Effect.Effect<Registry<K, V, Keys>, InvalidOptions, Scope.Scope> =>
  Effect.suspend(() => {
    if (typeof options !== "object" || options === null) {
      return Effect.fail(invalid("options", options, "an object with keys"))
    }
    const keys = options.keys
    if (keys !== "unique" && keys !== "duplicate") {
      return Effect.fail(invalid("keys", keys, '"unique" or "duplicate"'))
    }
    const meta = metaEntries(options.meta)
    if (meta instanceof InvalidOptions) return Effect.fail(meta)
    return Effect.acquireRelease(
      Effect.sync(() => {
        const self = Object.create(Proto) as RegistryImpl<K, V> & { keys: Keys; state: internal.State<K, V> }
        self.keys = keys
        self.state = internal.make<K, V>(keys === "unique", meta)
        return self as unknown as Registry<K, V, Keys>
      }),
      (self) => Effect.sync(() => internal.close(stateOf(self)))
    )
  })) as any

/**
 * A child spec that owns a registry: it lives as long as the child's
 * incarnation (a restart starts empty, as Elixir's registry does), its handle
 * is the `Registry`. Permanent unless told; a worker with no body.
 *
 * **Example** (A name registry in an application tree)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const app = yield* Supervisor.make(
 *     [Registry.childSpec<string, number>({ id: "names", keys: "unique" })],
 *     { strategy: "oneForOne" }
 *   )
 *   return (yield* Supervisor.countChildren(app)).active
 * })
 * // => 1
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = <K, V, Kind extends Keys = "unique">(
  options: Options<Kind> & {
    readonly id?: string | undefined
    readonly restart?: ChildSpec.Restart | undefined
  }
): ChildSpec.ChildSpec<Registry<K, V, Kind>, InvalidOptions> =>
  ChildSpec.make({
    id: options.id ?? "Registry",
    start: make<K, V>(options as Options<Keys>) as Effect.Effect<Registry<K, V, Kind>, InvalidOptions, Scope.Scope>,
    restart: options.restart ?? "permanent"
  })

/**
 * A layer that provides a registry under `tag`, closed when the layer is.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I, K, V, Kind extends Keys>(
  tag: Context.Key<I, Registry<K, V, Kind>>,
  options: Options<Kind>
): Layer.Layer<I, InvalidOptions> =>
  Layer.effect(tag)(
    make<K, V>(options as Options<Keys>) as Effect.Effect<Registry<K, V, Kind>, InvalidOptions, Scope.Scope>
  )

/**
 * Declares a registry as a service class, with its `layer` beside it.
 *
 * **Example** (An application-wide session registry)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * class Sessions extends Registry.Service<Sessions, readonly [string, number], string>()("app/Sessions", {
 *   keys: "unique"
 * }) {}
 *
 * const program = Effect.gen(function* () {
 *   const sessions = yield* Sessions
 *   return yield* Registry.count(sessions)
 * }).pipe(Effect.provide(Sessions.layer))
 * // => 0
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const Service =
  <Self, K, V>() =>
  <const Id extends string, Kind extends Keys>(
    id: Id,
    options: Options<Kind>
  ): Context.ServiceClass<Self, Id, Registry<K, V, Kind>> & {
    readonly layer: Layer.Layer<Self, InvalidOptions>
    /** Runs the registry alone until interrupted (`Layer.launch` of its layer). */
    readonly launch: Effect.Effect<never, InvalidOptions>
  } => {
    const Base = Context.Service<Self, Registry<K, V, Kind>>()(id)
    const built = layer(Base as unknown as Context.Key<Self, Registry<K, V, Kind>>, options)
    return Object.assign(Base, { layer: built, launch: Layer.launch(built) }) as any
  }

/**
 * Whether `u` is a registry.
 *
 * @category guards
 * @since 0.1.0
 */
export const isRegistry = (u: unknown): u is Registry<unknown, unknown, Keys> =>
  typeof u === "object" && u !== null && TypeId in u

// ---------------------------------------------------------------------------
// registration

const withOwner = <A, E>(f: (owner: Scope.Scope) => Effect.Effect<A, E>): Effect.Effect<A, E, Scope.Scope> =>
  Effect.withFiber((fiber) => f(Context.getUnsafe(fiber.context, Scope.Scope)))

/**
 * Registers `key → value` for as long as the current Scope is open.
 *
 * **When to use**
 *
 * Use inside a child's `start` (or any scoped workflow) to publish a name or
 * join a topic; the entry is removed when that Scope closes.
 *
 * **Details**
 *
 * - Unique registries: if a live owner holds `key` (the caller's own Scope
 *   included), fails with `AlreadyRegistered` carrying that owner's entry, and
 *   nothing is stored. An entry whose owner's Scope has closed but whose
 *   cleanup has not run yet is replaced.
 * - Duplicate registries: always succeeds, even for the same key and value
 *   twice.
 * - Listeners receive `Registered` after the entry is stored.
 * - The Scope gets one registry finalizer for its first key and loses it when
 *   its last key is unregistered.
 * - Fails with `RegistryClosed` once the registry's Scope has closed.
 *
 * **Gotchas**
 *
 * Keys are compared structurally and must not be mutated after registering.
 *
 * **Example** (A unique name)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<readonly [string, number], string>({ keys: "unique" })
 *   yield* Registry.register(registry, ["session", 1], "alice")
 *   const error = yield* Effect.flip(Registry.register(registry, ["session", 1], "bob"))
 *   return error._tag === "AlreadyRegistered" ? error.entry.value : error._tag
 * }).pipe(Effect.scoped)
 * // => "alice"
 * ```
 *
 * @category registration
 * @since 0.1.0
 */
export const register: {
  <K, V>(
    key: K,
    value: V
  ): <Kind extends Keys>(
    self: Registry<K, V, Kind>
  ) => Effect.Effect<Entry<K, V>, AlreadyRegistered<K, V> | RegistryClosed, Scope.Scope>
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    key: K,
    value: V
  ): Effect.Effect<Entry<K, V>, AlreadyRegistered<K, V> | RegistryClosed, Scope.Scope>
} = dual(
  3,
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    key: K,
    value: V
  ): Effect.Effect<Entry<K, V>, AlreadyRegistered<K, V> | RegistryClosed, Scope.Scope> =>
    withOwner((owner): Effect.Effect<Entry<K, V>, AlreadyRegistered<K, V> | RegistryClosed> => {
      const r = internal.register(stateOf(self), key, value, owner)
      if (r === internal.CLOSED) return Effect.fail(new RegistryClosed())
      if (r instanceof internal.Conflict) return Effect.fail(new AlreadyRegistered({ key, entry: r.entry }))
      return Effect.succeed(r)
    })
)

/**
 * Removes every entry the current Scope has under `key`. Does nothing when it
 * has none.
 *
 * **Details**
 *
 * Listeners receive one `Unregistered` (reason `"unregister"`) per removed
 * entry. When the Scope has no entries left, its registry finalizer is
 * removed.
 *
 * **Example** (Leaving a topic)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const topics = yield* Registry.make<string, string>({ keys: "duplicate" })
 *   yield* Registry.register(topics, "news", "a")
 *   yield* Registry.register(topics, "news", "b")
 *   yield* Registry.unregister(topics, "news")
 *   return yield* Registry.count(topics)
 * }).pipe(Effect.scoped)
 * // => 0
 * ```
 *
 * @category registration
 * @since 0.1.0
 */
export const unregister: {
  <K>(key: K): <V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<void, never, Scope.Scope>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): Effect.Effect<void, never, Scope.Scope>
} = dual(2, <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): Effect.Effect<void, never, Scope.Scope> =>
  withOwner((owner) => Effect.sync(() => internal.unregister(stateOf(self), key, owner, undefined)))
)

/**
 * Removes the current Scope's entries under `key` whose value satisfies
 * `predicate` (Elixir's `unregister_match`, with a predicate in place of a
 * match spec).
 *
 * **Example** (Removing some of a Scope's entries)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const topics = yield* Registry.make<string, number>({ keys: "duplicate" })
 *   yield* Registry.register(topics, "n", 1)
 *   yield* Registry.register(topics, "n", 2)
 *   yield* Registry.unregisterMatch(topics, "n", (v) => v > 1)
 *   return Registry.lookupUnsafe(topics, "n").map((e) => e.value)
 * }).pipe(Effect.scoped)
 * // => [1]
 * ```
 *
 * @category registration
 * @since 0.1.0
 */
export const unregisterMatch: {
  <K, V>(
    key: K,
    predicate: (value: V) => boolean
  ): <Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<void, never, Scope.Scope>
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    key: K,
    predicate: (value: V) => boolean
  ): Effect.Effect<void, never, Scope.Scope>
} = dual(
  3,
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    key: K,
    predicate: (value: V) => boolean
  ): Effect.Effect<void, never, Scope.Scope> =>
    withOwner((owner) => Effect.sync(() => internal.unregister(stateOf(self), key, owner, predicate)))
)

/**
 * Replaces the value of the current Scope's entry under `key` (unique
 * registries only) and returns `[new, old]`; `None` when the key is free or
 * held by another Scope. Listeners are not told.
 *
 * **Example** (Counting in place)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<string, number>({ keys: "unique" })
 *   yield* Registry.register(registry, "hits", 1)
 *   return yield* Registry.updateValue(registry, "hits", (n) => n + 1)
 * }).pipe(Effect.scoped)
 * // => Option.some([2, 1])
 * ```
 *
 * @category registration
 * @since 0.1.0
 */
export const updateValue: {
  <K, V>(
    key: K,
    f: (value: V) => V
  ): (self: Registry<K, V, "unique">) => Effect.Effect<Option.Option<readonly [V, V]>, never, Scope.Scope>
  <K, V>(
    self: Registry<K, V, "unique">,
    key: K,
    f: (value: V) => V
  ): Effect.Effect<Option.Option<readonly [V, V]>, never, Scope.Scope>
} = dual(
  3,
  <K, V>(
    self: Registry<K, V, "unique">,
    key: K,
    f: (value: V) => V
  ): Effect.Effect<Option.Option<readonly [V, V]>, never, Scope.Scope> =>
    withOwner((owner) => Effect.sync(() => Option.fromUndefinedOr(internal.updateValue(stateOf(self), key, owner, f))))
)

// ---------------------------------------------------------------------------
// reads

/**
 * The synchronous twin of {@link lookup}: the live entries under `key`
 * (for a unique registry, zero or one). Costs about what a `Map.get` costs for
 * primitive keys; the returned array must not be mutated.
 *
 * @category reads
 * @since 0.1.0
 */
export const lookupUnsafe: {
  <K>(key: K): <V, Kind extends Keys>(self: Registry<K, V, Kind>) => ReadonlyArray<Entry<K, V>>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): ReadonlyArray<Entry<K, V>>
} = dual(2, <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): ReadonlyArray<Entry<K, V>> =>
  internal.lookup((self as unknown as RegistryImpl<K, V>).state, key)
)

/**
 * The live entries under `key`: never one whose owner's Scope has closed, nor
 * a via name whose child is still starting. Duplicate registries return them
 * in registration order.
 *
 * **Example** (Finding a session)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<string, string>({ keys: "unique" })
 *   yield* Registry.register(registry, "alice", "session-1")
 *   const entries = yield* Registry.lookup(registry, "alice")
 *   return entries.map((e) => e.value)
 * }).pipe(Effect.scoped)
 * // => ["session-1"]
 * ```
 *
 * @category reads
 * @since 0.1.0
 */
export const lookup: {
  <K>(key: K): <V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<ReadonlyArray<Entry<K, V>>>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): Effect.Effect<ReadonlyArray<Entry<K, V>>>
} = dual(2, <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): Effect.Effect<ReadonlyArray<Entry<K, V>>> =>
  Effect.sync(() => internal.lookup(stateOf(self), key))
)

/**
 * The synchronous twin of {@link whereis}: the value under `key`, or
 * `undefined`.
 *
 * @category reads
 * @since 0.1.0
 */
export const whereisUnsafe: {
  <K>(key: K): <V, Kind extends Keys>(self: Registry<K, V, Kind>) => V | undefined
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): V | undefined
} = dual(2, <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): V | undefined => {
  const entries = internal.lookup(stateOf(self), key)
  return entries.length === 0 ? undefined : entries[0]!.value
})

/**
 * The value registered under `key` (for a via-named child: the current
 * incarnation's handle), or `None`. For a duplicate registry, the first live
 * entry's value. Elixir: `whereis_name`.
 *
 * **Example** (Resolving a name)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<string, number>({ keys: "unique" })
 *   yield* Registry.register(registry, "port", 8080)
 *   return yield* Registry.whereis(registry, "port")
 * }).pipe(Effect.scoped)
 * // => Option.some(8080)
 * ```
 *
 * @category reads
 * @since 0.1.0
 */
export const whereis: {
  <K>(key: K): <V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<Option.Option<V>>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): Effect.Effect<Option.Option<V>>
} = dual(2, <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): Effect.Effect<Option.Option<V>> =>
  Effect.sync(() => {
    const entries = internal.lookup(stateOf(self), key)
    return entries.length === 0 ? Option.none() : Option.some(entries[0]!.value)
  })
)

/**
 * The keys `owner` holds (a key repeats once per entry in a duplicate
 * registry); empty when the owner's Scope has closed.
 *
 * **Example** (Listing a Scope's keys)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<string, number>({ keys: "duplicate" })
 *   yield* Registry.register(registry, "a", 1)
 *   yield* Registry.register(registry, "a", 2)
 *   return yield* Registry.keys(registry, yield* Effect.scope)
 * }).pipe(Effect.scoped)
 * // => ["a", "a"]
 * ```
 *
 * @category reads
 * @since 0.1.0
 */
export const keys: {
  (owner: Scope.Scope): <K, V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<ReadonlyArray<K>>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, owner: Scope.Scope): Effect.Effect<ReadonlyArray<K>>
} = dual(
  2,
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, owner: Scope.Scope): Effect.Effect<ReadonlyArray<K>> =>
    Effect.sync(() => internal.ownerEntries(stateOf(self), owner).map((e) => e.key))
)

/**
 * The values `owner` registered under `key` (for a unique registry, zero or
 * one).
 *
 * @category reads
 * @since 0.1.0
 */
export const values: {
  <K>(key: K, owner: Scope.Scope): <V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<ReadonlyArray<V>>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K, owner: Scope.Scope): Effect.Effect<ReadonlyArray<V>>
} = dual(
  3,
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K, owner: Scope.Scope): Effect.Effect<ReadonlyArray<V>> =>
    Effect.sync(() => internal.lookup(stateOf(self), key).flatMap((e) => (e.owner === owner ? [e.value] : [])))
)

/**
 * The synchronous twin of {@link count}.
 *
 * @category reads
 * @since 0.1.0
 */
export const countUnsafe = <K, V, Kind extends Keys>(self: Registry<K, V, Kind>): number => stateOf(self).count

/**
 * The number of entries, all keys and owners together (a duplicate key counts
 * once per entry). Constant time; like Elixir's, it may still include the
 * entries of an owner whose Scope is closing and whose registry finalizer has
 * not run yet.
 *
 * @category reads
 * @since 0.1.0
 */
export const count = <K, V, Kind extends Keys>(self: Registry<K, V, Kind>): Effect.Effect<number> =>
  Effect.sync(() => stateOf(self).count)

/**
 * The live entries under `key` whose value satisfies `predicate` (Elixir's
 * `match`, with a typed predicate in place of a match spec; the key itself is
 * always compared literally).
 *
 * **Example** (Filtering by value)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const topics = yield* Registry.make<string, { readonly admin: boolean }>({ keys: "duplicate" })
 *   yield* Registry.register(topics, "room", { admin: true })
 *   yield* Registry.register(topics, "room", { admin: false })
 *   const admins = yield* Registry.match(topics, "room", (v) => v.admin)
 *   return admins.length
 * }).pipe(Effect.scoped)
 * // => 1
 * ```
 *
 * @category reads
 * @since 0.1.0
 */
export const match: {
  <K, V, W extends V>(
    key: K,
    refinement: (value: V) => value is W
  ): <Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<ReadonlyArray<Entry<K, W>>>
  <K, V>(
    key: K,
    predicate: (value: V) => boolean
  ): <Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<ReadonlyArray<Entry<K, V>>>
  <K, V, Kind extends Keys, W extends V>(
    self: Registry<K, V, Kind>,
    key: K,
    refinement: (value: V) => value is W
  ): Effect.Effect<ReadonlyArray<Entry<K, W>>>
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    key: K,
    predicate: (value: V) => boolean
  ): Effect.Effect<ReadonlyArray<Entry<K, V>>>
} = dual(
  3,
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    key: K,
    predicate: (value: V) => boolean
  ): Effect.Effect<ReadonlyArray<Entry<K, V>>> =>
    Effect.sync(() => internal.lookup(stateOf(self), key).filter((e) => predicate(e.value)))
)

/**
 * The number of live entries under `key` whose value satisfies `predicate`.
 *
 * @category reads
 * @since 0.1.0
 */
export const countMatch: {
  <K, V>(
    key: K,
    predicate: (value: V) => boolean
  ): <Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<number>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K, predicate: (value: V) => boolean): Effect.Effect<number>
} = dual(
  3,
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    key: K,
    predicate: (value: V) => boolean
  ): Effect.Effect<number> =>
    Effect.sync(() => {
      let n = 0
      for (const e of internal.lookup(stateOf(self), key)) if (predicate(e.value)) n++
      return n
    })
)

/**
 * Every live entry, of every key, that satisfies `predicate` (Elixir's
 * `select`, with a typed predicate over the whole entry in place of a match
 * spec; project the result with `Array.map`). No particular order.
 *
 * **Example** (All sessions of one tenant)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<readonly [string, number], string>({ keys: "unique" })
 *   yield* Registry.register(registry, ["acme", 1], "a")
 *   yield* Registry.register(registry, ["acme", 2], "b")
 *   yield* Registry.register(registry, ["other", 1], "c")
 *   const rows = yield* Registry.select(registry, (e) => e.key[0] === "acme")
 *   return rows.map((e) => e.value).sort()
 * }).pipe(Effect.scoped)
 * // => ["a", "b"]
 * ```
 *
 * @category reads
 * @since 0.1.0
 */
export const select: {
  <K, V, B extends Entry<K, V>>(
    refinement: (entry: Entry<K, V>) => entry is B
  ): <Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<ReadonlyArray<B>>
  <K, V>(
    predicate: (entry: Entry<K, V>) => boolean
  ): <Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<ReadonlyArray<Entry<K, V>>>
  <K, V, Kind extends Keys, B extends Entry<K, V>>(
    self: Registry<K, V, Kind>,
    refinement: (entry: Entry<K, V>) => entry is B
  ): Effect.Effect<ReadonlyArray<B>>
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    predicate?: (entry: Entry<K, V>) => boolean
  ): Effect.Effect<ReadonlyArray<Entry<K, V>>>
} = dual(
  (args) => isRegistry(args[0]),
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    predicate?: (entry: Entry<K, V>) => boolean
  ): Effect.Effect<ReadonlyArray<Entry<K, V>>> =>
    Effect.sync(() => {
      const out: Array<Entry<K, V>> = []
      internal.forEachLive(stateOf(self), (e) => {
        if (predicate === undefined || predicate(e)) out.push(e)
      })
      return out
    })
)

/**
 * The number of live entries that satisfy `predicate` (all of them when
 * absent). Elixir: `count_select`.
 *
 * @category reads
 * @since 0.1.0
 */
export const countSelect: {
  <K, V>(
    predicate: (entry: Entry<K, V>) => boolean
  ): <Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<number>
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    predicate?: (entry: Entry<K, V>) => boolean
  ): Effect.Effect<number>
} = dual(
  (args) => isRegistry(args[0]),
  <K, V, Kind extends Keys>(
    self: Registry<K, V, Kind>,
    predicate?: (entry: Entry<K, V>) => boolean
  ): Effect.Effect<number> =>
    Effect.sync(() => {
      let n = 0
      internal.forEachLive(stateOf(self), (e) => {
        if (predicate === undefined || predicate(e)) n++
      })
      return n
    })
)

/**
 * Calls `f` with every live entry under `key`, once, in the caller's fiber;
 * does not call it when there are none. The owners are not involved unless
 * `f` talks to them.
 *
 * **Details**
 *
 * A failure of `f` is the failure of `dispatch`. To reach every entry even
 * when one of them fails, handle errors inside `f` (as Elixir's docs suggest
 * wrapping each send).
 *
 * **Example** (Broadcasting to a topic)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const topics = yield* Registry.make<string, (msg: string) => void>({ keys: "duplicate" })
 *   const seen: Array<string> = []
 *   yield* Registry.register(topics, "news", (m) => seen.push(`a:${m}`))
 *   yield* Registry.register(topics, "news", (m) => seen.push(`b:${m}`))
 *   yield* Registry.dispatch(topics, "news", (entries) =>
 *     Effect.sync(() => entries.forEach((e) => e.value("hi")))
 *   )
 *   return seen
 * }).pipe(Effect.scoped)
 * // => ["a:hi", "b:hi"]
 * ```
 *
 * @category reads
 * @since 0.1.0
 */
export const dispatch: {
  <K, V, E, R>(
    key: K,
    f: (entries: ReadonlyArray<Entry<K, V>>) => Effect.Effect<unknown, E, R>
  ): <Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<void, E, R>
  <K, V, Kind extends Keys, E, R>(
    self: Registry<K, V, Kind>,
    key: K,
    f: (entries: ReadonlyArray<Entry<K, V>>) => Effect.Effect<unknown, E, R>
  ): Effect.Effect<void, E, R>
} = dual(
  3,
  <K, V, Kind extends Keys, E, R>(
    self: Registry<K, V, Kind>,
    key: K,
    f: (entries: ReadonlyArray<Entry<K, V>>) => Effect.Effect<unknown, E, R>
  ): Effect.Effect<void, E, R> =>
    Effect.suspend(() => {
      const entries = internal.lookup(stateOf(self), key)
      return entries.length === 0 ? Effect.void : Effect.asVoid(f(entries))
    })
)

// ---------------------------------------------------------------------------
// metadata

/**
 * The registry metadata stored under `key` (set at {@link make} with `meta`
 * or by {@link putMeta}). Metadata keys compare structurally, like entry keys.
 *
 * **Example** (Reading and writing metadata)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<string, string>({ keys: "unique", meta: { region: "eu" } })
 *   yield* Registry.putMeta(registry, "owner", "ops")
 *   return [yield* Registry.meta(registry, "region"), yield* Registry.meta(registry, "owner")]
 * }).pipe(Effect.scoped)
 * // => [Option.some("eu"), Option.some("ops")]
 * ```
 *
 * @category metadata
 * @since 0.1.0
 */
export const meta: {
  (key: unknown): <K, V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<Option.Option<unknown>>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: unknown): Effect.Effect<Option.Option<unknown>>
} = dual(
  2,
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: unknown): Effect.Effect<Option.Option<unknown>> =>
    Effect.sync(() => {
      const found = KeyMap.get(stateOf(self).meta, key)
      return found === undefined ? Option.none() : Option.some(found.value)
    })
)

/**
 * Stores registry metadata `value` under `key`, replacing any previous value.
 *
 * @category metadata
 * @since 0.1.0
 */
export const putMeta: {
  (key: unknown, value: unknown): <K, V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<void>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: unknown, value: unknown): Effect.Effect<void>
} = dual(3, <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: unknown, value: unknown): Effect.Effect<void> =>
  Effect.sync(() => KeyMap.set(stateOf(self).meta, key, { value }))
)

/**
 * Removes registry metadata stored under `key`, if any.
 *
 * @category metadata
 * @since 0.1.0
 */
export const deleteMeta: {
  (key: unknown): <K, V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<void>
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: unknown): Effect.Effect<void>
} = dual(2, <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: unknown): Effect.Effect<void> =>
  Effect.sync(() => {
    KeyMap.remove(stateOf(self).meta, key)
  })
)

// ---------------------------------------------------------------------------
// locks

/**
 * Runs `effect` while holding `lockKey`: at most one holder per key at a time,
 * waiters served first come, first served. Elixir: `Registry.lock/3`.
 *
 * **When to use**
 *
 * Use to serialize work per entity (one migration per account, one refresh
 * per cache key) without starting a process for it.
 *
 * **Details**
 *
 * - Lock keys are a namespace of their own (they are not registry keys) and
 *   compare structurally.
 * - The lock is released when `effect` ends for any reason: success, failure,
 *   defect or interruption of the holder.
 * - A waiter that is interrupted leaves the queue; the next one is served.
 *
 * **Example** (Serializing two updates of one account)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<string, number>({ keys: "unique" })
 *   const log: Array<string> = []
 *   const update = (who: string) =>
 *     Registry.lock(registry, ["account", 7], Effect.gen(function* () {
 *       log.push(`${who} in`)
 *       yield* Effect.yieldNow
 *       log.push(`${who} out`)
 *     }))
 *   yield* Effect.all([update("a"), update("b")], { concurrency: "unbounded" })
 *   return log
 * }).pipe(Effect.scoped)
 * // => ["a in", "a out", "b in", "b out"]
 * ```
 *
 * @category locks
 * @since 0.1.0
 */
export const lock: {
  <A, E, R>(
    lockKey: unknown,
    effect: Effect.Effect<A, E, R>
  ): <K, V, Kind extends Keys>(self: Registry<K, V, Kind>) => Effect.Effect<A, E, R>
  <K, V, Kind extends Keys, A, E, R>(
    self: Registry<K, V, Kind>,
    lockKey: unknown,
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R>
} = dual(
  3,
  <K, V, Kind extends Keys, A, E, R>(
    self: Registry<K, V, Kind>,
    lockKey: unknown,
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    const state = stateOf(self)
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(internal.lockAcquire(state, lockKey)), () =>
        Effect.onExit(restore(effect), () => Effect.sync(() => internal.lockRelease(state, lockKey)))
      )
    )
  }
)

// ---------------------------------------------------------------------------
// listeners

/**
 * Subscribes now, for the length of the current Scope, and returns the
 * stream of every later {@link Event}, in the order the changes happened.
 *
 * **When to use**
 *
 * Use to observe registrations (Elixir's `:listeners`): presence, metrics,
 * cache invalidation. Subscribing before returning means no event that
 * happens after `listen` is missed, however late the stream is run.
 *
 * **Details**
 *
 * The buffer is unbounded: a slow consumer costs memory, not lost events.
 * The stream ends when the registry closes (after the `"shutdown"` events).
 * Every removal is announced, including those caused by an owner's exit.
 *
 * **Example** (Watching registrations)
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* Registry.make<string, number>({ keys: "unique" })
 *   const events = yield* Registry.listen(registry)
 *   yield* Effect.scoped(Registry.register(registry, "a", 1))
 *   return yield* events.pipe(Stream.take(2), Stream.map((e) => e._tag), Stream.runCollect)
 * }).pipe(Effect.scoped)
 * // => ["Registered", "Unregistered"]
 * ```
 *
 * @category listeners
 * @since 0.1.0
 */
export const listen = <K, V, Kind extends Keys>(
  self: Registry<K, V, Kind>
): Effect.Effect<Stream.Stream<Event<K, V>>, never, Scope.Scope> =>
  Effect.uninterruptible(
    Effect.flatMap(Queue.make<Event<K, V>, Cause.Done>(), (queue) => {
      const state = stateOf(self)
      if (!state.open) Queue.endUnsafe(queue)
      else state.listeners.add(queue as Queue.Queue<Event<K, V>, Cause.Done>)
      return Effect.as(
        Effect.addFinalizer(() =>
          Effect.sync(() => {
            state.listeners.delete(queue as Queue.Queue<Event<K, V>, Cause.Done>)
            Queue.endUnsafe(queue)
          })
        ),
        Stream.fromQueue(queue)
      )
    })
  )

/**
 * The stream of {@link Event}s from the moment it starts running (see
 * {@link listen} to subscribe before running it).
 *
 * @category listeners
 * @since 0.1.0
 */
export const events = <K, V, Kind extends Keys>(self: Registry<K, V, Kind>): Stream.Stream<Event<K, V>> =>
  Stream.unwrap(listen(self))

// ---------------------------------------------------------------------------
// via names

/**
 * Names a child: wraps `spec` so that every incarnation registers `key` in a
 * unique registry, with the incarnation's handle as the value, for exactly as
 * long as that incarnation lives. Elixir: `name: {:via, Registry, {registry, key}}`.
 *
 * **When to use**
 *
 * Use for children that callers must reach across restarts: a session per
 * user, a worker per account. Callers resolve the name with {@link whereis} or
 * {@link lookup} each time instead of holding a `Child` (whose handle dies
 * with its incarnation).
 *
 * **Details**
 *
 * - The name is reserved *before* the spec's `start` runs and is invisible
 *   to reads until `start` has succeeded; then it holds the handle.
 * - If the name is held by a running child, `start` fails with
 *   `AlreadyStarted` carrying that child's handle, and the spec's own `start`
 *   never runs (so `startChild` fails with it and nothing is left behind).
 * - If it is held by a child still starting, this start waits for that one:
 *   `AlreadyStarted` when it succeeds; when it fails, this start takes the
 *   name and runs. Of two racing starts exactly one runs.
 * - When the incarnation ends (any exit), its Scope closes and the name is
 *   freed before the supervisor can restart it; the restarted incarnation
 *   registers it again with its new handle.
 * - Fails with `RegistryClosed` if the registry has closed, and with
 *   `InvalidOptions` for a duplicate registry.
 *
 * **Example** (Starting a child under a name)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor, Registry } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const sessions = yield* Registry.make<string, string>({ keys: "unique" })
 *   const sup = yield* DynamicSupervisor.make()
 *   const spec = ChildSpec.make({ start: Effect.succeed("alice's session") })
 *   yield* DynamicSupervisor.startChild(sup, Registry.via(sessions, "alice", spec))
 *   const again = yield* Effect.flip(DynamicSupervisor.startChild(sup, Registry.via(sessions, "alice", spec)))
 *   return [again._tag, yield* Registry.whereis(sessions, "alice")]
 * }).pipe(Effect.scoped)
 * // => ["AlreadyStarted", Option.some("alice's session")]
 * ```
 *
 * @category via names
 * @since 0.1.0
 */
export const via: {
  <K, A>(
    registry: Registry<K, A, "unique">,
    key: K
  ): <E, R>(spec: ChildSpec.ChildSpec<A, E, R>) => ChildSpec.ChildSpec<A, E | ViaError<A>, R>
  <K, A, E, R>(
    registry: Registry<K, A, "unique">,
    key: K,
    spec: ChildSpec.ChildSpec<A, E, R>
  ): ChildSpec.ChildSpec<A, E | ViaError<A>, R>
} = ((...args: ReadonlyArray<any>) =>
  args.length >= 3
    ? named(args[0], args[1], args[2])
    : (spec: ChildSpec.ChildSpec<unknown, unknown, unknown>) => named(args[0], args[1], spec)) as any

/**
 * The errors a via-named start adds to the spec's own.
 *
 * @category via names
 * @since 0.1.0
 */
export type ViaError<A> = AlreadyStarted<A> | RegistryClosed | InvalidOptions

const named = <K, A, E, R>(
  registry: Registry<K, A, "unique">,
  key: K,
  spec: ChildSpec.ChildSpec<A, E, R>
): ChildSpec.ChildSpec<A, E | ViaError<A>, R> =>
  ({ ...spec, start: viaStart(registry, key, spec.start) }) as ChildSpec.ChildSpec<A, E | ViaError<A>, R>

const viaStart = <K, A, E, R>(
  registry: Registry<K, A, "unique">,
  key: K,
  start: Effect.Effect<A, E, R | Scope.Scope>
): Effect.Effect<A, E | ViaError<A>, R | Scope.Scope> => {
  const state = stateOf(registry)
  // reserve the name (synchronously), then run the spec's start, then give the name its handle
  const attempt = (owner: Scope.Scope): Effect.Effect<A, E | ViaError<A>, R | Scope.Scope> => {
    if (!state.unique) {
      return Effect.fail(invalid("keys", "duplicate", 'a "unique" registry (via names need unique keys)'))
    }
    const r = internal.register(state, key, new internal.Pending() as unknown as A, owner)
    if (r === internal.CLOSED) return Effect.fail(new RegistryClosed())
    if (r instanceof internal.Conflict) {
      const current = r.entry
      if (!internal.isPending(current)) {
        return Effect.fail(new AlreadyStarted({ key, child: current.value }))
      }
      // Another start holds the name: wait until it succeeds or gives the name up, then try again.
      return Effect.andThen(waitFor(current.value as unknown as internal.Pending), () => attempt(owner))
    }
    return Effect.flatMap(start, (handle) =>
      internal.fulfill(state, r, handle) === undefined && !state.open
        ? Effect.fail(new RegistryClosed())
        : Effect.succeed(handle)
    )
  }
  return Effect.withFiber((fiber) => attempt(Context.getUnsafe(fiber.context, Scope.Scope)))
}

const waitFor = (pending: internal.Pending): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (pending.settled) return resume(Effect.void)
    const wake = () => resume(Effect.void)
    ;(pending.waiters ??= new Set()).add(wake)
    return Effect.sync(() => {
      pending.waiters?.delete(wake)
    })
  })

const NameTypeId = "~effect-otp/Registry/Name" as const

/**
 * A child's name in a registry: Elixir's `{:via, Registry, {registry, key}}`
 * as a value, for operations that act on the child registered under it, such
 * as `DynamicSupervisor.terminateChild(sup, Registry.name(registry, key))`.
 *
 * @category models
 * @since 0.2.0
 */
export interface Name<in out K = unknown> {
  readonly [NameTypeId]: typeof NameTypeId
  readonly registry: Registry<K, unknown, "unique">
  readonly key: K
}

/**
 * The name of the child registered under `key` (see {@link Name}).
 *
 * **Example** (Stopping a session by its user id)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor, Registry } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const registry = yield* Registry.make<string, string>({ keys: "unique" })
 *   const sup = yield* DynamicSupervisor.make()
 *   yield* DynamicSupervisor.startChild(sup, Registry.via(registry, "alice", ChildSpec.make({ start: Effect.succeed("alice's session") })))
 *   // the seed's stop_session(user_id): one call, O(1)
 *   yield* DynamicSupervisor.terminateChild(sup, Registry.name(registry, "alice"))
 *   return yield* Registry.whereis(registry, "alice")
 * }).pipe(Effect.scoped)
 * // => Option.none()
 * ```
 *
 * @category constructors
 * @since 0.2.0
 */
export const name = <K, V>(registry: Registry<K, V, "unique">, key: K): Name<K> => ({
  [NameTypeId]: NameTypeId,
  registry: registry as unknown as Registry<K, unknown, "unique">,
  key
})

/**
 * Whether a value is a registry {@link Name}.
 *
 * @category guards
 * @since 0.2.0
 */
export const isName = (u: unknown): u is Name<any> => typeof u === "object" && u !== null && NameTypeId in u

/**
 * The owner of the entry under `key` when it is a child (a name given by
 * {@link via}, or registered from a child's `start`): its current incarnation,
 * with `pid` and `handle`. O(1).
 *
 * @category getters
 * @since 0.2.0
 */
export const whereisChildUnsafe: {
  <K>(key: K): <V, Kind extends Keys>(self: Registry<K, V, Kind>) => ChildRef<V> | undefined
  <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): ChildRef<V> | undefined
} = dual(2, <K, V, Kind extends Keys>(self: Registry<K, V, Kind>, key: K): ChildRef<V> | undefined => {
  const entries = internal.lookup(stateOf(self), key)
  const owner = entries.length === 0 ? undefined : (entries[0]!.owner as unknown as Partial<ChildRef<V>>)
  return owner !== undefined && typeof owner.pid === "number" ? (owner as ChildRef<V>) : undefined
})

/**
 * A child found through the registry: what `DynamicSupervisor.terminateChild`
 * and friends accept.
 *
 * @category models
 * @since 0.2.0
 */
export interface ChildRef<out A> {
  readonly pid: number
  readonly id: string | undefined
  readonly handle: A
}
