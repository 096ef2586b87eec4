/**
 * ClusterRegistry in process (TestRunner, memory bookkeeping, TestClock):
 * names owned by children of a cluster supervisor, gone with their owner or
 * its runner, with listeners.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Schema, Stream } from "effect"
import { TestRunner } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { TestClock } from "effect/testing"
import { ClusterErrors, ClusterRegistry, ClusterSupervisor } from "../../src/Cluster/index.ts"
import { ClusterStore, makeMemory } from "../../src/Cluster/internal/store.ts"
import * as Server from "../../src/Server/Server.ts"

const tagOf = (e: unknown): string | undefined => (e as { readonly _tag?: string })._tag

const drive = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect, { startImmediately: true })
    let steps = 0
    while (fiber.pollUnsafe() === undefined) {
      if (++steps > 100_000) return yield* Effect.die("drive: not done after 1000 virtual seconds")
      yield* TestClock.adjust(10)
    }
    return yield* Fiber.join(fiber)
  })

const Rooms = ClusterRegistry.make("test/Rooms", { value: Schema.Struct({ topic: Schema.String }) })

const Claim = Rpc.make("Claim", {
  payload: { key: Schema.String, topic: Schema.String },
  error: ClusterErrors.AlreadyRegistered
})
const Release = Rpc.make("Release", { payload: { key: Schema.String } })
const Crash = Rpc.make("Crash")

const Owner = Server.make("Owner", [Claim, Release, Crash], {
  init: (_id: string) =>
    Effect.succeed({
      Claim: ({ key, topic }) =>
        ClusterRegistry.register(Rooms, key, { topic }).pipe(Effect.catchTag("PersistenceError", (e) => Effect.die(e))),
      Release: ({ key }) => Effect.orDie(ClusterRegistry.unregister(Rooms, key)),
      Crash: () => Effect.die("boom")
    })
})

const setup = () => {
  const sup = ClusterSupervisor.make("test/Owners", { server: Owner })
  const store = makeMemory()
  const layer = ClusterSupervisor.layer(sup).pipe(
    Layer.provideMerge(Layer.merge(TestRunner.layer, Layer.succeed(ClusterStore)(store)))
  )
  const owner = (id: string) => Effect.map(ClusterSupervisor.client(sup), (client) => client(id))
  return { sup, layer, store, owner }
}

describe("ClusterRegistry", () => {
  it.effect("a child registers a key: lookup, select and count see it with its owner and runner", () => {
    const { sup, layer, owner } = setup()
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* drive(Effect.flatMap(owner("a"), (o) => o.Claim({ key: "lobby", topic: "general" })))
      const entry = Option.getOrThrow(yield* ClusterRegistry.lookup(Rooms, "lobby"))
      assert.deepStrictEqual([entry.key, entry.value, entry.owner], ["lobby", { topic: "general" }, "test/Owners/a"])
      assert.strictEqual(yield* ClusterRegistry.count(Rooms), 1)
      assert.deepStrictEqual(
        (yield* ClusterRegistry.select(Rooms, (e) => e.value.topic === "general")).map((e) => e.key),
        ["lobby"]
      )
      assert.isTrue(Option.isNone(yield* ClusterRegistry.lookup(Rooms, "nope")))
    }).pipe(Effect.provide(layer))
  })

  it.effect("a key held by another live child fails AlreadyRegistered; the owner may update its value", () => {
    const { sup, layer, owner } = setup()
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* drive(ClusterSupervisor.startChild(sup, "b"))
      yield* drive(Effect.flatMap(owner("a"), (o) => o.Claim({ key: "lobby", topic: "one" })))
      const error = yield* drive(
        Effect.flip(Effect.flatMap(owner("b"), (o) => o.Claim({ key: "lobby", topic: "two" })))
      )
      assert.strictEqual(tagOf(error), "AlreadyRegistered")
      yield* drive(Effect.flatMap(owner("a"), (o) => o.Claim({ key: "lobby", topic: "three" })))
      const entry = Option.getOrThrow(yield* ClusterRegistry.lookup(Rooms, "lobby"))
      assert.deepStrictEqual([entry.owner, entry.value.topic], ["test/Owners/a", "three"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("an entry goes with its owner: terminated, crashed, or unregistered", () => {
    const { sup, layer, owner } = setup()
    return Effect.gen(function* () {
      for (const id of ["a", "b", "c"]) {
        yield* drive(ClusterSupervisor.startChild(sup, id))
        yield* drive(Effect.flatMap(owner(id), (o) => o.Claim({ key: `room-${id}`, topic: id })))
      }
      assert.strictEqual(yield* ClusterRegistry.count(Rooms), 3)
      yield* drive(ClusterSupervisor.terminateChild(sup, "a"))
      yield* drive(Effect.flip(Effect.flatMap(owner("b"), (o) => o.Crash())))
      yield* drive(Effect.flatMap(owner("c"), (o) => o.Release({ key: "room-c" })))
      assert.strictEqual(yield* ClusterRegistry.count(Rooms), 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("an entry whose runner is no longer alive is not listed, and listeners see it unregistered", () => {
    const { sup, layer, owner, store } = setup()
    return Effect.gen(function* () {
      const events = yield* ClusterRegistry.listen(Rooms, { pollInterval: "10 millis" }).pipe(
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* drive(Effect.flatMap(owner("a"), (o) => o.Claim({ key: "lobby", topic: "x" })))
      const entry = Option.getOrThrow(yield* ClusterRegistry.lookup(Rooms, "lobby"))
      store.markDead(entry.runner, true)
      assert.strictEqual(yield* ClusterRegistry.count(Rooms), 0)
      const seen = yield* drive(Fiber.join(events))
      assert.deepStrictEqual(
        seen.map((e) => [e._tag, e.key, e.owner]),
        [
          ["Register", "lobby", "test/Owners/a"],
          ["Unregister", "lobby", "test/Owners/a"]
        ]
      )
    }).pipe(Effect.provide(layer))
  })
})
