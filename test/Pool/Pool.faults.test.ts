/**
 * Faults a production pool meets (issue 10): the wall clock stepping back
 * (NTP, a VM resumed) while callers wait and connections idle, a connection
 * that dies while it is leased, and sizes no process can hold.
 *
 * The wall-clock tests step `TestClock` back one hour at a moment when no pool
 * timer is asleep across the step (TestClock keys its sleepers by wall time,
 * so a sleep spanning a backward step would wake an hour late whatever the
 * pool did): the pool stamped a time before the step and compares it after.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Pool } from "effect-otp"
import { eventually, settle } from "../utils/lifecycle.ts"
import { ConnectError, type FakeConn, makeFakeDb } from "./fakeDb.ts"

const stats = Pool.statsUnsafe
const HOUR = 3_600_000

/** Moves the wall clock back one hour; the monotonic clock does not move. */
const wallClockBackOneHour = Effect.flatMap(Clock.currentTimeMillis, (now) => TestClock.setTime(now - HOUR))

/**
 * A connect whose n-th call waits for `gates[n]` (when there is one) and then
 * opens connection n, or fails when `fails` says so; closes are recorded.
 */
const gatedConnect = (options: {
  readonly gates?: Record<number, Deferred.Deferred<void>>
  readonly fails?: (n: number) => boolean
}) => {
  let n = 0
  const closed: Array<number> = []
  const connect = Effect.suspend(() => {
    const id = ++n
    const gate = options.gates?.[id]
    const open = Effect.suspend(() =>
      options.fails?.(id)
        ? Effect.fail(new ConnectError({ attempt: id }))
        : Effect.acquireRelease(Effect.succeed<FakeConn>({ id, alive: true }), () =>
            Effect.sync(() => void closed.push(id))
          )
    )
    return gate === undefined ? open : Effect.andThen(Deferred.await(gate), open)
  })
  return { connect, closed, attempts: () => n }
}

describe("monotonic time (issue 10)", () => {
  it.effect(
    "checkoutTimeout is measured on the monotonic clock: the wall clock stepping back an hour does not delay a queued caller's PoolTimeout",
    () =>
      Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        const db = gatedConnect({ gates: { 1: gate }, fails: () => true })
        const pool = yield* Pool.make({ connect: db.connect, max: 1, checkoutTimeout: "5 seconds" })
        const caller = yield* Effect.forkChild(Effect.flip(Pool.withConnection(pool, Effect.succeed)))
        yield* settle
        // a connect is being made for it (its timeout is not running) when the wall clock steps back
        yield* TestClock.adjust("1 second")
        yield* wallClockBackOneHour
        // the connect fails: now the caller waits, its timeout counted from when it queued
        yield* Deferred.succeed(gate, undefined)
        yield* settle
        yield* TestClock.adjust("3999 millis")
        assert.isUndefined(caller.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        const error = (yield* Fiber.join(caller)) as Pool.PoolTimeout
        assert.strictEqual(error._tag, "PoolTimeout")
        assert.strictEqual(error.waitedMillis, 5000)
        assert.instanceOf(error.cause, ConnectError)
      })
  )

  it.effect(
    "idle reaping is measured on the monotonic clock: a connection idle since before the wall clock stepped back an hour is reaped after idleTimeout",
    () =>
      Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        const db = gatedConnect({ gates: { 2: gate } })
        const pool = yield* Pool.make({ connect: db.connect, max: 2, min: 1, idleTimeout: "10 seconds" })
        yield* eventually(() => stats(pool).idle === 1)
        // a borrower holds connection 1; a second caller queues and connection 2 is made for it (held at the gate)
        const holder = yield* Deferred.make<void>()
        const a = yield* Effect.forkChild(Pool.withConnection(pool, () => Deferred.await(holder)))
        yield* settle
        const b = yield* Effect.forkChild(Pool.withConnection(pool, (conn) => Effect.succeed(conn.id)))
        yield* settle
        assert.deepInclude(stats(pool), { inUse: 1, creating: 1, waiting: 1 })
        // a returns connection 1, b takes it and returns it: idle from now, one open (= min), nothing to reap
        yield* Deferred.succeed(holder, undefined)
        yield* Fiber.join(a)
        assert.strictEqual(yield* Fiber.join(b), 1)
        assert.deepInclude(stats(pool), { open: 1, idle: 1 })
        yield* wallClockBackOneHour
        // connection 2 opens: two open, above min, so the oldest idle one (1) is reaped idleTimeout after it went idle
        yield* Deferred.succeed(gate, undefined)
        yield* eventually(() => stats(pool).idle === 2)
        yield* TestClock.adjust("9999 millis")
        assert.deepStrictEqual(db.closed, [])
        yield* TestClock.adjust("1 millis")
        yield* eventually(() => db.closed.length === 1)
        assert.deepStrictEqual(db.closed, [1])
        assert.deepInclude(stats(pool), { open: 1, idle: 1 })
      })
  )

  it.effect(
    "health checks are scheduled on the monotonic clock: a connection last checked before the wall clock stepped back an hour is checked healthCheckInterval after that check",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* Pool.make({
          connect: db.connect,
          max: 1,
          healthCheck: db.healthCheck,
          healthCheckInterval: "10 seconds"
        })
        // connection 1 is opened for a borrower (a fresh connection is not checked) and held
        const holder = yield* Deferred.make<void>()
        const a = yield* Effect.forkChild(Pool.withConnection(pool, () => Deferred.await(holder)))
        yield* settle
        yield* TestClock.adjust("2 seconds")
        yield* wallClockBackOneHour
        yield* Deferred.succeed(holder, undefined)
        yield* Fiber.join(a)
        assert.deepStrictEqual(db.transcript, ["connect:1"])
        // idle now; its last check (the connect) was 2 s ago: checked 8 s from now
        yield* TestClock.adjust("7999 millis")
        assert.deepStrictEqual(db.transcript, ["connect:1"])
        yield* TestClock.adjust("1 millis")
        yield* eventually(() => db.transcript.length === 2)
        assert.deepStrictEqual(db.transcript, ["connect:1", "check:1"])
        // and every 10 s after
        yield* TestClock.adjust("10 seconds")
        yield* eventually(() => db.transcript.length === 3)
        assert.deepStrictEqual(db.transcript, ["connect:1", "check:1", "check:1"])
      })
  )
})

describe("hand-off (issue 10)", () => {
  it.effect(
    "a connection whose body ended while it was leased never reaches the next waiter, even while its close is still running",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        // closing a connection takes a second: the pool learns of the death long before its Scope closes
        db.closeDelayMillis = 1_000
        const sockets = new Map<number, Deferred.Deferred<void, string>>()
        const pool = yield* Pool.make({
          connect: db.connect,
          max: 1,
          run: (conn) =>
            Effect.gen(function* () {
              const socket = yield* Deferred.make<void, string>()
              sockets.set(conn.id, socket)
              return yield* Deferred.await(socket)
            })
        })
        const holder = yield* Deferred.make<void>()
        let held: FakeConn | undefined
        const a = yield* Effect.forkChild(
          Pool.withConnection(pool, (conn) => {
            held = conn
            return Effect.as(Deferred.await(holder), conn)
          })
        )
        yield* eventually(() => stats(pool).inUse === 1)
        const next = yield* Effect.forkChild(Pool.withConnection(pool, (conn) => db.query(conn, "next")))
        yield* settle
        // connection 1's socket dies while a holds it
        db.kill(held!)
        yield* Deferred.fail(sockets.get(held!.id)!, "socket closed")
        yield* settle
        // a finishes normally and returns it: it goes away, not to the waiter
        yield* Deferred.succeed(holder, undefined)
        assert.strictEqual((yield* Fiber.join(a)).id, 1)
        assert.isUndefined(next.pollUnsafe())
        yield* TestClock.adjust("1 second")
        // connection 1 closed; connection 2 serves the waiter
        assert.strictEqual(yield* Fiber.join(next), 2)
        assert.deepStrictEqual(db.transcript, ["connect:1", "close:1", "connect:2", "next:2"])
        db.closeDelayMillis = 0
      })
  )

  it.effect(
    "with a healthCheck, a connection handed from one borrower to a waiter is checked first: one that died while leased is closed and the waiter gets another",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* Pool.make({ connect: db.connect, max: 1, healthCheck: db.healthCheck })
        const holder = yield* Deferred.make<void>()
        // the backend dies after a's last query, before a returns it: nothing but a check can see it
        const a = yield* Effect.forkChild(
          Pool.withConnection(pool, (conn) =>
            Effect.andThen(
              Deferred.await(holder),
              Effect.sync(() => db.kill(conn))
            )
          )
        )
        yield* eventually(() => stats(pool).inUse === 1)
        const next = yield* Effect.forkChild(Pool.withConnection(pool, (conn) => db.query(conn, "next")))
        yield* settle
        yield* Deferred.succeed(holder, undefined)
        yield* Fiber.join(a)
        assert.strictEqual(yield* Fiber.join(next), 2)
        yield* eventually(() => db.transcript.includes("close:1"))
        assert.deepStrictEqual(db.transcript, ["connect:1", "check:1", "close:1", "connect:2", "next:2"])
      })
  )

  it.effect("a connection made for the waiter is handed over without a check (it was just opened)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* Pool.make({ connect: db.connect, max: 1, healthCheck: db.healthCheck })
      assert.strictEqual(yield* Pool.withConnection(pool, (conn) => db.query(conn)), 1)
      assert.deepStrictEqual(db.transcript, ["connect:1", "q:1"])
      // from idle: checked
      assert.strictEqual(yield* Pool.withConnection(pool, (conn) => db.query(conn)), 1)
      assert.deepStrictEqual(db.transcript, ["connect:1", "q:1", "check:1", "q:1"])
    })
  )
})

describe("bounds (issue 10)", () => {
  it.effect("max above 2^31 - 1 is InvalidOptions naming the field and the value; nothing is started", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      for (const [min, max] of [
        [0, 2 ** 31],
        [2 ** 31, 2 ** 31],
        [0, Number.MAX_SAFE_INTEGER]
      ] as const) {
        const error = yield* Effect.flip(Pool.make({ connect: db.connect, min, max }))
        assert.strictEqual(error._tag, "InvalidOptions")
        assert.strictEqual(error.field, "max")
        assert.strictEqual(error.value, max)
        assert.include(error.message, "2147483647")
      }
      assert.strictEqual(db.attempts(), 0)
    })
  )

  it.effect("a large min is opened in batches of 64 connects in flight, never in one synchronous loop", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.script([], { delayMillis: 1_000 })
      const pool = yield* Pool.make({ connect: db.connect, min: 200, max: 200 })
      yield* settle
      assert.deepInclude(stats(pool), { creating: 64, open: 0 })
      yield* TestClock.adjust("1 second")
      yield* eventually(() => stats(pool).open === 64 && stats(pool).creating === 64)
      yield* TestClock.adjust("1 second")
      yield* eventually(() => stats(pool).open === 128)
      yield* TestClock.adjust("1 second")
      yield* eventually(() => stats(pool).open === 192)
      yield* TestClock.adjust("1 second")
      yield* eventually(() => stats(pool).open === 200)
      assert.deepInclude(stats(pool), { creating: 0, idle: 200, created: 200 })
    })
  )

  it.effect("min = max = 2^31 - 1 starts at once with 64 connects in flight, and closing it stops them all", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.script([], { delayMillis: 1_000 })
      const scope = yield* Scope.make()
      const pool = yield* Scope.provide(Pool.make({ connect: db.connect, min: 2 ** 31 - 1, max: 2 ** 31 - 1 }), scope)
      yield* settle
      assert.deepInclude(stats(pool), { creating: 64, open: 0 })
      yield* TestClock.adjust("1 second")
      yield* eventually(() => stats(pool).open === 64)
      assert.strictEqual(stats(pool).creating, 64)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* settle
      // the 64 connects in flight finish and are closed at once
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      assert.deepInclude(stats(pool), { open: 0, creating: 0, created: 128, destroyed: 128 })
      assert.strictEqual(db.live(), 0)
    })
  )
})
