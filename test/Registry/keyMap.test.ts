/**
 * The registry's key table agrees with `Equal.equals` on every kind of key:
 * primitives (fast path), flat tuples (trie of native Maps), and everything
 * else (hash buckets).
 */
import { assert, describe, it } from "@effect/vitest"
import { Data, Equal } from "effect"
import * as fc from "fast-check"
import * as KeyMap from "../../src/Registry/internal/keyMap.ts"

class Point extends Data.Class<{ readonly x: number; readonly y: number }> {}

const primitive = fc.oneof(
  fc.constantFrom<unknown>(0, -0, 1, 1.0, Number.NaN, "1", "", "a", true, false, null, undefined, 1n, "_", "$1"),
  fc.integer({ min: -3, max: 3 }),
  fc.string({ maxLength: 2 })
)
const key: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: primitive },
  { weight: 3, arbitrary: fc.array(primitive, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.array(fc.array(primitive, { maxLength: 2 }), { maxLength: 2 }) },
  { weight: 1, arbitrary: fc.record({ a: primitive, b: fc.option(primitive) }) },
  {
    weight: 1,
    arbitrary: fc
      .record({ x: fc.integer({ min: 0, max: 2 }), y: fc.integer({ min: 0, max: 2 }) })
      .map((p) => new Point(p))
  }
)

type Op =
  | { readonly _tag: "set"; readonly key: unknown; readonly value: number }
  | { readonly _tag: "remove"; readonly key: unknown }
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ _tag: fc.constant("set" as const), key, value: fc.nat(100) }),
  fc.record({ _tag: fc.constant("remove" as const), key })
)

describe("KeyMap", () => {
  it("behaves like a list of entries compared with Equal.equals", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.array(key, { maxLength: 10 }), (ops, probes) => {
        const map = KeyMap.make<unknown, number>()
        let model: Array<[unknown, number]> = []
        for (const o of ops) {
          // keys are rebuilt from JSON-free copies so that equal keys are never the same object
          const k = structuredCloneKey(o.key)
          if (o._tag === "set") {
            KeyMap.set(map, k, o.value)
            const i = model.findIndex(([mk]) => Equal.equals(mk, k))
            if (i < 0) model.push([k, o.value])
            else model[i] = [model[i]![0], o.value]
          } else {
            const removed = KeyMap.remove(map, k)
            const before = model.length
            model = model.filter(([mk]) => !Equal.equals(mk, k))
            assert.strictEqual(removed, model.length < before)
          }
          assert.strictEqual(KeyMap.size(map), model.length)
        }
        for (const p of [...probes, ...ops.map((o) => o.key)]) {
          const want = model.find(([mk]) => Equal.equals(mk, p))
          assert.strictEqual(KeyMap.get(map, structuredCloneKey(p)), want?.[1])
        }
        const all: Array<number> = []
        KeyMap.forEach(map, (v) => all.push(v))
        assert.deepStrictEqual(all.sort(), model.map(([, v]) => v).sort())
      }),
      { numRuns: 300 }
    )
  })

  it("removing the last flat tuple leaves no trie nodes behind", () => {
    const map = KeyMap.make<unknown, number>()
    KeyMap.set(map, ["a", 1, true], 1)
    KeyMap.set(map, ["a", 2, true], 2)
    KeyMap.remove(map, ["a", 1, true])
    KeyMap.remove(map, ["a", 2, true])
    assert.strictEqual(map.flat.size, 0)
    assert.strictEqual(KeyMap.size(map), 0)
  })
})

const structuredCloneKey = (k: unknown): unknown =>
  k instanceof Point
    ? new Point({ x: k.x, y: k.y })
    : Array.isArray(k)
      ? k.map(structuredCloneKey)
      : typeof k === "object" && k !== null
        ? Object.fromEntries(Object.entries(k).map(([a, b]) => [a, structuredCloneKey(b)]))
        : k
