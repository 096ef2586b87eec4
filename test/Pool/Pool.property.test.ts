/**
 * Property test (reliability C.6 #71–#80, technique B.6): random interleavings
 * of checkout / use / fail / interrupt / invalidate / connection crash /
 * connect failure / slow connect / time passing / close against a scripted fake database.
 * After every step: created − destroyed = open, open + creating ≤ max, no
 * connection is held by two borrowers at once, and borrowers got connections
 * in the order they asked (FIFO). At the end the pool is closed: every
 * connection is closed, the database has nothing open, no borrower and no pool
 * fiber is left. Each sequence runs once with the default scheduler and once
 * with the scheduler forced to yield every few operations.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Logger, Scheduler, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { Pool } from "effect-otp"
import { settle } from "../utils/lifecycle.ts"
import { type FakeConn, makeFakeDb } from "./fakeDb.ts"

type Ending = "succeed" | "fail" | "die" | "interrupt"
type Command =
  | { readonly _tag: "checkout"; readonly scoped: boolean }
  | { readonly _tag: "end"; readonly index: number; readonly how: Ending }
  | { readonly _tag: "invalidate"; readonly index: number }
  | { readonly _tag: "crash"; readonly index: number }
  | { readonly _tag: "failNextConnect" }
  | { readonly _tag: "slowNextConnect" }
  | { readonly _tag: "advance"; readonly millis: number }
  | { readonly _tag: "close" }

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ _tag: fc.constant("checkout" as const), scoped: fc.boolean() }) },
  {
    weight: 5,
    arbitrary: fc.record({
      _tag: fc.constant("end" as const),
      index: fc.nat(30),
      how: fc.constantFrom<Ending>("succeed", "succeed", "fail", "die", "interrupt")
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("invalidate" as const), index: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("crash" as const), index: fc.nat(10) }) },
  { weight: 1, arbitrary: fc.constant({ _tag: "failNextConnect" as const }) },
  // a connect that outlasts the checkout timeout: callers waiting for it are exempt (#84), interrupted ones leave it (#72)
  { weight: 1, arbitrary: fc.constant({ _tag: "slowNextConnect" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ _tag: fc.constant("advance" as const), millis: fc.constantFrom(10, 500, 1_000, 60_000) })
  },
  { weight: 1, arbitrary: fc.constant({ _tag: "close" as const }) }
)

interface Borrower {
  readonly n: number
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly end: Deferred.Deferred<void, string>
  conn: FakeConn | undefined
}

const MAX = 3

const runCommands = (commands: ReadonlyArray<Command>, reset: boolean, checked: boolean) =>
  Effect.gen(function* () {
    const db = makeFakeDb()
    const sockets = new Map<number, Deferred.Deferred<void, string>>()
    const scope = yield* Scope.make()
    const pool = yield* Scope.provide(
      Pool.make({
        connect: db.connect,
        max: MAX,
        min: 1,
        checkoutTimeout: "1 second",
        idleTimeout: "30 seconds",
        connectBackoff: undefined,
        drainTimeout: "5 seconds",
        run: (conn) =>
          Effect.gen(function* () {
            const socket = yield* Deferred.make<void, string>()
            sockets.set(conn.id, socket)
            return yield* Deferred.await(socket)
          }),
        ...(reset ? { reset: () => Effect.void } : {}),
        // an asynchronous health check (#78): a caller holds the connection across a yield
        ...(checked
          ? {
              healthCheck: (conn: FakeConn) => Effect.andThen(Effect.yieldNow, db.healthCheck(conn)),
              healthCheckInterval: "1 minute"
            }
          : {})
      }),
      scope
    )
    const held = new Set<number>()
    const violations: Array<string> = []
    const acquired: Array<[seq: number, borrower: number]> = []
    const borrowers: Array<Borrower> = []
    let next = 0

    const check = (when: string) => {
      const s = Pool.statsUnsafe(pool)
      if (s.created - s.destroyed !== s.open) violations.push(`${when}: created-destroyed != open ${JSON.stringify(s)}`)
      if (s.open + s.creating > MAX) violations.push(`${when}: above max ${JSON.stringify(s)}`)
      if (s.inUse < 0 || s.idle < 0 || s.waiting < 0 || s.creating < 0) {
        violations.push(`${when}: negative ${JSON.stringify(s)}`)
      }
    }

    for (const cmd of commands) {
      switch (cmd._tag) {
        case "checkout": {
          const n = ++next
          const end = yield* Deferred.make<void, string>()
          const b: Borrower = { n, end, conn: undefined, fiber: undefined as any }
          const body = (conn: FakeConn) =>
            Effect.gen(function* () {
              if (held.has(conn.id)) violations.push(`connection ${conn.id} leased twice`)
              held.add(conn.id)
              // the order the pool leased in (the body may run later, under a yielding scheduler)
              const seq = (pool as unknown as { byValue: Map<FakeConn, { leaseSeq: number }> }).byValue.get(
                conn
              )!.leaseSeq
              acquired.push([seq, n])
              b.conn = conn
              yield* Effect.ensuring(
                Deferred.await(end),
                Effect.sync(() => held.delete(conn.id))
              )
            })
          ;(b as { fiber: Fiber.Fiber<unknown, unknown> }).fiber = yield* Effect.forkDetach(
            cmd.scoped ? Effect.scoped(Effect.flatMap(Pool.checkout(pool), body)) : Pool.withConnection(pool, body)
          )
          borrowers.push(b)
          break
        }
        case "end": {
          const b = borrowers[cmd.index % Math.max(1, borrowers.length)]
          if (b === undefined) break
          if (cmd.how === "interrupt") yield* Fiber.interrupt(b.fiber)
          else if (cmd.how === "succeed") yield* Deferred.succeed(b.end, undefined)
          else if (cmd.how === "fail") yield* Deferred.fail(b.end, "boom")
          else yield* Deferred.die(b.end, "defect")
          break
        }
        case "invalidate": {
          const b = borrowers[cmd.index % Math.max(1, borrowers.length)]
          if (b?.conn !== undefined) yield* Pool.invalidate(pool, b.conn)
          break
        }
        case "crash": {
          const ids = [...sockets.keys()]
          const id = ids[cmd.index % Math.max(1, ids.length)]
          if (id !== undefined) yield* Deferred.fail(sockets.get(id)!, "socket closed")
          break
        }
        case "failNextConnect":
          db.script(["fail"])
          break
        case "slowNextConnect":
          db.script([{ delayMillis: 1_500 }])
          break
        case "advance":
          yield* TestClock.adjust(cmd.millis)
          break
        case "close":
          yield* Effect.forkDetach(Scope.close(scope, Exit.void))
          break
      }
      yield* settle
      check(cmd._tag)
    }

    // let every borrower finish, then close and drain
    for (const b of borrowers) yield* Deferred.succeed(b.end, undefined)
    yield* settle
    yield* TestClock.adjust("1 minute")
    for (const b of borrowers) yield* Fiber.await(b.fiber)
    // every borrower is done: every connection it held has come back (none leaked to a dead borrower)
    assert.strictEqual(Pool.statsUnsafe(pool).inUse, 0, "a finished borrower still holds a connection")
    assert.strictEqual(held.size, 0)
    const closing = yield* Effect.forkDetach(Scope.close(scope, Exit.void))
    yield* settle
    yield* TestClock.adjust("1 minute")
    yield* Fiber.await(closing)
    for (const b of borrowers) yield* Fiber.await(b.fiber)
    check("end")

    const s = Pool.statsUnsafe(pool)
    assert.deepStrictEqual(violations, [])
    assert.strictEqual(s.open, 0, "every connection closed")
    assert.strictEqual(s.created, s.destroyed)
    assert.deepInclude(s, { idle: 0, inUse: 0, waiting: 0, creating: 0 })
    assert.strictEqual(db.live(), 0, "the database has nothing open")
    assert.strictEqual((pool as unknown as { fibers: Set<unknown> }).fibers.size, 0, "no pool fiber left")
    // FIFO: borrowers got their connections in the order they asked (a failed
    // health check sends its caller round again, so only without one)
    const order = acquired.sort((a, b) => a[0] - b[0]).map(([, n]) => n)
    if (!checked) {
      for (let i = 1; i < order.length; i++) assert.isBelow(order[i - 1]!, order[i]!, `FIFO: ${order.join(",")}`)
    }
  })

const run = <A, E>(self: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(
    self.pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(TestClock.layer(), Logger.layer([]))),
      Effect.provideService(Logger.CurrentLoggers, new Set())
    ) as Effect.Effect<A, E>
  )

describe("Pool (property)", () => {
  it("random checkout / use / fail / interrupt / crash / close, with or without reset and an async health check: balanced, never leased twice, FIFO, nothing leaked", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), fc.boolean(), fc.boolean(), (commands, reset, checked) =>
        run(runCommands(commands, reset, checked))
      ),
      { numRuns: 200, timeout: 10_000 }
    )
  })

  it("the same under a scheduler that yields every few operations (reliability C.6 #73)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { maxLength: 40 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 3, max: 64 }),
        (commands, reset, checked, ops) =>
          run(runCommands(commands, reset, checked).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)))
      ),
      { numRuns: 200, timeout: 10_000 }
    )
  })
})
