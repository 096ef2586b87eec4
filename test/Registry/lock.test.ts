/**
 * Registry.lock: T-REG #2–#6 (registry_test.exs `Registry.LockTest`) and
 * reliability C.4 #53 (the lock survives a bad holder).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { Registry } from "effect-otp"
import { settle } from "../utils/lifecycle.ts"

const lockKeys = [
  { name: "string lock keys", key: (s: string): unknown => s },
  { name: "tuple lock keys", key: (s: string): unknown => ["lock", s] }
] as const

/** A lock holder that logs `in`/`out` and waits for `gate` before leaving. */
const holder = (
  registry: Registry.Registry<string, number>,
  lockKey: unknown,
  name: string,
  log: Array<string>,
  gate: Deferred.Deferred<void, string>
) =>
  Registry.lock(
    registry,
    lockKey,
    Effect.gen(function* () {
      log.push(`${name} in`)
      yield* Deferred.await(gate)
      log.push(`${name} out`)
      return name
    })
  )

for (const shape of lockKeys) {
  const k = shape.key

  describe(`lock (${shape.name})`, () => {
    it.effect("does not lock when using different keys (T-REG #2)", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        const log: Array<string> = []
        const gate = yield* Deferred.make<void, string>()
        const a = yield* Effect.forkChild(holder(registry, k("a"), "a", log, gate))
        const b = yield* Effect.forkChild(holder(registry, k("b"), "b", log, gate))
        yield* settle
        assert.deepStrictEqual(log, ["a in", "b in"])
        yield* Deferred.succeed(gate, undefined)
        assert.deepStrictEqual([yield* Fiber.join(a), yield* Fiber.join(b)], ["a", "b"])
      }).pipe(Effect.scoped)
    )

    it.effect("locks when using the same key: waiters run one at a time, first come first served (T-REG #3)", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        const log: Array<string> = []
        const gates = [
          yield* Deferred.make<void, string>(),
          yield* Deferred.make<void, string>(),
          yield* Deferred.make<void, string>()
        ]
        const fibers: Array<Fiber.Fiber<string, string>> = []
        for (const [i, name] of ["a", "b", "c"].entries()) {
          fibers.push(yield* Effect.forkChild(holder(registry, k("x"), name, log, gates[i]!)))
          yield* settle
        }
        assert.deepStrictEqual(log, ["a in"])
        yield* Deferred.succeed(gates[0]!, undefined)
        yield* settle
        assert.deepStrictEqual(log, ["a in", "a out", "b in"])
        yield* Deferred.succeed(gates[2]!, undefined)
        yield* Deferred.succeed(gates[1]!, undefined)
        for (const f of fibers) yield* Fiber.join(f)
        assert.deepStrictEqual(log, ["a in", "a out", "b in", "b out", "c in", "c out"])
      }).pipe(Effect.scoped)
    )

    it.effect("is released when the holder fails, and a fresh lock still works (T-REG #4; C.4 #53)", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        const log: Array<string> = []
        const gate = yield* Deferred.make<void, string>()
        const failing = yield* Effect.forkChild(holder(registry, k("x"), "a", log, gate))
        yield* settle
        const waiting = yield* Effect.forkChild(
          holder(
            registry,
            k("x"),
            "b",
            log,
            yield* Deferred.make<void, string>().pipe(Effect.tap((d) => Deferred.succeed(d, undefined)))
          )
        )
        yield* settle
        yield* Deferred.fail(gate, "raised")
        assert.strictEqual(yield* Effect.flip(Fiber.join(failing)), "raised")
        assert.strictEqual(yield* Fiber.join(waiting), "b")
        assert.strictEqual(yield* Registry.lock(registry, k("x"), Effect.succeed("fresh")), "fresh")
        const defect = yield* Effect.exit(Registry.lock(registry, k("x"), Effect.die("boom")))
        assert.isTrue(Exit.hasDies(defect))
        assert.strictEqual(yield* Registry.lock(registry, k("x"), Effect.succeed("after a defect")), "after a defect")
      }).pipe(Effect.scoped)
    )

    it.effect("is released when the holder is interrupted (T-REG #5; C.4 #53)", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        const holderFiber = yield* Effect.forkChild(Registry.lock(registry, k("x"), Effect.never))
        yield* settle
        const waiting = yield* Effect.forkChild(Registry.lock(registry, k("x"), Effect.succeed("next")))
        yield* settle
        assert.isUndefined(waiting.pollUnsafe())
        yield* Fiber.interrupt(holderFiber)
        assert.strictEqual(yield* Fiber.join(waiting), "next")
      }).pipe(Effect.scoped)
    )

    it.effect("skips a waiter that is interrupted while queued (T-REG #6; C.4 #53)", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        const log: Array<string> = []
        const gate = yield* Deferred.make<void, string>()
        const first = yield* Effect.forkChild(holder(registry, k("x"), "a", log, gate))
        yield* settle
        const doomed = yield* Effect.forkChild(
          Registry.lock(
            registry,
            k("x"),
            Effect.sync(() => log.push("doomed ran"))
          )
        )
        yield* settle
        const third = yield* Effect.forkChild(
          Registry.lock(
            registry,
            k("x"),
            Effect.sync(() => log.push("c ran"))
          )
        )
        yield* settle
        yield* Fiber.interrupt(doomed)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(first)
        yield* Fiber.join(third)
        assert.deepStrictEqual(log, ["a in", "a out", "c ran"])
        // nothing is left held
        assert.strictEqual(yield* Registry.lock(registry, k("x"), Effect.succeed(1)), 1)
      }).pipe(Effect.scoped)
    )

    it.effect("a waiter interrupted in the turn the lock is handed to it releases it to the next one", () =>
      Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        const gate = yield* Deferred.make<void, string>()
        const second = yield* Deferred.make<Fiber.Fiber<void>>()
        // the first holder interrupts the next waiter in the same turn as it releases the lock
        const first = yield* Effect.forkChild(
          Effect.andThen(
            Registry.lock(registry, k("x"), Deferred.await(gate)),
            Effect.flatMap(Deferred.await(second), (f) => Effect.sync(() => f.interruptUnsafe()))
          )
        )
        yield* settle
        yield* Deferred.succeed(second, yield* Effect.forkChild(Registry.lock(registry, k("x"), Effect.never)))
        yield* settle
        const third = yield* Effect.forkChild(Registry.lock(registry, k("x"), Effect.succeed("third")))
        yield* settle
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(first)
        assert.strictEqual(yield* Fiber.join(third), "third")
        assert.strictEqual(yield* Registry.lock(registry, k("x"), Effect.succeed("free")), "free")
      }).pipe(Effect.scoped)
    )
  })
}
