/**
 * Registry: Elixir's registry_test.exs, registry/unique_test.exs and
 * registry/duplicate_test.exs cases marked Y/A in otp-semantics §9.3–9.5
 * (cited as T-REG #n, U #n, D #n) and reliability scenarios C.4 #47–#57.
 *
 * Every behaviour runs for both key shapes (primitive strings and structural
 * tuples), and the shared ones for both registry kinds (reliability C.4 #57;
 * there are no partitions, see the README).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Scope, Stream } from "effect"
import { Registry } from "effect-otp"

type Key = string | readonly [string, number]

/** Two key shapes: the primitive fast path and structural tuples compared with Equal. */
const keyShapes = [
  { name: "string keys", key: (s: string, n = 0): Key => `${s}:${n}` },
  { name: "tuple keys", key: (s: string, n = 0): Key => [s, n] as const }
] as const

const kinds = ["unique", "duplicate"] as const

/** A separate owner (Elixir: another process): a Scope we close by hand. */
const owner = Scope.make()

/** Runs `effect` as `scope`'s owner. */
const as =
  (scope: Scope.Scope) =>
  <A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Effect.Effect<A, E> =>
    Scope.provide(effect, scope)

const values = <K, V>(entries: ReadonlyArray<Registry.Entry<K, V>>) => entries.map((e) => e.value)

/** The number of finalizers a Scope currently holds (0 when it holds none). */
const finalizerCount = (scope: Scope.Scope): number => {
  const state = scope.state
  if (state._tag !== "Open") return 0
  return state.finalizers !== undefined ? state.finalizers.size : state.finalizer !== undefined ? 1 : 0
}

for (const shape of keyShapes) {
  const k = shape.key

  describe(`make (${shape.name})`, () => {
    it.effect("rejects an unknown key kind with InvalidOptions naming field and value (D #30)", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Registry.make({ keys: "triple" as any }))
        assert.strictEqual(error._tag, "InvalidOptions")
        assert.strictEqual(error.field, "keys")
        assert.strictEqual(error.value, "triple")
        const bad = yield* Effect.flip(Registry.make({ keys: "unique", meta: 5 as any }))
        assert.strictEqual(bad.field, "meta")
      }).pipe(Effect.scoped)
    )

    it.effect("closing the registry removes every entry, detaches every owner and ends listeners", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const registry = yield* Scope.provide(Registry.make<Key, number>({ keys: "unique" }), scope)
        const o = yield* owner
        const events = yield* Scope.provide(Registry.listen(registry), o)
        yield* as(o)(Registry.register(registry, k("a"), 1))
        assert.strictEqual(finalizerCount(o), 2) // the listener and the registry link
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(Registry.countUnsafe(registry), 0)
        assert.deepStrictEqual(Registry.lookupUnsafe(registry, k("a")), [])
        assert.strictEqual(finalizerCount(o), 1) // only the listener's
        const error = yield* Effect.flip(as(o)(Registry.register(registry, k("b"), 2)))
        assert.strictEqual(error._tag, "RegistryClosed")
        const seen = yield* Stream.runCollect(events)
        assert.deepStrictEqual(
          seen.map((e) => (e._tag === "Unregistered" ? `${e._tag}:${e.reason}` : e._tag)),
          ["Registered", "Unregistered:shutdown"]
        )
      })
    )
  })

  for (const kind of kinds) {
    const label = `${kind}, ${shape.name}`

    describe(`count (${label})`, () => {
      it.effect("counts 0 keys in an empty registry (U #2, D #2)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          assert.strictEqual(yield* Registry.count(registry), 0)
          assert.strictEqual(Registry.countUnsafe(registry), 0)
        }).pipe(Effect.scoped)
      )

      it.effect("counts one per entry (U #3, D #3)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          yield* Registry.register(registry, k("hello"), "a")
          yield* Registry.register(registry, k("world"), "b")
          if (kind === "duplicate") yield* Registry.register(registry, k("hello"), "c")
          assert.strictEqual(yield* Registry.count(registry), kind === "duplicate" ? 3 : 2)
        }).pipe(Effect.scoped)
      )
    })

    describe(`register (${label})`, () => {
      it.effect(
        "entries are removed the moment the owner's Scope closes, on every kind of exit (T-REG #1; C.4 #47)",
        () =>
          Effect.gen(function* () {
            const registry = yield* Registry.make<Key, string>({ keys: kind })
            const exits = [Exit.void, Exit.fail("boom"), Exit.die(new Error("defect")), Exit.interrupt(1)] as const
            for (const exit of exits) {
              const o1 = yield* owner
              const o2 = yield* owner
              yield* as(o1)(Registry.register(registry, k("hello"), "1"))
              yield* as(o2)(Registry.register(registry, k("world"), "2"))
              assert.strictEqual(yield* Registry.count(registry), 2)
              yield* Scope.close(o1, exit)
              yield* Scope.close(o2, exit)
              assert.strictEqual(yield* Registry.count(registry), 0)
              assert.deepStrictEqual(yield* Registry.lookup(registry, k("hello")), [])
              assert.deepStrictEqual(yield* Registry.select(registry), [])
            }
          }).pipe(Effect.scoped)
      )

      it.effect("a fiber's scoped registration ends with the fiber, however it ends (C.4 #47)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          const ok = Effect.scoped(Registry.register(registry, k("a"), "x"))
          const failing = Effect.scoped(Effect.andThen(Registry.register(registry, k("a"), "x"), Effect.fail("no")))
          const dying = Effect.scoped(Effect.andThen(Registry.register(registry, k("a"), "x"), Effect.die("no")))
          yield* ok
          yield* Effect.exit(failing)
          yield* Effect.exit(dying)
          const fiber = yield* Effect.forkChild(
            Effect.scoped(Effect.andThen(Registry.register(registry, k("a"), "x"), Effect.never))
          )
          yield* Effect.yieldNow
          assert.strictEqual(Registry.countUnsafe(registry), 1)
          yield* Fiber.interrupt(fiber)
          assert.strictEqual(Registry.countUnsafe(registry), 0)
        }).pipe(Effect.scoped)
      )

      it.effect(
        "owner bookkeeping: one finalizer after the first key, none after the last (U #20, D #19; C.4 #54)",
        () =>
          Effect.gen(function* () {
            const registry = yield* Registry.make<Key, string>({ keys: kind })
            const o = yield* owner
            assert.strictEqual(finalizerCount(o), 0)
            yield* as(o)(Registry.register(registry, k("a"), "1"))
            assert.strictEqual(finalizerCount(o), 1)
            yield* as(o)(Registry.register(registry, k("b"), "2"))
            assert.strictEqual(finalizerCount(o), 1)
            yield* as(o)(Registry.unregister(registry, k("a")))
            assert.strictEqual(finalizerCount(o), 1)
            yield* as(o)(Registry.unregister(registry, k("b")))
            assert.strictEqual(finalizerCount(o), 0)
            yield* Scope.close(o, Exit.void)
          }).pipe(Effect.scoped)
      )

      it.effect("registering in a Scope that has already closed stores nothing", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          const o = yield* owner
          yield* Scope.close(o, Exit.void)
          yield* as(o)(Registry.register(registry, k("a"), "1"))
          assert.strictEqual(Registry.countUnsafe(registry), 0)
          assert.deepStrictEqual(Registry.lookupUnsafe(registry, k("a")), [])
        }).pipe(Effect.scoped)
      )
    })

    describe(`lookup (${label})`, () => {
      it.effect("finds structurally equal keys and treats pattern-looking keys literally (U #9, D #13, D #32)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<unknown, string>({ keys: kind })
          yield* Registry.register(registry, k("x", 1), "v")
          assert.deepStrictEqual(values(yield* Registry.lookup(registry, k("x", 1))), ["v"])
          assert.deepStrictEqual(values(yield* Registry.lookup(registry, k("x", 2))), [])
          const reserved = ["_", ["$1", 1], ["$$", 2], { b: "b" }]
          for (const key of reserved) yield* Registry.register(registry, key, JSON.stringify(key))
          for (const key of reserved) {
            assert.deepStrictEqual(values(yield* Registry.lookup(registry, key)), [JSON.stringify(key)])
          }
          // a record key is not a pattern over supersets
          assert.deepStrictEqual(yield* Registry.lookup(registry, { b: "b", c: 1 }), [])
          assert.deepStrictEqual(yield* Registry.lookup(registry, {}), [])
        }).pipe(Effect.scoped)
      )

      it.effect("never returns an entry whose owner's Scope has closed, even before cleanup ran (C.4 #55)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          const o = yield* owner
          // A finalizer added after the registration runs before the registry's own (reverse order),
          // so it observes the moment between "Scope closed" and "entries removed".
          yield* as(o)(Registry.register(registry, k("a"), "1"))
          const seen: Array<unknown> = []
          yield* Scope.addFinalizer(
            o,
            Effect.sync(() => {
              seen.push(Registry.lookupUnsafe(registry, k("a")).length, Registry.countUnsafe(registry))
            })
          )
          yield* Scope.close(o, Exit.void)
          // lookup already skips it; count (constant time) still includes it, as documented
          assert.deepStrictEqual(seen, [0, 1])
          assert.strictEqual(Registry.countUnsafe(registry), 0)
        }).pipe(Effect.scoped)
      )
    })

    describe(`keys and values (${label})`, () => {
      it.effect("list the owner's keys and values only (U #4, U #5, D #4, D #5)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          const me = yield* owner
          const other = yield* owner
          yield* as(me)(Registry.register(registry, k("hello"), "a"))
          yield* as(other)(Registry.register(registry, k("world"), "b"))
          if (kind === "duplicate") yield* as(me)(Registry.register(registry, k("hello"), "a"))
          const expectedKeys = kind === "duplicate" ? [k("hello"), k("hello")] : [k("hello")]
          assert.deepStrictEqual(yield* Registry.keys(registry, me), expectedKeys)
          assert.deepStrictEqual(yield* Registry.keys(registry, other), [k("world")])
          assert.deepStrictEqual(
            yield* Registry.values(registry, k("hello"), me),
            kind === "duplicate" ? ["a", "a"] : ["a"]
          )
          assert.deepStrictEqual(yield* Registry.values(registry, k("hello"), other), [])
          yield* Scope.close(other, Exit.void)
          assert.deepStrictEqual(yield* Registry.keys(registry, other), [])
        }).pipe(Effect.scoped)
      )
    })

    describe(`match and countMatch (${label})`, () => {
      it.effect(
        "filter the entries of one key by a typed predicate (U #7, U #8, U #10, U #11, D #11, D #12, D #14, D #15)",
        () =>
          Effect.gen(function* () {
            const registry = yield* Registry.make<Key, { readonly n: number; readonly tag?: string }>({ keys: kind })
            yield* Registry.register(registry, k("a"), { n: 1, tag: "x" })
            if (kind === "duplicate") {
              yield* Registry.register(registry, k("a"), { n: 2 })
              yield* Registry.register(registry, k("a"), { n: 1.5 })
            }
            yield* Registry.register(registry, k("b"), { n: 5, tag: "x" })
            const hasTag = (v: { readonly n: number; readonly tag?: string }): v is { n: number; tag: string } =>
              v.tag !== undefined
            const tagged = yield* Registry.match(registry, k("a"), hasTag)
            assert.deepStrictEqual(
              tagged.map((e) => e.value.tag),
              ["x"]
            )
            assert.strictEqual(
              (yield* Registry.match(registry, k("a"), (v) => v.n > 1)).length,
              kind === "duplicate" ? 2 : 0
            )
            assert.strictEqual(
              yield* Registry.countMatch(registry, k("a"), (v) => v.n >= 1),
              kind === "duplicate" ? 3 : 1
            )
            assert.strictEqual(yield* Registry.countMatch(registry, k("zzz"), () => true), 0)
            // pipeable form
            assert.strictEqual(yield* registry.pipe(Registry.countMatch(k("b"), (v: { n: number }) => v.n === 5)), 1)
          }).pipe(Effect.scoped)
      )
    })

    describe(`select and countSelect (${label})`, () => {
      it.effect("return [] and 0 for an empty registry (U #24, D #22)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, number>({ keys: kind })
          assert.deepStrictEqual(yield* Registry.select(registry), [])
          assert.strictEqual(yield* Registry.countSelect(registry), 0)
        }).pipe(Effect.scoped)
      )

      it.effect(
        "select every entry with key, owner and value, filtered by a predicate over the entry (U #25–#32, D #23–#29, D #33, D #34)",
        () =>
          Effect.gen(function* () {
            const registry = yield* Registry.make<Key, number>({ keys: kind })
            const me = yield* Effect.scope
            yield* Registry.register(registry, k("a"), 1)
            yield* Registry.register(registry, k("b"), 2)
            yield* Registry.register(registry, k("c"), 3)
            const all = yield* Registry.select(registry)
            assert.deepStrictEqual(
              all.map((e) => [e.key, e.value, e.owner === me]).sort((x, y) => (x[1] as number) - (y[1] as number)),
              [
                [k("a"), 1, true],
                [k("b"), 2, true],
                [k("c"), 3, true]
              ]
            )
            const odd = yield* Registry.select(registry, (e) => e.value % 2 === 1)
            assert.deepStrictEqual(odd.map((e) => e.value).sort(), [1, 3])
            // "several clauses" are an `||` of predicates
            const union = (e: Registry.Entry<Key, number>) => e.value === 1 || e.value === 3
            assert.strictEqual(yield* Registry.countSelect(registry, union), 2)
            assert.strictEqual(
              yield* registry.pipe(Registry.countSelect((e: Registry.Entry<Key, number>) => e.value > 1)),
              2
            )
            // keys are matched by equality, never as patterns
            assert.strictEqual(
              yield* Registry.countSelect(registry, (e) => Registry.lookupUnsafe(registry, e.key).length > 0),
              3
            )
          }).pipe(Effect.scoped)
      )
    })

    describe(`dispatch (${label})`, () => {
      it.effect(
        "is not called without entries and is called once with every entry of the key (U #16, D #7; C.4 #51)",
        () =>
          Effect.gen(function* () {
            const registry = yield* Registry.make<Key, string>({ keys: kind })
            const calls: Array<ReadonlyArray<string>> = []
            const collect = (entries: ReadonlyArray<Registry.Entry<Key, string>>) =>
              Effect.sync(() => void calls.push(values(entries)))
            yield* Registry.dispatch(registry, k("a"), collect)
            assert.deepStrictEqual(calls, [])
            yield* Registry.register(registry, k("a"), "1")
            yield* Registry.register(registry, k("other"), "x")
            if (kind === "duplicate") yield* as(yield* owner)(Registry.register(registry, k("a"), "2"))
            yield* Registry.dispatch(registry, k("a"), collect)
            assert.deepStrictEqual(calls, [kind === "duplicate" ? ["1", "2"] : ["1"]])
          }).pipe(Effect.scoped)
      )

      it.effect(
        "runs in the caller and propagates the callback's failure; parallel sends with Effect.forEach (D #8; C.4 #51)",
        () =>
          Effect.gen(function* () {
            const registry = yield* Registry.make<Key, string>({ keys: kind })
            yield* Registry.register(registry, k("a"), "1")
            const error = yield* Effect.flip(Registry.dispatch(registry, k("a"), () => Effect.fail("callback failed")))
            assert.strictEqual(error, "callback failed")
            const reached: Array<string> = []
            yield* Registry.dispatch(registry, k("a"), (entries) =>
              Effect.forEach(entries, (e) => Effect.sync(() => reached.push(e.value)), { concurrency: "unbounded" })
            )
            assert.deepStrictEqual(reached, ["1"])
          }).pipe(Effect.scoped)
      )
    })

    describe(`unregister (${label})`, () => {
      it.effect("removes only the caller's entries under the key (U #17, D #9; C.4 #51)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          const me = yield* Effect.scope
          const other = yield* owner
          yield* Registry.register(registry, k("hello"), "a")
          yield* Registry.register(registry, k("world"), "b")
          if (kind === "duplicate") {
            yield* Registry.register(registry, k("hello"), "c")
            yield* as(other)(Registry.register(registry, k("hello"), "theirs"))
          }
          yield* Registry.unregister(registry, k("hello"))
          assert.deepStrictEqual(yield* Registry.keys(registry, me), [k("world")])
          assert.deepStrictEqual(
            values(yield* Registry.lookup(registry, k("hello"))),
            kind === "duplicate" ? ["theirs"] : []
          )
          // another owner cannot unregister my key
          yield* as(other)(Registry.unregister(registry, k("world")))
          assert.deepStrictEqual(values(yield* Registry.lookup(registry, k("world"))), ["b"])
        }).pipe(Effect.scoped)
      )

      it.effect("with no entries does nothing (U #18, D #10)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          yield* Registry.unregister(registry, k("hello"))
          assert.strictEqual(yield* Registry.count(registry), 0)
        }).pipe(Effect.scoped)
      )
    })

    describe(`unregisterMatch (${label})`, () => {
      it.effect("removes only the caller's entries whose value matches (U #12, U #13, D #16, D #17)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, number>({ keys: kind })
          yield* Registry.register(registry, k("a"), 1)
          if (kind === "duplicate") {
            yield* Registry.register(registry, k("a"), 2)
            yield* Registry.register(registry, k("a"), 3)
          }
          yield* Registry.unregisterMatch(registry, k("a"), (v) => v === 2)
          assert.deepStrictEqual(values(yield* Registry.lookup(registry, k("a"))), kind === "duplicate" ? [1, 3] : [1])
          yield* Registry.unregisterMatch(registry, k("a"), (v) => v > 0)
          assert.deepStrictEqual(yield* Registry.lookup(registry, k("a")), [])
          assert.strictEqual(yield* Registry.count(registry), 0)
        }).pipe(Effect.scoped)
      )
    })

    describe(`listen (${label})`, () => {
      it.effect(
        "delivers Registered and Unregistered events in order, for every kind of removal (U #19, D #18; C.4 #52)",
        () =>
          Effect.gen(function* () {
            const registry = yield* Registry.make<Key, string>({ keys: kind })
            const events = yield* Registry.listen(registry)
            const o = yield* owner
            yield* as(o)(Registry.register(registry, k("a"), "1"))
            yield* as(o)(Registry.register(registry, k("b"), "2"))
            yield* as(o)(Registry.unregister(registry, k("a")))
            yield* as(o)(Registry.register(registry, k("c"), "3"))
            yield* Scope.close(o, Exit.fail("crash"))
            const seen = yield* events.pipe(Stream.take(6), Stream.runCollect)
            assert.deepStrictEqual(
              seen.map((e) => (e._tag === "Registered" ? `+${String(e.value)}` : `-${String(e.value)}:${e.reason}`)),
              ["+1", "+2", "-1:unregister", "+3", "-2:exit", "-3:exit"]
            )
            for (const e of seen) assert.strictEqual(e.owner, o)
          }).pipe(Effect.scoped)
      )

      it.effect("events() subscribes when the stream starts; listen on a closed registry gives an ended stream", () =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const registry = yield* Scope.provide(Registry.make<Key, string>({ keys: kind }), scope)
          const collected = yield* Effect.forkChild(Registry.events(registry).pipe(Stream.take(2), Stream.runCollect))
          yield* Effect.yieldNow
          yield* Effect.scoped(Registry.register(registry, k("a"), "1"))
          const seen = yield* Fiber.join(collected)
          assert.deepStrictEqual(
            seen.map((e) => e._tag),
            ["Registered", "Unregistered"]
          )
          yield* Scope.close(scope, Exit.void)
          const late = yield* Registry.listen(registry)
          assert.deepStrictEqual(yield* Stream.runCollect(late), [])
        }).pipe(Effect.scoped)
      )

      it.effect("a failed registration announces nothing (U #34)", () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: kind })
          const events = yield* Registry.listen(registry)
          yield* Registry.register(registry, k("a"), "1")
          yield* Effect.exit(Registry.register(registry, k("a"), "2"))
          yield* Registry.unregister(registry, k("a"))
          const seen = yield* events.pipe(Stream.take(kind === "duplicate" ? 4 : 2), Stream.runCollect)
          assert.deepStrictEqual(
            seen.map((e) => e._tag),
            kind === "duplicate"
              ? ["Registered", "Registered", "Unregistered", "Unregistered"]
              : ["Registered", "Unregistered"]
          )
        }).pipe(Effect.scoped)
      )
    })
  }

  describe(`register, unique keys (${shape.name})`, () => {
    it.effect(
      "a second registration fails with AlreadyRegistered carrying the owner's entry; nothing grows (U #4, U #5, U #34, U #35; C.4 #48)",
      () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: "unique" })
          const me = yield* Effect.scope
          const other = yield* owner
          const entry = yield* Registry.register(registry, k("hello"), "mine")
          // by myself
          const self = yield* Effect.flip(Registry.register(registry, k("hello"), "again"))
          assert(self._tag === "AlreadyRegistered")
          assert.deepStrictEqual(self.entry, entry)
          assert.strictEqual(self.entry.owner, me)
          // by another owner
          const error = yield* Effect.flip(as(other)(Registry.register(registry, k("hello"), "theirs")))
          assert(error._tag === "AlreadyRegistered")
          assert.strictEqual(error.entry.value, "mine")
          assert.include(error.message, "hello")
          assert.strictEqual(yield* Registry.count(registry), 1)
          assert.deepStrictEqual(yield* Registry.keys(registry, other), [])
          assert.strictEqual(finalizerCount(other), 0) // no bookkeeping left for the rejected owner
        }).pipe(Effect.scoped)
    )

    it.effect(
      "a key whose owner's Scope closed but whose cleanup has not run can be registered again (U #6; C.4 #49)",
      () =>
        Effect.gen(function* () {
          const registry = yield* Registry.make<Key, string>({ keys: "unique" })
          const dead = yield* owner
          yield* as(dead)(Registry.register(registry, k("a"), "old"))
          let during: ReadonlyArray<string> = []
          const next = yield* owner
          // runs while `dead` is closing, before the registry's finalizer for it
          yield* Scope.addFinalizer(
            dead,
            Effect.gen(function* () {
              yield* as(next)(Registry.register(registry, k("a"), "new"))
              during = values(Registry.lookupUnsafe(registry, k("a")))
            }).pipe(Effect.orDie)
          )
          yield* Scope.close(dead, Exit.die("killed"))
          assert.deepStrictEqual(during, ["new"])
          // the late cleanup of `dead` did not remove the new owner's entry
          assert.deepStrictEqual(values(yield* Registry.lookup(registry, k("a"))), ["new"])
          assert.strictEqual(yield* Registry.count(registry), 1)
        }).pipe(Effect.scoped)
    )

    it.effect("1 and 1.0 are the same key in JavaScript; '1' is another (U #14, D #6)", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<unknown, string>({ keys: "unique" })
        yield* Registry.register(registry, [1, "x"], "one")
        assert.strictEqual(
          (yield* Effect.flip(Registry.register(registry, [1.0, "x"], "two")))._tag,
          "AlreadyRegistered"
        )
        yield* Registry.register(registry, ["1", "x"], "string one")
        assert.strictEqual(yield* Registry.count(registry), 2)
      }).pipe(Effect.scoped)
    )

    it.effect("of N concurrent registrations of one key exactly one wins; the others name the winner (C.4 #50)", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<Key, number>({ keys: "unique" })
        const n = 50
        const results = yield* Effect.forEach(
          Array.from({ length: n }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              const o = yield* owner
              yield* Effect.yieldNow
              return yield* Effect.result(as(o)(Registry.register(registry, k("race"), i)))
            }),
          { concurrency: "unbounded" }
        )
        const winners = results.filter((r) => r._tag === "Success")
        assert.strictEqual(winners.length, 1)
        const winner = winners[0]!.success.value
        for (const r of results) {
          if (r._tag === "Failure")
            assert.strictEqual(r.failure._tag === "AlreadyRegistered" && r.failure.entry.value, winner)
        }
        assert.strictEqual(yield* Registry.count(registry), 1)
      }).pipe(Effect.scoped)
    )
  })

  describe(`updateValue (${shape.name})`, () => {
    it.effect("updates the caller's own value only (U #15)", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<Key, number>({ keys: "unique" })
        assert.isTrue(Option.isNone(yield* Registry.updateValue(registry, k("a"), (n) => n + 1)))
        yield* Registry.register(registry, k("a"), 1)
        assert.deepStrictEqual(
          yield* Registry.updateValue(registry, k("a"), (n) => n + 1),
          Option.some([2, 1] as const)
        )
        assert.deepStrictEqual(values(yield* Registry.lookup(registry, k("a"))), [2])
        const other = yield* owner
        assert.isTrue(Option.isNone(yield* as(other)(Registry.updateValue(registry, k("a"), (n) => n + 1))))
        // the updated entry is still removed with its owner
        yield* Registry.unregister(registry, k("a"))
        assert.strictEqual(yield* Registry.count(registry), 0)
      }).pipe(Effect.scoped)
    )
  })

  describe(`meta, putMeta, deleteMeta (${shape.name})`, () => {
    it.effect("read initial metadata and store and delete structural keys", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<Key, number>({ keys: "unique", meta: [[k("custom"), "value"]] })
        assert.deepStrictEqual(yield* Registry.meta(registry, k("custom")), Option.some("value"))
        assert.deepStrictEqual(yield* Registry.meta(registry, k("unknown")), Option.none())
        yield* Registry.putMeta(registry, k("custom"), undefined)
        assert.deepStrictEqual(yield* Registry.meta(registry, k("custom")), Option.some(undefined))
        yield* Registry.deleteMeta(registry, k("custom"))
        assert.deepStrictEqual(yield* Registry.meta(registry, k("custom")), Option.none())
        const fromRecord = yield* Registry.make<Key, number>({ keys: "duplicate", meta: { region: "eu" } })
        assert.deepStrictEqual(yield* Registry.meta(fromRecord, "region"), Option.some("eu"))
      }).pipe(Effect.scoped)
    )
  })
}

describe("Service", () => {
  class Sessions extends Registry.Service<Sessions, string, number>()("test/Sessions", { keys: "unique" }) {}

  it.effect("provides a registry through its layer", () =>
    Effect.gen(function* () {
      const sessions = yield* Sessions
      yield* Effect.scoped(Registry.register(sessions, "a", 1))
      assert.strictEqual(sessions.keys, "unique")
      assert.strictEqual(yield* Registry.count(sessions), 0)
    }).pipe(Effect.provide(Sessions.layer))
  )
})
