/**
 * Via names: children of a DynamicSupervisor started under a Registry name
 * (T-REG U #21–#23, D #21; reliability C.4 #56 and the "name follows
 * restarts" rule of otp-semantics §5.6).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Schedule, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { ChildSpec, DynamicSupervisor, Registry } from "effect-otp"
import { type Control, controllable, eventually, makeEventLog, settle } from "../utils/lifecycle.ts"

type Key = string | readonly [string, number]

const keyShapes = [
  { name: "string keys", key: (s: string): Key => `session:${s}` },
  { name: "tuple keys", key: (s: string): Key => ["session", s.length * 1000 + s.charCodeAt(0)] as const }
] as const

/** A child whose start counts its runs and waits for `gate` (when given) before producing its handle. */
const gatedChild = (counter: { starts: number; live: number }, gate?: Deferred.Deferred<void, string>) =>
  ChildSpec.make({
    start: Effect.gen(function* () {
      const n = ++counter.starts
      yield* Effect.acquireRelease(
        Effect.sync(() => counter.live++),
        () => Effect.sync(() => counter.live--)
      )
      if (gate !== undefined) yield* Deferred.await(gate)
      return `handle#${n}`
    })
  })

for (const shape of keyShapes) {
  const k = shape.key

  describe(`via (${shape.name})`, () => {
    it.effect("registers the child's handle under the name for as long as the child runs (U #22)", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, string>({ keys: "unique" })
        const sup = yield* DynamicSupervisor.make()
        const counter = { starts: 0, live: 0 }
        const child = yield* DynamicSupervisor.startChild(sup, Registry.via(names, k("alice"), gatedChild(counter)))
        assert.strictEqual(child.handle, "handle#1")
        assert.deepStrictEqual(yield* Registry.whereis(names, k("alice")), Option.some("handle#1"))
        assert.strictEqual(Registry.whereisUnsafe(names, k("alice")), "handle#1")
        assert.deepStrictEqual(
          (yield* Registry.lookup(names, k("alice"))).map((e) => e.value),
          ["handle#1"]
        )
        yield* DynamicSupervisor.terminateChild(sup, child)
        assert.deepStrictEqual(yield* Registry.whereis(names, k("alice")), Option.none())
        assert.strictEqual(yield* Registry.count(names), 0)
        assert.strictEqual(counter.live, 0)
        // the name is free again
        yield* DynamicSupervisor.startChild(sup, Registry.via(names, k("alice"), gatedChild(counter)))
        assert.deepStrictEqual(yield* Registry.whereis(names, k("alice")), Option.some("handle#2"))
      }).pipe(Effect.scoped)
    )

    it.effect(
      "a start under a taken name fails with AlreadyStarted carrying the running child, and its start never runs (U #22; C.4 #56)",
      () =>
        Effect.gen(function* () {
          const names = yield* Registry.make<Key, string>({ keys: "unique" })
          const sup = yield* DynamicSupervisor.make()
          const counter = { starts: 0, live: 0 }
          const spec = Registry.via(names, k("alice"), gatedChild(counter))
          yield* DynamicSupervisor.startChild(sup, spec)
          const error = yield* Effect.flip(DynamicSupervisor.startChild(sup, spec))
          assert(typeof error === "object" && error._tag === "AlreadyStarted")
          assert.strictEqual(error.child, "handle#1")
          assert.deepStrictEqual(error.key, k("alice"))
          assert.strictEqual(counter.starts, 1)
          assert.strictEqual(counter.live, 1)
          assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), {
            specs: 1,
            active: 1,
            supervisors: 0,
            workers: 1
          })
        }).pipe(Effect.scoped)
    )

    it.effect(
      "of two racing starts exactly one runs; the other waits for it and fails with AlreadyStarted (C.4 #56)",
      () =>
        Effect.gen(function* () {
          const names = yield* Registry.make<Key, string>({ keys: "unique" })
          const sup = yield* DynamicSupervisor.make()
          const counter = { starts: 0, live: 0 }
          const gate = yield* Deferred.make<void, string>()
          const spec = Registry.via(names, k("bob"), gatedChild(counter, gate))
          const first = yield* Effect.forkChild(DynamicSupervisor.startChild(sup, spec))
          const second = yield* Effect.forkChild(DynamicSupervisor.startChild(sup, spec))
          yield* settle
          // the name is reserved but not visible while the first start runs
          assert.strictEqual(counter.starts, 1)
          assert.deepStrictEqual(yield* Registry.lookup(names, k("bob")), [])
          assert.strictEqual(yield* Registry.count(names), 0)
          yield* Deferred.succeed(gate, undefined)
          const winner = yield* Fiber.join(first)
          const loser = yield* Effect.flip(Fiber.join(second))
          assert(typeof loser === "object" && loser._tag === "AlreadyStarted")
          assert.strictEqual(loser.child, winner.handle)
          assert.strictEqual(counter.starts, 1)
          assert.strictEqual(counter.live, 1)
          assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).active, 1)
        }).pipe(Effect.scoped)
    )

    it.effect("of N racing starts exactly one runs and every other one names it (C.4 #50, #56)", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, string>({ keys: "unique" })
        const sup = yield* DynamicSupervisor.make()
        const counter = { starts: 0, live: 0 }
        const gate = yield* Deferred.make<void, string>()
        const spec = Registry.via(names, k("crowd"), gatedChild(counter, gate))
        const fibers = yield* Effect.forEach(
          Array.from({ length: 20 }, () => DynamicSupervisor.startChild(sup, spec)),
          (start) => Effect.forkChild(Effect.result(start))
        )
        yield* settle
        yield* Deferred.succeed(gate, undefined)
        const results = yield* Effect.forEach(fibers, Fiber.join)
        const winners = results.filter((r) => r._tag === "Success")
        assert.strictEqual(winners.length, 1)
        for (const r of results) {
          if (r._tag === "Failure") {
            assert(typeof r.failure === "object" && r.failure._tag === "AlreadyStarted")
            assert.strictEqual(r.failure.child, winners[0]!.success.handle)
          }
        }
        assert.strictEqual(counter.starts, 1)
        assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).specs, 1)
      }).pipe(Effect.scoped)
    )

    it.effect("a restart whose name was taken meanwhile fails to start and is retried by the supervisor", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, Control>({ keys: "unique" })
        // restarts wait 1 s (the supervisor otherwise restarts at once, on the crash's own stack)
        const sup = yield* DynamicSupervisor.make({ maxRestarts: 10_000, restartBackoff: Schedule.spaced("1 second") })
        const log = makeEventLog()
        const child = yield* DynamicSupervisor.startChild(sup, Registry.via(names, k("j"), controllable(log, "j")))
        // someone else grabs the name while the child waits to be restarted
        const squatter = yield* Scope.make()
        const events = yield* Registry.listen(names)
        yield* Deferred.fail(child.handle.exit, "boom")
        const first = yield* events.pipe(Stream.take(1), Stream.runCollect)
        assert.strictEqual(first[0]!._tag, "Unregistered")
        const fake = { n: -1, exit: yield* Deferred.make<void, string>() }
        yield* Scope.provide(Registry.register(names, k("j"), fake), squatter)
        yield* TestClock.adjust("1 second") // the restart attempt finds the name taken
        yield* settle
        assert.strictEqual(Registry.whereisUnsafe(names, k("j")), fake)
        const which = yield* DynamicSupervisor.whichChildren(sup)
        assert.strictEqual(which[0]!.child, "restarting")
        // once the squatter leaves, the next restart attempt takes the name back
        yield* Scope.close(squatter, Exit.void)
        yield* TestClock.adjust("1 second")
        yield* eventually(() => (Registry.whereisUnsafe(names, k("j"))?.n ?? 0) > 1, "the child got its name back")
        assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).active, 1)
      }).pipe(Effect.scoped)
    )

    it.effect("when the starting holder's start fails, a waiting start takes the name and runs (C.4 #56)", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, string>({ keys: "unique" })
        const sup = yield* DynamicSupervisor.make()
        const counter = { starts: 0, live: 0 }
        const gate = yield* Deferred.make<void, string>()
        const first = yield* Effect.forkChild(
          DynamicSupervisor.startChild(sup, Registry.via(names, k("carol"), gatedChild(counter, gate)))
        )
        yield* settle
        const second = yield* Effect.forkChild(
          DynamicSupervisor.startChild(sup, Registry.via(names, k("carol"), gatedChild(counter)))
        )
        yield* settle
        assert.strictEqual(counter.starts, 1)
        yield* Deferred.fail(gate, "init failed")
        assert.strictEqual(yield* Effect.flip(Fiber.join(first)), "init failed")
        const child = yield* Fiber.join(second)
        assert.strictEqual(child.handle, "handle#2")
        assert.deepStrictEqual(yield* Registry.whereis(names, k("carol")), Option.some("handle#2"))
        assert.strictEqual(counter.live, 1)
      }).pipe(Effect.scoped)
    )

    it.effect("a start that fails releases the reserved name and leaves nothing behind", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, string>({ keys: "unique" })
        const sup = yield* DynamicSupervisor.make()
        const spec = ChildSpec.make({ start: Effect.fail("no") as Effect.Effect<string, string> })
        assert.strictEqual(
          yield* Effect.flip(DynamicSupervisor.startChild(sup, Registry.via(names, k("d"), spec))),
          "no"
        )
        assert.strictEqual(yield* Registry.count(names), 0)
        assert.deepStrictEqual(yield* Registry.select(names), [])
        const counter = { starts: 0, live: 0 }
        yield* DynamicSupervisor.startChild(sup, Registry.via(names, k("d"), gatedChild(counter)))
        assert.strictEqual(Registry.whereisUnsafe(names, k("d")), "handle#1")
      }).pipe(Effect.scoped)
    )

    it.effect("interrupting a start that waits for the name leaves nothing behind", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, string>({ keys: "unique" })
        const sup = yield* DynamicSupervisor.make()
        const counter = { starts: 0, live: 0 }
        const gate = yield* Deferred.make<void, string>()
        const first = yield* Effect.forkChild(
          DynamicSupervisor.startChild(sup, Registry.via(names, k("e"), gatedChild(counter, gate)))
        )
        yield* settle
        const second = yield* Effect.forkChild(
          DynamicSupervisor.startChild(sup, Registry.via(names, k("e"), gatedChild(counter)))
        )
        yield* settle
        yield* Fiber.interrupt(second)
        yield* Deferred.succeed(gate, undefined)
        const child = yield* Fiber.join(first)
        assert.strictEqual(child.handle, "handle#1")
        assert.strictEqual(counter.starts, 1)
        assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).specs, 1)
      }).pipe(Effect.scoped)
    )

    it.effect("the name follows restarts: after a crash lookup and whereis give the new incarnation's handle", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, Control>({ keys: "unique" })
        const sup = yield* DynamicSupervisor.make()
        const log = makeEventLog()
        const events = yield* Registry.listen(names)
        const child = yield* DynamicSupervisor.startChild(sup, Registry.via(names, k("f"), controllable(log, "f")))
        assert.strictEqual(Registry.whereisUnsafe(names, k("f"))?.n, 1)
        yield* Deferred.fail(child.handle.exit, "boom")
        yield* eventually(() => Registry.whereisUnsafe(names, k("f"))?.n === 2, "the restarted child re-registered")
        const current = (yield* Registry.lookup(names, k("f")))[0]!.value
        assert.strictEqual(current.n, 2)
        assert.notStrictEqual(current, child.handle)
        // a caller resolving by name reaches the new incarnation
        yield* Deferred.succeed(Registry.whereisUnsafe(names, k("f"))!.exit, undefined)
        yield* eventually(() => Registry.whereisUnsafe(names, k("f"))?.n === 3, "restarted after a normal exit")
        assert.deepStrictEqual(log.events, ["start:f#1", "stop:f#1", "start:f#2", "stop:f#2", "start:f#3"])
        // listeners saw each incarnation leave before the next one arrived
        const seen = yield* events.pipe(Stream.take(5), Stream.runCollect)
        assert.deepStrictEqual(
          seen.map((e) => (e._tag === "Registered" ? `+${e.value.n}` : `-${e.value.n}:${e.reason}`)),
          ["+1", "-1:exit", "+2", "-2:exit", "+3"]
        )
      }).pipe(Effect.scoped)
    )

    it.effect("closing the supervisor frees every name", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, string>({ keys: "unique" })
        const scope = yield* Scope.make()
        const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
        const counter = { starts: 0, live: 0 }
        for (const name of ["a", "b", "c"]) {
          yield* DynamicSupervisor.startChild(sup, Registry.via(names, k(name), gatedChild(counter)))
        }
        assert.strictEqual(yield* Registry.count(names), 3)
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(yield* Registry.count(names), 0)
        assert.strictEqual(counter.live, 0)
      }).pipe(Effect.scoped)
    )

    it.effect("has a data-last form and accepts specs built from extraArguments", () =>
      Effect.gen(function* () {
        const names = yield* Registry.make<Key, string>({ keys: "unique" })
        const sup = yield* DynamicSupervisor.make({ extraArguments: "prefix" })
        const child = yield* DynamicSupervisor.startChild(sup, (extra: string) =>
          Registry.via(names, k("g"))(ChildSpec.make({ start: Effect.succeed(`${extra}-g`) }))
        )
        assert.strictEqual(child.handle, "prefix-g")
        assert.strictEqual(Registry.whereisUnsafe(names, k("g")), "prefix-g")
      }).pipe(Effect.scoped)
    )

    it.effect("a duplicate registry cannot name children (D #21)", () =>
      Effect.gen(function* () {
        const topics = yield* Registry.make<Key, string>({ keys: "duplicate" })
        const sup = yield* DynamicSupervisor.make()
        const counter = { starts: 0, live: 0 }
        const spec = Registry.via(
          topics as any as Registry.Registry<Key, string, "unique">,
          k("h"),
          gatedChild(counter)
        )
        const error = yield* Effect.flip(DynamicSupervisor.startChild(sup, spec))
        assert(typeof error === "object" && error._tag === "InvalidOptions")
        assert.strictEqual(error.field, "keys")
        assert.strictEqual(counter.starts, 0)
      }).pipe(Effect.scoped)
    )

    it.effect("a closed registry fails the start with RegistryClosed before it runs", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const names = yield* Scope.provide(Registry.make<Key, string>({ keys: "unique" }), scope)
        yield* Scope.close(scope, Exit.void)
        const sup = yield* DynamicSupervisor.make()
        const counter = { starts: 0, live: 0 }
        const error = yield* Effect.flip(
          DynamicSupervisor.startChild(sup, Registry.via(names, k("i"), gatedChild(counter)))
        )
        assert(typeof error === "object" && error._tag === "RegistryClosed")
        assert.strictEqual(counter.starts, 0)
      }).pipe(Effect.scoped)
    )
  })
}
