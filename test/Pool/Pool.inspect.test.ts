/**
 * The pool as a supervisor of its connections (issue 14): the one inspection
 * protocol (`snapshot()` as plain JSON with the pool's figures, `subscribe`
 * for connection events) and `Pool.childSpec`, so a pool is a child of any
 * supervisor and shows in its tree.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import { DynamicSupervisor, Pool, Supervisor } from "effect-otp"
import * as Inspect from "../../src/internal/inspect.ts"
import { eventually, settle } from "../utils/lifecycle.ts"
import { makeFakeDb } from "./fakeDb.ts"

const stats = Pool.statsUnsafe

describe("inspection", () => {
  it.effect("snapshot: plain JSON with the pool's figures and one Connection node per connection", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* Pool.make({ name: "app/Db", connect: db.connect, max: 3, min: 2 })
      yield* eventually(() => stats(pool).idle === 2)
      const release = yield* Deferred.make<void>()
      const borrower = yield* Effect.forkChild(Pool.withConnection(pool, () => Deferred.await(release)))
      yield* eventually(() => stats(pool).inUse === 1)
      const inspector = Inspect.inspectorOf(pool)
      assert.isDefined(inspector)
      assert.strictEqual(inspector!.kind, "Pool")
      const node = inspector!.snapshot()
      assert.deepStrictEqual(JSON.parse(JSON.stringify(node)), node)
      assert.deepInclude(node, { kind: "Pool", type: "supervisor", name: "app/Db", state: "running", restarts: 0 })
      assert.deepInclude(node.stats!, { open: 2, idle: 1, inUse: 1, waiting: 0, creating: 0, max: 3, min: 2 })
      assert.strictEqual(node.children.length, 2)
      for (const child of node.children) {
        assert.deepInclude(child, { kind: "Connection", type: "worker", state: "running", restarts: 0 })
        assert.isNumber(child.pid)
        assert.match(child.id!, /^app\/Db\/\d+$/)
      }
      // the tree a supervisor shows is the same protocol
      assert.deepStrictEqual(Supervisor.treeUnsafe(pool), node)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(borrower)
    })
  )

  it.effect("a closed pool's node is stopped, with no connections", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const scope = yield* Scope.make()
      const pool = yield* Scope.provide(Pool.make({ connect: db.connect, max: 2, min: 1 }), scope)
      yield* eventually(() => stats(pool).idle === 1)
      yield* Scope.close(scope, Exit.void)
      const node = Inspect.inspectorOf(pool)!.snapshot()
      assert.deepInclude(node, { state: "stopped", children: [] })
      assert.deepInclude(node.stats!, { open: 0, idle: 0 })
    })
  )

  it.effect(
    "subscribe: Started when a connection opens, Exited crash when its body fails, Exited shutdown when the pool closes it; nothing after unsubscribe",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const sockets = new Map<number, Deferred.Deferred<void, string>>()
        const pool = yield* Pool.make({
          name: "events",
          connect: db.connect,
          max: 2,
          idleTimeout: "1 second",
          run: (conn) =>
            Effect.gen(function* () {
              const socket = yield* Deferred.make<void, string>()
              sockets.set(conn.id, socket)
              return yield* Deferred.await(socket)
            })
        })
        const events: Array<Inspect.InspectEvent> = []
        const inspector = Inspect.inspectorOf(pool)!
        const unsubscribe = inspector.subscribe((e) => void events.push(e))
        // two connections at once
        const hold = yield* Deferred.make<void>()
        const borrowers = yield* Effect.forEach([1, 2], () =>
          Effect.forkChild(Pool.withConnection(pool, () => Deferred.await(hold)))
        )
        yield* eventually(() => stats(pool).inUse === 2)
        yield* Deferred.succeed(hold, undefined)
        for (const b of borrowers) yield* Fiber.join(b)
        assert.deepStrictEqual(
          events.map((e) => [e._tag, e.supervisor, e.supervisorKind]),
          [
            ["Started", "events", "Pool"],
            ["Started", "events", "Pool"]
          ]
        )
        const [first, second] = events
        assert.isNumber(first!.pid)
        assert.notStrictEqual(first!.pid, second!.pid)
        // connection 1's body fails: an abnormal exit, with its cause
        yield* Deferred.fail(sockets.get(1)!, "socket closed")
        yield* eventually(() => events.length === 3)
        const crash = events[2] as Inspect.Exited
        assert.deepInclude(crash, { _tag: "Exited", reason: "crash", id: first!.id, pid: first!.pid })
        assert.include(crash.cause, "socket closed")
        // connection 2 is reaped after its idle timeout: a shutdown
        yield* TestClock.adjust("1 second")
        yield* eventually(() => events.length === 4)
        assert.deepInclude(events[3], { _tag: "Exited", reason: "shutdown", id: second!.id, pid: second!.pid })
        unsubscribe()
        yield* Pool.withConnection(pool, () => Effect.void)
        yield* settle
        assert.strictEqual(events.length, 4)
        assert.isUndefined((pool as unknown as { listeners: unknown }).listeners)
      })
  )
})

describe("inspection: abandoned connections", () => {
  it.effect("a connection whose close overruns closeTimeout is reported as Abandoned by the pool", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.closeDelayMillis = 10_000
      const pool = yield* Pool.make({ name: "slow-close", connect: db.connect, max: 1, closeTimeout: "100 millis" })
      const conn = yield* Pool.withConnection(pool, Effect.succeed)
      const events: Array<Inspect.InspectEvent> = []
      const unsubscribe = Inspect.inspectorOf(pool)!.subscribe((e) => void events.push(e))
      yield* Pool.invalidate(pool, conn)
      yield* settle
      yield* TestClock.adjust("100 millis")
      yield* eventually(() => events.some((e) => e._tag === "Abandoned"))
      const abandoned = events.find((e) => e._tag === "Abandoned") as Inspect.Abandoned
      assert.deepInclude(abandoned, {
        supervisor: "slow-close",
        supervisorKind: "Pool",
        id: "slow-close/1",
        shutdownMillis: 100
      })
      unsubscribe()
      assert.isUndefined((pool as unknown as { forwarding: unknown }).forwarding)
      db.closeDelayMillis = 0
      yield* TestClock.adjust("10 seconds")
    })
  )
})

describe("childSpec", () => {
  it.effect(
    "a pool is a child of a DynamicSupervisor without wrapping: its handle is the pool, it shows in the tree, stopping the child closes the pool",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const sup = yield* DynamicSupervisor.make({ name: "app" })
        const child = yield* DynamicSupervisor.startChild(
          sup,
          Pool.childSpec({ name: "app/Db", connect: db.connect, max: 2, min: 1 })
        )
        const pool = child.handle
        assert.isTrue(Pool.isPool(pool))
        assert.strictEqual(child.id, "app/Db")
        assert.strictEqual(child.type, "supervisor")
        assert.strictEqual(yield* Pool.withConnection(pool, (conn) => db.query(conn)), 1)
        const tree = Supervisor.treeUnsafe(sup)
        const node = tree.children.find((c) => c.id === "app/Db")
        assert.isDefined(node)
        assert.deepInclude(node!, { kind: "Pool", type: "supervisor", name: "app/Db" })
        assert.deepInclude(node!.stats!, { open: 1, idle: 1 })
        assert.strictEqual(node!.children[0]!.kind, "Connection")
        yield* DynamicSupervisor.terminateChild(sup, child)
        assert.strictEqual(db.live(), 0)
        assert.deepStrictEqual(db.transcript, ["connect:1", "q:1", "close:1"])
        assert.strictEqual((yield* Effect.flip(Pool.withConnection(pool, Effect.succeed)))._tag, "PoolClosed")
      })
  )

  it.effect("invalid options make startChild fail with InvalidOptions naming the field", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const sup = yield* DynamicSupervisor.make()
      const error = yield* Effect.flip(
        DynamicSupervisor.startChild(sup, Pool.childSpec({ connect: db.connect, max: 0 }))
      )
      assert.strictEqual(error._tag, "InvalidOptions")
      assert.strictEqual((error as { field?: string }).field, "max")
    })
  )
})
