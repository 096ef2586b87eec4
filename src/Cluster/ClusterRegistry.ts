/**
 * Names with values across runners: OTP's `Registry` (unique keys) for the
 * children of cluster supervisors.
 *
 * In a cluster the entity id already is a child's name, so you need this
 * only for secondary names, metadata, or to be told when names come and go.
 * A child registers a key from its `init` (or a handler): the entry belongs
 * to that incarnation and is removed when its Scope closes (it stopped,
 * crashed, moved) or when its runner is no longer alive in the engine's
 * runner table. The rows live in the cluster's own database; there is no
 * replicated state to merge, so no registry conflicts to resolve afterwards.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { PersistenceError } from "effect/cluster/ClusterError"
import { AlreadyRegistered } from "./ClusterErrors.ts"
import { CurrentChild } from "./ClusterSupervisor.ts"
import { ClusterStore, processSession, type RegRow } from "./internal/store.ts"

const TypeId = "~effect-otp/ClusterRegistry"

/**
 * A cluster registry: a name and the Schema of its values (they are stored,
 * so they are encoded). Keys are strings.
 *
 * @category models
 * @since 0.1.0
 */
export interface ClusterRegistry<V> {
  readonly [TypeId]: typeof TypeId
  readonly name: string
  readonly value: Schema.Codec<V, any>
}

/**
 * A registered name: its key, its value, the child that owns it and the
 * runner it runs on.
 *
 * @category models
 * @since 0.1.0
 */
export interface Entry<V> {
  readonly key: string
  readonly value: V
  /** The owner, as `supervisor/id`. */
  readonly owner: string
  readonly runner: string
}

/**
 * A change: a key registered, or unregistered (its owner ended or its runner
 * died).
 *
 * @category models
 * @since 0.1.0
 */
export interface Event {
  readonly _tag: "Register" | "Unregister"
  readonly key: string
  readonly owner: string
}

/**
 * Declares a registry. The name must be the same in every process.
 *
 * **Example** (A registry of rooms)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { ClusterRegistry } from "effect-otp/cluster"
 *
 * const Rooms = ClusterRegistry.make("app/Rooms", { value: Schema.Struct({ topic: Schema.String }) })
 * Rooms.name // => "app/Rooms"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <V>(name: string, options: { readonly value: Schema.Codec<V, any> }): ClusterRegistry<V> => ({
  [TypeId]: TypeId,
  name,
  value: options.value
})

const scopeOf = (self: ClusterRegistry<any>) => `registry:${self.name}`

const decode = <V>(self: ClusterRegistry<V>, row: RegRow): Effect.Effect<Entry<V>> =>
  Effect.map(
    Effect.orDie(Schema.decodeUnknownEffect(self.value as Schema.Codec<V, unknown>)(JSON.parse(row.value))),
    (value) => ({ key: row.key, value, owner: row.owner, runner: row.runner })
  )

const event = (self: ClusterRegistry<any>, kind: Event["_tag"], key: string, owner: string) =>
  Effect.gen(function* () {
    const store = yield* ClusterStore
    const at = yield* Clock.currentTimeMillis
    yield* store.appendEvent({ scope: scopeOf(self), kind, id: key, runner: null, incarnation: 0, detail: owner, at })
  })

/**
 * Registers `key` with `value` for the current child (inside its init or a
 * handler). The entry is removed when the Scope closes (the incarnation
 * ends) and no longer listed once its runner is not alive. Fails
 * `AlreadyRegistered` if another live child holds the key; the same child
 * registering again replaces its value.
 *
 * **Example** (Registering from init)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { ClusterRegistry } from "effect-otp/cluster"
 *
 * const Rooms = ClusterRegistry.make("app/Rooms", { value: Schema.String })
 * const inInit = ClusterRegistry.register(Rooms, "lobby", "general chat")
 * Effect.isEffect(inInit) // => true
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const register = <V>(
  self: ClusterRegistry<V>,
  key: string,
  value: V
): Effect.Effect<void, AlreadyRegistered | PersistenceError, CurrentChild | ClusterStore | Scope.Scope> =>
  Effect.gen(function* () {
    const child = yield* CurrentChild
    const store = yield* ClusterStore
    const owner = `${child.supervisor}/${child.id}`
    const encoded = JSON.stringify(
      yield* Effect.orDie(Schema.encodeUnknownEffect(self.value as Schema.Codec<V, unknown>)(value))
    )
    yield* Effect.uninterruptible(
      Effect.gen(function* () {
        const taken = yield* store.regInsert(self.name, key, owner, child.runner, processSession, encoded)
        if (Option.isSome(taken)) {
          return yield* new AlreadyRegistered({ registry: self.name, key, owner: taken.value.owner })
        }
        yield* Effect.addFinalizer(() =>
          store.regDelete(self.name, key, owner, processSession).pipe(
            Effect.flatMap((deleted) => (deleted ? event(self, "Unregister", key, owner) : Effect.void)),
            Effect.ignore
          )
        )
        yield* event(self, "Register", key, owner)
      })
    )
  })

/**
 * Removes the current child's entry for `key` (no-op if it holds none).
 *
 * **Example** (Unregistering)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { ClusterRegistry } from "effect-otp/cluster"
 *
 * const Rooms = ClusterRegistry.make("app/Rooms", { value: Schema.String })
 * Effect.isEffect(ClusterRegistry.unregister(Rooms, "lobby")) // => true
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const unregister = <V>(
  self: ClusterRegistry<V>,
  key: string
): Effect.Effect<void, PersistenceError, CurrentChild | ClusterStore> =>
  Effect.gen(function* () {
    const child = yield* CurrentChild
    const store = yield* ClusterStore
    const owner = `${child.supervisor}/${child.id}`
    if (yield* store.regDelete(self.name, key, owner, processSession)) yield* event(self, "Unregister", key, owner)
  })

/**
 * Every live entry (its owner's runner alive), optionally filtered.
 *
 * **Example** (Rooms about cats)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { ClusterRegistry } from "effect-otp/cluster"
 *
 * const Rooms = ClusterRegistry.make("app/Rooms", { value: Schema.String })
 * const cats = ClusterRegistry.select(Rooms, (entry) => entry.value.includes("cats"))
 * Effect.isEffect(cats) // => true
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const select = <V>(
  self: ClusterRegistry<V>,
  filter?: (entry: Entry<V>) => boolean
): Effect.Effect<ReadonlyArray<Entry<V>>, PersistenceError, ClusterStore> =>
  Effect.gen(function* () {
    const store = yield* ClusterStore
    const rows = yield* store.regList(self.name)
    const entries = yield* Effect.forEach(rows, (row) => decode(self, row))
    return filter === undefined ? entries : entries.filter(filter)
  })

/**
 * The live entry for `key`, if any.
 *
 * **Example** (Looking up)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { ClusterRegistry } from "effect-otp/cluster"
 *
 * const Rooms = ClusterRegistry.make("app/Rooms", { value: Schema.String })
 * Effect.isEffect(ClusterRegistry.lookup(Rooms, "lobby")) // => true
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const lookup = <V>(
  self: ClusterRegistry<V>,
  key: string
): Effect.Effect<Option.Option<Entry<V>>, PersistenceError, ClusterStore> =>
  Effect.map(select(self), (entries) => Option.fromUndefinedOr(entries.find((e) => e.key === key)))

/**
 * How many live entries.
 *
 * **Example** (Counting)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { ClusterRegistry } from "effect-otp/cluster"
 *
 * const Rooms = ClusterRegistry.make("app/Rooms", { value: Schema.String })
 * Effect.isEffect(ClusterRegistry.count(Rooms)) // => true
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const count = <V>(self: ClusterRegistry<V>): Effect.Effect<number, PersistenceError, ClusterStore> =>
  Effect.map(select(self), (entries) => entries.length)

/**
 * Registrations and unregistrations from now on, from every runner (Elixir's
 * registry `listeners`). Each poll (every `pollInterval`, default 250 ms)
 * also removes the entries whose runner is no longer alive, which reports
 * them as `Unregister`.
 *
 * **Example** (Watching)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { ClusterRegistry } from "effect-otp/cluster"
 *
 * const Rooms = ClusterRegistry.make("app/Rooms", { value: Schema.String })
 * const first = ClusterRegistry.listen(Rooms).pipe(Stream.take(1), Stream.runCollect)
 * Effect.isEffect(first) // => true
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const listen = <V>(
  self: ClusterRegistry<V>,
  options?: { readonly pollInterval?: Duration.Input | undefined }
): Stream.Stream<Event, PersistenceError, ClusterStore> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const store = yield* ClusterStore
      let after = yield* store.lastEventSeq(scopeOf(self))
      const interval = options?.pollInterval ?? Duration.millis(250)
      const poll = Effect.gen(function* () {
        while (true) {
          const gone = yield* store.regSweep(self.name)
          for (const row of gone) yield* event(self, "Unregister", row.key, row.owner)
          const rows = yield* store.readEvents(scopeOf(self), after)
          if (rows.length > 0) {
            after = rows[rows.length - 1]!.seq
            return rows.map((row): Event => ({ _tag: row.kind as Event["_tag"], key: row.id, owner: row.detail ?? "" }))
          }
          yield* Effect.sleep(interval)
        }
      })
      return Stream.flattenIterable(Stream.fromEffectRepeat(poll))
    })
  )
