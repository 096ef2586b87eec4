/**
 * The same Server definition under a ClusterSupervisor: what its runtime
 * gives a server (cast, sendAfter, stop with a reason, reply later) behaves
 * as the Server contract says, on effect/cluster's TestRunner.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Schema } from "effect"
import { TestRunner } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { TestClock } from "effect/testing"
import { ClusterSupervisor } from "../../src/Cluster/index.ts"
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

const Bump = Rpc.make("Bump")
const Count = Rpc.make("Count", { success: Schema.Number })
const BumpLater = Rpc.make("BumpLater", { payload: { ms: Schema.Number } })
const Stop = Rpc.make("Stop", { payload: { reason: Schema.String } })
const Slow = Rpc.make("Slow", { success: Schema.String })
const Release = Rpc.make("Release")
const CrashLater = Rpc.make("CrashLater")
const Crash = Rpc.make("Crash")

const inits: Array<number> = []

/** A counter that bumps itself by cast and by timer, stops on request, and replies later to Slow. */
const Counter = Server.make("Counter", [Bump, Count, BumpLater, Stop, Slow, Release, CrashLater, Crash], {
  init: (_id: string) =>
    Effect.gen(function* () {
      const child = yield* ClusterSupervisor.CurrentChild
      inits.push(child.incarnation)
      let count = 0
      const waiting: Array<Deferred.Deferred<string>> = []
      return {
        Bump: (_, self) =>
          Effect.andThen(
            self.cast("Count"),
            Effect.sync(() => {
              count++
            })
          ),
        Count: () => Effect.succeed(count),
        BumpLater: ({ ms }, self) => Effect.asVoid(self.sendAfter(`${ms} millis`, "Bump")),
        Stop: ({ reason }, self) => self.stop(reason),
        Slow: () =>
          Effect.gen(function* () {
            const deferred = yield* Deferred.make<string>()
            waiting.push(deferred)
            return deferred
          }),
        Release: () =>
          Effect.forEach(waiting.splice(0), (d) => Deferred.succeed(d, `released at ${count}`), { discard: true }),
        CrashLater: (_, self) => self.cast("Crash"),
        Crash: () => Effect.die("boom")
      }
    })
})

const setup = (restart: ClusterSupervisor.RestartType) => {
  inits.length = 0
  const sup = ClusterSupervisor.make("test/Counters", { server: Counter, restart, maxRestarts: 5 })
  const layer = ClusterSupervisor.layer(sup).pipe(
    Layer.provideMerge(Layer.merge(TestRunner.layer, Layer.succeed(ClusterStore)(makeMemory())))
  )
  return { sup, layer }
}

describe("Server runtime in a cluster", () => {
  it.effect("cast puts a message behind the current one; sendAfter delivers it after the delay", () => {
    const { sup, layer } = setup("permanent")
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      const client = yield* ClusterSupervisor.client(sup)
      yield* drive(client("c").Bump())
      assert.strictEqual(yield* drive(client("c").Count()), 1)
      yield* drive(client("c").BumpLater({ ms: 1000 }))
      yield* TestClock.adjust("500 millis")
      assert.strictEqual(yield* drive(client("c").Count()), 1)
      yield* TestClock.adjust("600 millis")
      assert.strictEqual(yield* drive(client("c").Count()), 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a reply later (a Deferred) lets the next message through, and answers when completed", () => {
    const { sup, layer } = setup("permanent")
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      const client = yield* ClusterSupervisor.client(sup)
      const slow = yield* client("c")
        .Slow()
        .pipe(Effect.forkChild({ startImmediately: true }))
      yield* drive(client("c").Bump())
      yield* drive(client("c").Release())
      assert.strictEqual(yield* drive(Fiber.join(slow)), "released at 1")
    }).pipe(Effect.provide(layer))
  })

  it.effect("stop('normal') removes a transient child: it is not restarted", () => {
    const { sup, layer } = setup("transient")
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      const client = yield* ClusterSupervisor.client(sup)
      yield* drive(client("c").Stop({ reason: "normal" }))
      assert.strictEqual(tagOf(yield* drive(Effect.flip(client("c").Count()))), "ChildNotFound")
      assert.deepStrictEqual(inits, [1])
    }).pipe(Effect.provide(layer))
  })

  it.effect("stop('normal') restarts a permanent child as a new incarnation", () => {
    const { sup, layer } = setup("permanent")
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      const client = yield* ClusterSupervisor.client(sup)
      yield* drive(client("c").Bump())
      yield* drive(client("c").Stop({ reason: "normal" }))
      assert.strictEqual(yield* drive(client("c").Count()), 0)
      assert.deepStrictEqual(inits, [1, 2])
    }).pipe(Effect.provide(layer))
  })

  it.effect("stop with another reason is abnormal: a transient child restarts, and it counts as a restart", () => {
    const { sup, layer } = setup("transient")
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      const client = yield* ClusterSupervisor.client(sup)
      yield* drive(client("c").Stop({ reason: "bad state" }))
      assert.strictEqual(yield* drive(client("c").Count()), 0)
      const [child] = yield* ClusterSupervisor.whichChildren(sup)
      assert.strictEqual(child?.restarts, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a caller waiting on a reply later fails at once when the incarnation crashes", () => {
    const { sup, layer } = setup("permanent")
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      const client = yield* ClusterSupervisor.client(sup)
      const slow = yield* client("c")
        .Slow()
        .pipe(Effect.flip, Effect.forkChild({ startImmediately: true }))
      yield* drive(client("c").CrashLater())
      const error = yield* drive(Fiber.join(slow))
      assert.strictEqual(tagOf(error), "ChildCrashed")
      assert.deepStrictEqual(inits, [1, 2])
    }).pipe(Effect.provide(layer))
  })

  it.effect("call and cast by reference have Server.call / Server.cast's shape", () => {
    const { sup, layer } = setup("permanent")
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      const counter = ClusterSupervisor.ref(sup, "c")
      yield* drive(ClusterSupervisor.cast(counter, "Bump"))
      yield* drive(ClusterSupervisor.cast(counter, "Bump"))
      assert.strictEqual(yield* drive(ClusterSupervisor.call(counter, "Count")), 2)
      const ghost = ClusterSupervisor.ref(sup, "ghost")
      yield* drive(ClusterSupervisor.cast(ghost, "Bump"))
      assert.strictEqual(tagOf(yield* drive(Effect.flip(ClusterSupervisor.call(ghost, "Count")))), "ChildNotFound")
    }).pipe(Effect.provide(layer))
  })

  it.effect("childClient has Server.client's shape: call.Tag, cast.Tag, stop", () => {
    const { sup, layer } = setup("permanent")
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      const counter = ClusterSupervisor.childClient(ClusterSupervisor.ref(sup, "c"))
      yield* drive(counter.cast.Bump())
      yield* drive(counter.call.Bump())
      assert.strictEqual(yield* drive(counter.call.Count()), 2)
      yield* drive(counter.stop())
      assert.strictEqual(tagOf(yield* drive(Effect.flip(counter.call.Count()))), "ChildNotFound")
    }).pipe(Effect.provide(layer))
  })
})
