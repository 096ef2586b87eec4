import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Metric, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Pool } from "effect-otp"
import { eventually, settle } from "../utils/lifecycle.ts"
import { ConnectError, type FakeConn, type FakeDb, makeFakeDb } from "./fakeDb.ts"

type Options = Omit<Pool.Options<FakeConn, ConnectError, Scope.Scope>, "connect">

const open = (db: FakeDb, options: Options) => Pool.make({ connect: db.connect, ...options })

/** A pool in its own Scope, so a test can close it. */
const openClosable = (db: FakeDb, options: Options) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const pool = yield* Scope.provide(open(db, options), scope)
    return { pool, scope }
  })

const use = (db: FakeDb, pool: Pool.Pool<FakeConn, ConnectError>, sql = "q") =>
  Pool.withConnection(pool, (conn) => db.query(conn, sql))

/** Forks a borrower that holds its connection until interrupted; returns the fiber. */
const holdOne = (pool: Pool.Pool<FakeConn, ConnectError>) =>
  Effect.forkChild(Effect.scoped(Effect.andThen(Pool.checkout(pool), Effect.never)))

/** Forks a borrower that holds its connection until `release` (a normal return). */
const borrow = (pool: Pool.Pool<FakeConn, ConnectError>) =>
  Effect.gen(function* () {
    const done = yield* Deferred.make<void>()
    const fiber = yield* Effect.forkChild(Effect.scoped(Effect.andThen(Pool.checkout(pool), Deferred.await(done))))
    yield* settle
    return { fiber, release: Effect.andThen(Deferred.succeed(done, undefined), Fiber.join(fiber)) }
  })

const stats = Pool.statsUnsafe

describe("make", () => {
  it.effect("rejects bad options with InvalidOptions naming the field and the value", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const cases: Array<[Options, string, unknown]> = [
        [{ max: 0 }, "max", 0],
        [{ max: 1.5 }, "max", 1.5],
        [{ max: 2, min: 3 }, "min", 3],
        [{ max: 2, min: -1 }, "min", -1],
        [{ max: 2, checkoutTimeout: -5 }, "checkoutTimeout", -5],
        [{ max: 2, idleTimeout: 0 }, "idleTimeout", 0],
        [{ max: 2, maxWaiting: -1 }, "maxWaiting", -1],
        [{ max: 2, strategy: "random" as any }, "strategy", "random"],
        [{ max: 2, drainTimeout: Number.NaN }, "drainTimeout", Number.NaN],
        [{ max: 2, healthCheckTimeout: 0 }, "healthCheckTimeout", 0],
        [{ max: 2, closeTimeout: -1 }, "closeTimeout", -1]
      ]
      for (const [options, field, value] of cases) {
        const error = yield* Effect.flip(open(db, options))
        assert.strictEqual(error._tag, "InvalidOptions")
        assert.strictEqual(error.field, field)
        assert.deepStrictEqual(error.value, value)
        assert.include(error.message, field)
      }
      assert.deepStrictEqual(db.transcript, [])
    })
  )

  it.effect("opens min connections at once (reliability C.6 #66)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 5, min: 3 })
      yield* eventually(() => stats(pool).idle === 3)
      assert.deepStrictEqual(db.transcript, ["connect:1", "connect:2", "connect:3"])
      assert.strictEqual(stats(pool).open, 3)
    })
  )

  it.effect("Service class: the layer opens the pool and closes its connections when released", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      class Db extends Pool.Service<Db>()("test/Db", { connect: db.connect, max: 2, min: 1 }) {}
      const result = yield* Effect.gen(function* () {
        const pool = yield* Db
        return yield* use(db, pool)
      }).pipe(Effect.provide(Db.layer))
      assert.strictEqual(result, 1)
      assert.strictEqual(db.live(), 0)
      assert.deepStrictEqual(db.transcript.join(" "), "connect:1 q:1 close:1")
    })
  )

  it.effect("layer provides a pool under a key", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const Key = Context.Service<Pool.Pool<FakeConn, ConnectError>>("test/Key")
      const n = yield* Effect.flatMap(Key, (pool) => use(db, pool)).pipe(
        Effect.provide(Layer.fresh(Pool.layer(Key, { connect: db.connect, max: 1 })))
      )
      assert.strictEqual(n, 1)
      assert.strictEqual(db.live(), 0)
    })
  )
})

describe("checkout", () => {
  it.effect("returns the connection when the caller's Scope closes", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 2 })
      const id = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* Pool.checkout(pool)
          assert.strictEqual(stats(pool).inUse, 1)
          return conn.id
        })
      )
      assert.strictEqual(id, 1)
      assert.deepInclude(stats(pool), { inUse: 0, idle: 1, open: 1 })
    })
  )

  it.effect("99 sequential checkouts on a pool of 10 open one connection (reliability C.6 #77)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 10 })
      for (let i = 0; i < 99; i++) yield* use(db, pool)
      assert.strictEqual(stats(pool).created, 1)
      assert.strictEqual(db.attempts(), 1)
    })
  )

  it.effect("lifo reuses the most recently returned idle connection, fifo the oldest", () =>
    Effect.gen(function* () {
      for (const [strategy, expected] of [
        ["lifo", 2],
        ["fifo", 1]
      ] as const) {
        const db = makeFakeDb()
        const pool = yield* open(db, { max: 2, strategy })
        // return 1 then 2
        yield* Effect.scoped(
          Effect.gen(function* () {
            const a = yield* Pool.checkout(pool)
            yield* Effect.scoped(Pool.checkout(pool))
            assert.strictEqual(a.id, 1)
          })
        )
        // both idle now: 2 returned first (inner scope), then 1
        const id = yield* Pool.withConnection(pool, (c) => Effect.succeed(c.id))
        assert.strictEqual(id, strategy === "lifo" ? 1 : 2, strategy)
        assert.isNumber(expected)
      }
    })
  )

  it.effect(
    "blocks when every connection is leased; a return wakes exactly one waiter, in FIFO order (reliability C.6 #70)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* open(db, { max: 1 })
        const holder = yield* borrow(pool)
        yield* eventually(() => stats(pool).inUse === 1)
        const order: Array<string> = []
        const waiters = []
        for (const name of ["a", "b", "c"]) {
          waiters.push(
            yield* Effect.forkChild(
              Pool.withConnection(pool, (c) => Effect.sync(() => void order.push(`${name}:${c.id}`)))
            )
          )
          yield* settle
        }
        assert.strictEqual(stats(pool).waiting, 3)
        assert.deepStrictEqual(order, [])
        yield* holder.release
        for (const w of waiters) yield* Fiber.join(w)
        assert.deepStrictEqual(order, ["a:1", "b:1", "c:1"])
        assert.strictEqual(stats(pool).created, 1)
      })
  )

  it.effect(
    "fails with PoolTimeout after checkoutTimeout of waiting, and the pool stays usable (reliability C.6 #88)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* open(db, { max: 1, checkoutTimeout: "1 second" })
        const holder = yield* borrow(pool)
        yield* eventually(() => stats(pool).inUse === 1)
        const waiter = yield* Effect.forkChild(Effect.exit(use(db, pool)))
        yield* settle
        yield* TestClock.adjust("999 millis")
        assert.isUndefined(waiter.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        const exit = yield* Fiber.join(waiter)
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.instanceOf(error, Pool.PoolTimeout)
        assert.strictEqual((error as Pool.PoolTimeout).waitedMillis, 1000)
        assert.deepInclude(stats(pool), { waiting: 0, timeouts: 1 })
        yield* holder.release
        assert.strictEqual(yield* use(db, pool), 1)
      })
  )

  it.effect(
    "saturation: 50 borrowers on 10 connections time out the excess, then a sustainable load sees no more timeouts (reliability C.6 #89)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* open(db, { max: 10, min: 10, checkoutTimeout: "1 second" })
        yield* eventually(() => stats(pool).idle === 10)
        const slowQuery = Pool.withConnection(pool, (conn) =>
          Effect.andThen(Effect.sleep("300 millis"), db.query(conn))
        )
        const burst = yield* Effect.forkChild(
          Effect.forEach(Array.from({ length: 50 }), () => Effect.exit(slowQuery), { concurrency: "unbounded" })
        )
        yield* settle
        for (let t = 0; t < 12; t++) {
          yield* TestClock.adjust("100 millis")
          yield* settle
        }
        const exits = yield* Fiber.join(burst)
        const served = exits.filter(Exit.isSuccess).length
        // served at t = 0, 300, 600, 900 ms: 40; the other 10 waited 1 s
        assert.strictEqual(served, 40)
        assert.strictEqual(stats(pool).timeouts, 10)
        // the load drops to what 10 connections sustain: no more timeouts
        for (let round = 0; round < 5; round++) {
          const wave = yield* Effect.forkChild(
            Effect.forEach(Array.from({ length: 10 }), () => slowQuery, { concurrency: "unbounded" })
          )
          yield* settle
          yield* TestClock.adjust("300 millis")
          yield* Fiber.join(wave)
        }
        assert.deepInclude(stats(pool), { timeouts: 10, waiting: 0, inUse: 0, open: 10, created: 10 })
      })
  )

  it.effect(
    "the timeout covers waiting only: a slow connect made for the caller is not cut off (reliability C.6 #84)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        db.script([{ delayMillis: 5_000 }])
        const pool = yield* open(db, { max: 1, checkoutTimeout: "1 second" })
        const fiber = yield* Effect.forkChild(use(db, pool))
        yield* settle
        yield* TestClock.adjust("4 seconds")
        assert.isUndefined(fiber.pollUnsafe())
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Fiber.join(fiber), 1)
        assert.strictEqual(stats(pool).timeouts, 0)
      })
  )

  it.effect(
    "fails with PoolFull at once when maxWaiting callers already wait; maxWaiting 0 means no queue (reliability C.6 #88)",
    () =>
      Effect.gen(function* () {
        for (const maxWaiting of [0, 2]) {
          const db = makeFakeDb()
          const pool = yield* open(db, { max: 1, maxWaiting })
          const holder = yield* borrow(pool)
          yield* eventually(() => stats(pool).inUse === 1)
          const waiters = []
          for (let i = 0; i < maxWaiting; i++) waiters.push(yield* Effect.forkChild(use(db, pool)))
          yield* settle
          assert.strictEqual(stats(pool).waiting, maxWaiting)
          const error = yield* Effect.flip(use(db, pool))
          assert.strictEqual(error._tag, "PoolFull")
          assert.strictEqual(stats(pool).waiting, maxWaiting)
          yield* holder.release
          for (const w of waiters) assert.strictEqual(yield* Fiber.join(w), 1)
        }
      })
  )

  it.effect(
    "a waiter interrupted in the queue leaves it and takes nothing; the next return goes to the next waiter (reliability C.6 #71)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* open(db, { max: 1 })
        const holder = yield* borrow(pool)
        yield* eventually(() => stats(pool).inUse === 1)
        const first = yield* Effect.forkChild(use(db, pool, "first"))
        yield* settle
        const second = yield* Effect.forkChild(use(db, pool, "second"))
        yield* settle
        assert.strictEqual(stats(pool).waiting, 2)
        yield* Fiber.interrupt(first)
        assert.strictEqual(stats(pool).waiting, 1)
        yield* holder.release
        assert.strictEqual(yield* Fiber.join(second), 1)
        assert.deepStrictEqual(db.transcript, ["connect:1", "second:1"])
        assert.deepInclude(stats(pool), { inUse: 0, idle: 1, waiting: 0 })
      })
  )

  it.effect(
    "a caller interrupted while its connection is being made does not leak it: it goes idle, never above max (reliability C.6 #72, D5)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        db.script([{ delayMillis: 1_000 }])
        const pool = yield* open(db, { max: 1 })
        const caller = yield* Effect.forkChild(use(db, pool))
        yield* settle
        assert.strictEqual(stats(pool).creating, 1)
        yield* Fiber.interrupt(caller)
        // a second caller does not get a second connection: the one in flight counts against max
        const next = yield* Effect.forkChild(use(db, pool, "next"))
        yield* settle
        assert.strictEqual(stats(pool).creating, 1)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Fiber.join(next), 1)
        assert.deepStrictEqual(db.transcript, ["connect:1", "next:1"])
        assert.deepInclude(stats(pool), { open: 1, idle: 1, created: 1 })
      })
  )

  it.effect("a connection made for an interrupted caller with nobody waiting becomes idle (D5)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.script([{ delayMillis: 1_000 }])
      const pool = yield* open(db, { max: 1 })
      const caller = yield* Effect.forkChild(use(db, pool))
      yield* settle
      yield* Fiber.interrupt(caller)
      yield* TestClock.adjust("1 second")
      yield* eventually(() => stats(pool).idle === 1)
      assert.deepInclude(stats(pool), { open: 1, inUse: 0, creating: 0, waiting: 0 })
    })
  )

  it.effect(
    "callers wait while connects fail and are served by the first connect that succeeds: no error when the outage is shorter than checkoutTimeout (issue 10)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        db.script(["fail", "fail", "fail"])
        const pool = yield* open(db, { max: 2, checkoutTimeout: "5 seconds" })
        const callers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.forkChild(Effect.exit(use(db, pool))))
        yield* settle
        // both connects failed; nobody failed with them
        assert.strictEqual(db.attempts(), 2)
        assert.deepInclude(stats(pool), { waiting: 5, open: 0, creating: 0, timeouts: 0 })
        for (const c of callers) assert.isUndefined(c.pollUnsafe())
        // the backoff (100 ms) ends: one probe connect, which fails
        yield* TestClock.adjust("100 millis")
        assert.strictEqual(db.attempts(), 3)
        for (const c of callers) assert.isUndefined(c.pollUnsafe())
        // 200 ms later the probe succeeds and its connection serves every caller in turn
        yield* TestClock.adjust("200 millis")
        const exits = yield* Effect.forEach(callers, Fiber.join)
        for (const exit of exits) assert.isTrue(Exit.isSuccess(exit))
        assert.strictEqual(db.attempts(), 4)
        assert.deepInclude(stats(pool), { waiting: 0, timeouts: 0, open: 1 })
      })
  )

  it.effect(
    "after checkoutTimeout of failing connects a caller gets PoolTimeout whose cause is the last connect failure, and the pool does not spin (reliability C.6 #68, issue 10)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        db.script([], "fail")
        const pool = yield* open(db, { max: 3, checkoutTimeout: "1 second" })
        const callers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.forkChild(Effect.flip(use(db, pool))))
        yield* settle
        yield* TestClock.adjust("999 millis")
        for (const c of callers) assert.isUndefined(c.pollUnsafe())
        // three connects at 0 ms, then one probe at 100, 300 and 700 ms (backoff 100, 200, 400 ms): no spinning
        assert.strictEqual(db.attempts(), 6)
        yield* TestClock.adjust("1 millis")
        const errors = yield* Effect.forEach(callers, Fiber.join)
        for (const e of errors) {
          assert.instanceOf(e, Pool.PoolTimeout)
          const timeout = e as Pool.PoolTimeout
          assert.strictEqual(timeout.waitedMillis, 1000)
          assert.instanceOf(timeout.cause, ConnectError)
          assert.strictEqual((timeout.cause as ConnectError).attempt, 6)
          assert.include(timeout.message, "last connect failure")
        }
        assert.deepInclude(stats(pool), { open: 0, creating: 0, waiting: 0, inUse: 0, timeouts: 5 })
      })
  )

  it.effect(
    "a caller whose connect outlasts checkoutTimeout and then fails gets PoolTimeout at once: its timeout counts from when it queued (issue 10)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        db.script([{ delayMillis: 3_000, then: "fail" }])
        const pool = yield* open(db, { max: 1, checkoutTimeout: "1 second" })
        const fiber = yield* Effect.forkChild(Effect.flip(use(db, pool)))
        yield* settle
        // a connect is being made for it: the timeout does not cut it off (#84)
        yield* TestClock.adjust("2999 millis")
        assert.isUndefined(fiber.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        const error = (yield* Fiber.join(fiber)) as Pool.PoolTimeout
        assert.strictEqual(error._tag, "PoolTimeout")
        assert.strictEqual(error.waitedMillis, 3000)
        assert.deepStrictEqual(error.cause, new ConnectError({ attempt: 1 }))
        assert.deepInclude(stats(pool), { waiting: 0, timeouts: 1 })
      })
  )

  it.effect(
    "waiters keep waiting through a replacement's connect failure: a returned connection or the next connect serves them",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* open(db, { max: 2 })
        const a = yield* borrow(pool)
        const b = yield* borrow(pool)
        yield* eventually(() => stats(pool).inUse === 2)
        // b's connection goes bad; its replacement fails to connect
        const conns = [...(pool as unknown as { all: Set<{ value: FakeConn }> }).all].map((c) => c.value)
        yield* Pool.invalidate(pool, conns[1]!)
        db.script(["fail"])
        const waiters = yield* Effect.forEach([1, 2], () => Effect.forkChild(Effect.exit(use(db, pool))))
        yield* settle
        yield* b.release
        yield* settle
        assert.strictEqual(db.attempts(), 3)
        // nobody got the connect failure
        assert.strictEqual(stats(pool).waiting, 2)
        yield* a.release
        assert.deepStrictEqual(yield* Fiber.join(waiters[0]!), Exit.succeed(1))
        // the backoff ends, a new connection serves the second (a's connection is idle by then too)
        yield* TestClock.adjust("100 millis")
        assert.isTrue(Exit.isSuccess(yield* Fiber.join(waiters[1]!)))
        assert.deepInclude(stats(pool), { waiting: 0, timeouts: 0 })
      })
  )

  it.effect(
    "while backing off, a checkout queues instead of connecting, and the connect after the delay serves the queue (reliability C.6 #75, issue 10)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        db.script(["fail", "fail"])
        const pool = yield* open(db, { max: 1, connectBackoff: Schedule.spaced("1 second") })
        const first = yield* Effect.forkChild(use(db, pool))
        yield* settle
        assert.strictEqual(db.attempts(), 1)
        // within the backoff: no new attempt, the callers queue, the slot is not used up
        const more = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.forkChild(use(db, pool)))
        yield* settle
        assert.strictEqual(db.attempts(), 1)
        assert.deepInclude(stats(pool), { open: 0, creating: 0, waiting: 6 })
        yield* TestClock.adjust("999 millis")
        assert.strictEqual(db.attempts(), 1)
        yield* TestClock.adjust("1 millis")
        // the backoff is over: one connect (the second scripted failure), then another second
        yield* eventually(() => db.attempts() === 2)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Fiber.join(first), 3)
        for (const f of more) assert.strictEqual(yield* Fiber.join(f), 3)
        assert.strictEqual(db.attempts(), 3)
        assert.deepInclude(stats(pool), { open: 1, waiting: 0, timeouts: 0 })
      })
  )

  it.effect("maxWaiting bounds the queue while the pool backs off: the next caller gets PoolFull at once", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.script(["fail", "fail"])
      const pool = yield* open(db, { max: 3, maxWaiting: 2 })
      const waiters = yield* Effect.forEach([1, 2], () => Effect.forkChild(use(db, pool)))
      yield* settle
      assert.strictEqual(stats(pool).waiting, 2)
      assert.strictEqual((yield* Effect.flip(use(db, pool)))._tag, "PoolFull")
      yield* TestClock.adjust("100 millis")
      for (const w of waiters) assert.isNumber(yield* Fiber.join(w))
    })
  )

  it.effect("the default backoff doubles from 100 ms while connects keep failing, refilling min after each delay", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.script(["fail", "fail", "fail"])
      const pool = yield* open(db, { max: 1, min: 1 })
      yield* eventually(() => db.attempts() === 1)
      yield* settle
      yield* TestClock.adjust("99 millis")
      assert.strictEqual(db.attempts(), 1)
      yield* TestClock.adjust("1 millis")
      yield* eventually(() => db.attempts() === 2)
      yield* TestClock.adjust("199 millis")
      assert.strictEqual(db.attempts(), 2)
      yield* TestClock.adjust("1 millis")
      yield* eventually(() => db.attempts() === 3)
      yield* TestClock.adjust("400 millis")
      yield* eventually(() => stats(pool).idle === 1)
      assert.strictEqual(db.attempts(), 4)
    })
  )

  it.effect(
    "while connects fail, the pool reconnects with one probe connect at a time; once it succeeds, the connects the queue needs follow at once",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        db.script(["fail", "fail", "fail", "fail", "fail", { delayMillis: 50 }])
        const pool = yield* open(db, { max: 5 })
        const hold = yield* Deferred.make<void>()
        const callers = yield* Effect.forEach([1, 2, 3, 4, 5], () =>
          Effect.forkChild(Pool.withConnection(pool, () => Deferred.await(hold)))
        )
        yield* settle
        assert.strictEqual(db.attempts(), 5)
        yield* TestClock.adjust("100 millis")
        // one probe in flight, not five
        assert.strictEqual(db.attempts(), 6)
        assert.deepInclude(stats(pool), { creating: 1, waiting: 5 })
        yield* TestClock.adjust("50 millis")
        yield* eventually(() => stats(pool).inUse === 5)
        assert.strictEqual(db.attempts(), 10)
        yield* Deferred.succeed(hold, undefined)
        for (const c of callers) yield* Fiber.join(c)
        assert.deepInclude(stats(pool), { open: 5, idle: 5, timeouts: 0 })
      })
  )

  it.effect(
    "a caller arriving long after the last connect failure (nobody waited when the backoff ended) starts a probe and is served",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        db.script([], "fail")
        const pool = yield* open(db, { max: 2, checkoutTimeout: "1 second" })
        const first = yield* Effect.forkChild(Effect.flip(use(db, pool)))
        yield* settle
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* Fiber.join(first))._tag, "PoolTimeout")
        // the database comes back; nobody asks for a while
        db.script([], "ok")
        yield* TestClock.adjust("1 minute")
        const attempts = db.attempts()
        assert.isNumber(yield* use(db, pool))
        assert.strictEqual(db.attempts(), attempts + 1)
        assert.deepInclude(stats(pool), { open: 1, timeouts: 1 })
      })
  )

  it.effect("the default connect backoff doubles from 100 ms and is capped at 500 ms", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.script([], "fail")
      yield* open(db, { max: 1, min: 1 })
      yield* eventually(() => db.attempts() === 1)
      const at: Array<number> = []
      for (const delay of [100, 200, 400, 500, 500, 500]) {
        yield* TestClock.adjust(delay - 1)
        at.push(db.attempts())
        yield* TestClock.adjust(1)
        yield* eventually(() => db.attempts() === at.length + 1)
      }
      assert.deepStrictEqual(at, [1, 2, 3, 4, 5, 6])
    })
  )

  it.effect("a connect that acquired something and then failed releases it (reliability C.6 #69)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.script(["failAfterAcquire"])
      const pool = yield* open(db, { max: 1, checkoutTimeout: 0 })
      const error = yield* Effect.flip(use(db, pool))
      assert.strictEqual(error._tag, "PoolTimeout")
      assert.instanceOf((error as Pool.PoolTimeout).cause, ConnectError)
      assert.strictEqual(db.live(), 0)
      assert.deepStrictEqual(db.transcript, ["connect:1", "connect-failed:1", "close:1"])
      assert.deepInclude(stats(pool), { open: 0, created: 0, destroyed: 0 })
    })
  )

  it.effect(
    "healthCheck on checkout replaces a dead idle connection; the caller gets a live one (reliability C.6 #85)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* open(db, { max: 2, healthCheck: db.healthCheck })
        const conn = yield* Pool.withConnection(pool, Effect.succeed)
        db.kill(conn)
        const id = yield* use(db, pool)
        assert.strictEqual(id, 2)
        yield* eventually(() => db.transcript.includes("close:1"))
        assert.deepStrictEqual(db.transcript, ["connect:1", "check:1", "close:1", "connect:2", "q:2"])
        assert.deepInclude(stats(pool), { open: 1, created: 2, destroyed: 1 })
      })
  )

  it.effect("a health check that overruns healthCheckTimeout evicts the connection (reliability C.6 #85)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      let hang = false
      const pool = yield* open(db, {
        max: 2,
        healthCheck: (conn) => (hang ? Effect.andThen(db.healthCheck(conn), Effect.never) : db.healthCheck(conn)),
        healthCheckTimeout: "1 second"
      })
      yield* use(db, pool)
      hang = true
      const caller = yield* Effect.forkChild(use(db, pool))
      yield* settle
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(caller.pollUnsafe())
      hang = false
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(caller), 2)
      yield* eventually(() => db.transcript.includes("close:1"))
      assert.deepStrictEqual(db.transcript, ["connect:1", "q:1", "check:1", "close:1", "connect:2", "q:2"])
    })
  )

  it.effect("a caller interrupted during a health check gives the connection back, not closed", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      let hang = false
      const pool = yield* open(db, {
        max: 1,
        healthCheck: (conn) => (hang ? Effect.andThen(db.healthCheck(conn), Effect.never) : db.healthCheck(conn))
      })
      yield* use(db, pool)
      hang = true
      const caller = yield* Effect.forkChild(Effect.scoped(Pool.checkout(pool)))
      yield* settle
      assert.strictEqual(stats(pool).inUse, 1)
      yield* Fiber.interrupt(caller)
      assert.deepInclude(stats(pool), { inUse: 0, idle: 1, open: 1, destroyed: 0 })
      hang = false
      assert.strictEqual(yield* use(db, pool), 1)
    })
  )

  it.effect("healthCheckInterval finds dead idle connections in the background", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 2, min: 2, healthCheck: db.healthCheck, healthCheckInterval: "1 minute" })
      yield* eventually(() => stats(pool).idle === 2)
      const conn = yield* Pool.withConnection(pool, Effect.succeed)
      db.kill(conn)
      yield* TestClock.adjust("1 minute")
      yield* eventually(() => db.transcript.includes(`close:${conn.id}`) && stats(pool).idle === 2)
      assert.deepInclude(stats(pool), { open: 2, created: 3, destroyed: 1 })
    })
  )

  it.effect("a borrower that fails has its connection closed, never returned dirty (reliability C.6 #86)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 1 })
      yield* Effect.flip(Pool.withConnection(pool, () => Effect.fail("boom")))
      yield* eventually(() => db.transcript.includes("close:1"))
      assert.strictEqual(yield* use(db, pool), 2)
    })
  )

  it.effect(
    "reset runs when a borrower failed or was interrupted; success keeps the connection, failure closes it (reliability C.6 #86)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        let resetFails = false
        const pool = yield* open(db, {
          max: 1,
          reset: (conn) =>
            Effect.suspend(() => {
              db.transcript.push(`reset:${conn.id}`)
              return resetFails ? Effect.fail("reset failed") : Effect.void
            })
        })
        yield* Effect.flip(Pool.withConnection(pool, () => Effect.fail("boom")))
        const interrupted = yield* Effect.forkChild(Pool.withConnection(pool, () => Effect.never))
        yield* settle
        yield* Fiber.interrupt(interrupted)
        resetFails = true
        yield* Effect.flip(Pool.withConnection(pool, () => Effect.fail("boom")))
        yield* eventually(() => db.transcript.includes("close:1"))
        assert.strictEqual(yield* use(db, pool), 2)
        assert.deepStrictEqual(db.transcript, [
          "connect:1",
          "reset:1",
          "reset:1",
          "reset:1",
          "close:1",
          "connect:2",
          "q:2"
        ])
      })
  )

  it.effect("a checkout of a closed pool fails with PoolClosed at once (reliability C.6 #81, D8)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const { pool, scope } = yield* openClosable(db, { max: 1 })
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(Effect.scoped(Pool.checkout(pool)))
      assert.strictEqual(error._tag, "PoolClosed")
      assert.deepStrictEqual(db.transcript, [])
    })
  )
})

describe("withConnection", () => {
  it.effect("a chain of 5 000 hand-offs between waiters does not grow the stack, and keeps FIFO order", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 1 })
      const holder = yield* borrow(pool)
      const order: Array<number> = []
      const fibers = []
      for (let i = 0; i < 5_000; i++) {
        fibers.push(yield* Effect.forkChild(Pool.withConnection(pool, () => Effect.sync(() => void order.push(i)))))
      }
      yield* settle
      assert.strictEqual(stats(pool).waiting, 5_000)
      yield* holder.release
      for (const f of fibers) yield* Fiber.join(f)
      assert.strictEqual(order.length, 5_000)
      assert.isTrue(order.every((n, i) => n === i))
      assert.deepInclude(stats(pool), { open: 1, idle: 1, waiting: 0, created: 1 })
    })
  )

  it.effect("returns f's result and f's typed failure", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 1 })
      assert.strictEqual(yield* use(db, pool), 1)
      const e = yield* Effect.flip(Pool.withConnection(pool, () => Effect.fail("nope" as const)))
      assert.strictEqual(e, "nope")
    })
  )

  it.effect("pipeable form", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 1 })
      const id = yield* pool.pipe(Pool.withConnection((c: FakeConn) => Effect.succeed(c.id)))
      assert.strictEqual(id, 1)
    })
  )

  it.effect("a connection whose run body fails is removed and replaced on demand", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const sockets = new Map<number, (e: Effect.Effect<void, string>) => void>()
      const pool = yield* Pool.make({
        connect: db.connect,
        max: 2,
        run: (conn) => Effect.callback<void, string>((resume) => void sockets.set(conn.id, resume))
      })
      assert.strictEqual(yield* use(db, pool), 1)
      sockets.get(1)!(Effect.fail("socket closed"))
      yield* eventually(() => db.transcript.includes("close:1"))
      assert.deepInclude(stats(pool), { open: 0, idle: 0, destroyed: 1 })
      assert.strictEqual(yield* use(db, pool), 2)
    })
  )
})

describe("invalidate", () => {
  it.effect("an idle connection is closed at once, and the next checkout opens another (reliability C.6 #74)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 1 })
      const conn = yield* Pool.withConnection(pool, Effect.succeed)
      yield* Pool.invalidate(pool, conn)
      yield* eventually(() => db.transcript.includes("close:1"))
      assert.strictEqual(yield* use(db, pool), 2)
    })
  )

  it.effect(
    "a leased connection is closed when returned, and queued waiters are not stranded (reliability C.6 #74)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const pool = yield* open(db, { max: 1 })
        const result = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* Pool.checkout(pool)
            const waiter = yield* Effect.forkChild(use(db, pool, "waiter"))
            yield* settle
            yield* Pool.invalidate(pool, conn)
            assert.isFalse(db.transcript.includes("close:1"))
            return waiter
          })
        )
        assert.strictEqual(yield* Fiber.join(result), 2)
        assert.deepStrictEqual(db.transcript, ["connect:1", "close:1", "connect:2", "waiter:2"])
        assert.deepInclude(stats(pool), { open: 1, created: 2, destroyed: 1 })
      })
  )

  it.effect("invalidating every connection does not make checkout hang", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 3, min: 3 })
      yield* eventually(() => stats(pool).idle === 3)
      const conns = yield* Effect.scoped(Effect.all([Pool.checkout(pool), Pool.checkout(pool), Pool.checkout(pool)]))
      for (const c of conns) yield* Pool.invalidate(pool, c)
      assert.isNumber(yield* use(db, pool))
      yield* eventually(() => stats(pool).open === 3)
    })
  )
})

describe("idle reaping", () => {
  it.effect("idle connections above min close after idleTimeout; min stay (reliability C.6 #76)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 5, min: 1, idleTimeout: "1 minute" })
      yield* Effect.scoped(
        Effect.all(
          Array.from({ length: 5 }, () => Pool.checkout(pool)),
          { concurrency: "unbounded" }
        )
      )
      assert.deepInclude(stats(pool), { open: 5, idle: 5 })
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual(stats(pool).open, 5)
      yield* TestClock.adjust("1 second")
      yield* eventually(() => stats(pool).open === 1)
      assert.strictEqual(db.live(), 1)
    })
  )

  it.effect("background health checks do not reset a connection's idle time", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, {
        max: 2,
        idleTimeout: "150 seconds",
        healthCheck: db.healthCheck,
        healthCheckInterval: "1 minute"
      })
      yield* use(db, pool)
      yield* TestClock.adjust("1 minute")
      yield* settle
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.deepStrictEqual(db.transcript, ["connect:1", "q:1", "check:1", "check:1"])
      yield* TestClock.adjust("29 seconds")
      yield* settle
      assert.strictEqual(stats(pool).open, 1)
      yield* TestClock.adjust("1 second")
      yield* eventually(() => stats(pool).open === 0)
      assert.deepStrictEqual(db.transcript, ["connect:1", "q:1", "check:1", "check:1", "close:1"])
    })
  )

  it.effect("a leased connection is never reaped (reliability C.6 #79)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 2, idleTimeout: "1 minute" })
      const holder = yield* holdOne(pool)
      yield* eventually(() => stats(pool).inUse === 1)
      yield* TestClock.adjust("10 minutes")
      yield* settle
      assert.deepInclude(stats(pool), { open: 1, inUse: 1, destroyed: 0 })
      yield* Fiber.interrupt(holder)
      // returned by an interrupted borrower without reset: closed
      yield* eventually(() => stats(pool).open === 0)
    })
  )

  it.effect("a connection reused before its idle timeout is not reaped", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const pool = yield* open(db, { max: 2, idleTimeout: "1 minute" })
      yield* use(db, pool)
      yield* TestClock.adjust("50 seconds")
      yield* use(db, pool)
      yield* TestClock.adjust("50 seconds")
      yield* settle
      assert.strictEqual(stats(pool).open, 1)
      yield* TestClock.adjust("10 seconds")
      yield* eventually(() => stats(pool).open === 0)
    })
  )
})

describe("close", () => {
  it.effect(
    "waiters fail with PoolClosed, idle connections close at once, leased ones when returned (reliability C.6 #80, D6, D8)",
    () =>
      Effect.gen(function* () {
        const db = makeFakeDb()
        const { pool, scope } = yield* openClosable(db, { max: 2, min: 2 })
        yield* eventually(() => stats(pool).idle === 2)
        const borrower = yield* Effect.forkChild(
          Effect.scoped(Effect.andThen(Pool.checkout(pool), Effect.sleep("1 second")))
        )
        yield* holdOne(pool).pipe(Effect.andThen(() => Effect.void))
        yield* eventually(() => stats(pool).inUse === 2)
        const waiter = yield* Effect.forkChild(Effect.flip(use(db, pool)))
        yield* settle
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        const error = yield* Fiber.join(waiter)
        assert.strictEqual(error._tag, "PoolClosed")
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(borrower)
        // the never-returning holder is closed by force after drainTimeout (30 s by default)
        assert.isUndefined(closing.pollUnsafe())
        yield* TestClock.adjust("30 seconds")
        yield* Fiber.join(closing)
        assert.strictEqual(db.live(), 0)
        const s = stats(pool)
        assert.deepInclude(s, { open: 0, idle: 0, waiting: 0, creating: 0 })
        assert.strictEqual(s.created - s.destroyed, s.open)
      })
  )

  it.effect("drainTimeout bounds how long close waits for leased connections", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const { pool, scope } = yield* openClosable(db, { max: 1, drainTimeout: "2 seconds" })
      const holder = yield* holdOne(pool)
      yield* eventually(() => stats(pool).inUse === 1)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* settle
      yield* TestClock.adjust("1999 millis")
      assert.isUndefined(closing.pollUnsafe())
      assert.strictEqual(db.live(), 1)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(closing)
      assert.strictEqual(db.live(), 0)
      // the borrower's late return is ignored
      yield* Fiber.interrupt(holder)
      assert.deepInclude(stats(pool), { open: 0, inUse: 0, destroyed: 1 })
    })
  )

  it.effect("a hanging connection close is cut off by closeTimeout (reliability C.6 #82)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const { pool, scope } = yield* openClosable(db, { max: 1, closeTimeout: "1 second" })
      yield* use(db, pool)
      db.closeDelayMillis = 60_000
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      yield* Fiber.join(closing)
      assert.deepInclude(stats(pool), { open: 0 })
    })
  )

  it.effect("a connection finalizer that dies does not stop the others from closing (reliability C.6 #67)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      let n = 0
      let closed = 0
      const { pool, scope } = yield* openClosable(
        {
          ...db,
          connect: Effect.gen(function* () {
            const id = ++n
            yield* Effect.addFinalizer(() => (id === 2 ? Effect.die("finalizer died") : Effect.sync(() => closed++)))
            return { id, alive: true }
          })
        } as FakeDb,
        { max: 3, min: 3 }
      )
      yield* eventually(() => stats(pool).idle === 3)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(closed, 2)
      assert.deepInclude(stats(pool), { open: 0, created: 3, destroyed: 3 })
    })
  )

  it.effect("close with min > 0 destroys as many as it created (reliability C.6 #83)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const { pool, scope } = yield* openClosable(db, { max: 4, min: 2 })
      yield* Effect.all(
        Array.from({ length: 4 }, () => use(db, pool)),
        { concurrency: "unbounded" }
      )
      yield* Scope.close(scope, Exit.void)
      const s = stats(pool)
      assert.strictEqual(s.created, s.destroyed)
      assert.strictEqual(db.live(), 0)
      const connects = db.transcript.filter((l) => l.startsWith("connect:")).length
      const closes = db.transcript.filter((l) => l.startsWith("close:")).length
      assert.strictEqual(connects, closes)
    })
  )
})

describe("stats", () => {
  it.effect("counts open, idle, in use, creating, waiting, created, destroyed and timeouts", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      db.script([{ delayMillis: 100 }])
      const pool = yield* open(db, { max: 1, checkoutTimeout: "1 second" })
      assert.deepStrictEqual(yield* Pool.stats(pool), {
        open: 0,
        idle: 0,
        inUse: 0,
        creating: 0,
        waiting: 0,
        created: 0,
        destroyed: 0,
        timeouts: 0
      })
      const a = yield* Effect.forkChild(Effect.scoped(Effect.andThen(Pool.checkout(pool), Effect.sleep("2 seconds"))))
      yield* settle
      assert.deepInclude(stats(pool), { creating: 1, waiting: 1 })
      const b = yield* Effect.forkChild(Effect.exit(use(db, pool)))
      yield* settle
      assert.deepInclude(stats(pool), { creating: 1, waiting: 2 })
      yield* TestClock.adjust("100 millis")
      assert.deepInclude(stats(pool), { open: 1, inUse: 1, creating: 0, waiting: 1, created: 1 })
      yield* TestClock.adjust("1 second")
      assert.isTrue(Exit.isFailure(yield* Fiber.join(b)))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(a)
      assert.deepInclude(stats(pool), { open: 1, idle: 1, inUse: 0, waiting: 0, timeouts: 1 })
    })
  )

  it.effect("reports through Effect Metrics: gauges, counters and the wait-time histogram, by pool name", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const attrs = { pool: "metrics-test" }
      const created = Metric.withAttributes(Pool.metrics.created, attrs)
      const timeouts = Metric.withAttributes(Pool.metrics.timeouts, attrs)
      const inUse = Metric.withAttributes(Pool.metrics.inUse, attrs)
      const waits = Metric.withAttributes(Pool.metrics.waitTime, attrs)
      const pool = yield* open(db, { name: "metrics-test", max: 1, checkoutTimeout: "1 second" })
      const holder = yield* borrow(pool)
      yield* Effect.forkChild(Effect.exit(use(db, pool)))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      const waiter = yield* Effect.forkChild(use(db, pool))
      yield* settle
      assert.strictEqual((yield* Metric.value(inUse)).value, 1)
      yield* holder.release
      yield* Fiber.join(waiter)
      yield* settle
      assert.strictEqual((yield* Metric.value(created)).count, 1)
      assert.strictEqual((yield* Metric.value(timeouts)).count, 1)
      assert.strictEqual((yield* Metric.value(inUse)).value, 0)
      const h = yield* Metric.value(waits)
      assert.isAtLeast(h.count, 1)
    })
  )
})
