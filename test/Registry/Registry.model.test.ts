/**
 * A property test of random register / unregister / owner-exit sequences
 * against a model of the registry (reliability C.4 #47, #50, #52, #54), for
 * both registry kinds and both key shapes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope, Stream } from "effect"
import { Registry } from "effect-otp"
import * as fc from "fast-check"

type Command =
  | { readonly _tag: "register"; readonly owner: number; readonly key: number; readonly value: number }
  | { readonly _tag: "unregister"; readonly owner: number; readonly key: number }
  | { readonly _tag: "unregisterMatch"; readonly owner: number; readonly key: number; readonly below: number }
  | { readonly _tag: "exit"; readonly owner: number; readonly how: "success" | "failure" | "interrupt" }

const OWNERS = 3
const KEYS = 4

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      _tag: fc.constant("register" as const),
      owner: fc.nat(OWNERS - 1),
      key: fc.nat(KEYS - 1),
      value: fc.nat(9)
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({ _tag: fc.constant("unregister" as const), owner: fc.nat(OWNERS - 1), key: fc.nat(KEYS - 1) })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("unregisterMatch" as const),
      owner: fc.nat(OWNERS - 1),
      key: fc.nat(KEYS - 1),
      below: fc.nat(9)
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("exit" as const),
      owner: fc.nat(OWNERS - 1),
      how: fc.constantFrom("success" as const, "failure" as const, "interrupt" as const)
    })
  }
)

interface ModelEntry {
  readonly key: number
  readonly owner: number // owner generation id
  readonly value: number
}

const shapes = [
  { name: "string keys", key: (n: number): unknown => `k${n}` },
  { name: "tuple keys", key: (n: number): unknown => ["k", n] }
] as const

const exitOf = (how: "success" | "failure" | "interrupt") =>
  how === "success" ? Exit.void : how === "failure" ? Exit.fail("crash") : Exit.interrupt(1)

const run = (kind: Registry.Keys, toKey: (n: number) => unknown, commands: ReadonlyArray<Command>) =>
  Effect.gen(function* () {
    const registry = yield* Registry.make<unknown, number>({ keys: kind })
    const events = yield* Registry.listen(registry)
    // owners[i] is the current Scope of slot i; ids[i] its generation id in the model
    const owners: Array<Scope.Closeable> = []
    const ids: Array<number> = []
    const idOf = new Map<Scope.Scope, number>()
    let nextId = 0
    const fresh = (i: number) =>
      Effect.map(Scope.make(), (s) => {
        owners[i] = s
        ids[i] = nextId++
        idOf.set(s, ids[i]!)
      })
    for (let i = 0; i < OWNERS; i++) yield* fresh(i)

    let model: Array<ModelEntry> = []
    const expected: Array<string> = []
    const show = (sign: string, e: ModelEntry) => `${sign}${e.key}/${e.owner}/${e.value}`

    for (const c of commands) {
      const scope = owners[c.owner]!
      const id = ids[c.owner]!
      switch (c._tag) {
        case "register": {
          const r = yield* Effect.result(Scope.provide(Registry.register(registry, toKey(c.key), c.value), scope))
          const holder = model.find((e) => e.key === c.key)
          if (kind === "unique" && holder !== undefined) {
            assert.strictEqual(r._tag, "Failure")
            if (r._tag === "Failure" && r.failure._tag === "AlreadyRegistered") {
              assert.strictEqual(r.failure.entry.value, holder.value)
              assert.strictEqual(idOf.get(r.failure.entry.owner), holder.owner)
            }
          } else {
            assert.strictEqual(r._tag, "Success")
            const e = { key: c.key, owner: id, value: c.value }
            model.push(e)
            expected.push(show("+", e))
          }
          break
        }
        case "unregister":
        case "unregisterMatch": {
          const predicate = c._tag === "unregisterMatch" ? (v: number) => v < c.below : undefined
          yield* Scope.provide(
            predicate === undefined
              ? Registry.unregister(registry, toKey(c.key))
              : Registry.unregisterMatch(registry, toKey(c.key), predicate),
            scope
          )
          const removed = model.filter(
            (e) => e.key === c.key && e.owner === id && (predicate === undefined || predicate(e.value))
          )
          for (const e of removed) expected.push(show("-", e))
          model = model.filter((e) => !removed.includes(e))
          break
        }
        case "exit": {
          yield* Scope.close(scope, exitOf(c.how))
          const removed = model.filter((e) => e.owner === id)
          for (const e of removed) expected.push(show("-", e))
          model = model.filter((e) => e.owner !== id)
          yield* fresh(c.owner)
          break
        }
      }
      // after every step the registry agrees with the model
      assert.strictEqual(yield* Registry.count(registry), model.length)
      for (let key = 0; key < KEYS; key++) {
        const got = (yield* Registry.lookup(registry, toKey(key))).map((e) => `${idOf.get(e.owner)}/${e.value}`)
        const want = model.filter((e) => e.key === key).map((e) => `${e.owner}/${e.value}`)
        assert.deepStrictEqual(got, want)
      }
      for (let i = 0; i < OWNERS; i++) {
        const got = (yield* Registry.keys(registry, owners[i]!)).map((key) => JSON.stringify(key)).sort()
        const want = model
          .filter((e) => e.owner === ids[i])
          .map((e) => JSON.stringify(toKey(e.key)))
          .sort()
        assert.deepStrictEqual(got, want)
      }
    }
    // every owner that holds nothing carries no registry finalizer (C.4 #54)
    for (let i = 0; i < OWNERS; i++) {
      const state = owners[i]!.state
      const holds = model.some((e) => e.owner === ids[i])
      assert.strictEqual(state._tag === "Open", holds)
    }
    const seen = yield* events.pipe(Stream.take(expected.length), Stream.runCollect)
    assert.deepStrictEqual(
      seen.map((e) => `${e._tag === "Registered" ? "+" : "-"}${keyIndex(e.key)}/${idOf.get(e.owner)}/${e.value}`),
      expected
    )
    for (const s of owners) yield* Scope.close(s, Exit.void)
    assert.strictEqual(yield* Registry.count(registry), 0)
  }).pipe(Effect.scoped)

const keyIndex = (key: unknown): number =>
  typeof key === "string" ? Number(key.slice(1)) : (key as [string, number])[1]

describe("Registry model", () => {
  for (const kind of ["unique", "duplicate"] as const) {
    for (const shape of shapes) {
      it(`random register/unregister/exit sequences agree with the model (${kind}, ${shape.name}; C.4 #47, #52, #54)`, () => {
        fc.assert(
          fc.property(fc.array(command, { maxLength: 40 }), (commands) => {
            Effect.runSync(run(kind, shape.key, commands))
          }),
          { numRuns: 150 }
        )
      })
    }
  }
})
