/**
 * The connection pool (seed exercise 1): a fake database whose connections
 * take 20 ms to open and sometimes die, in front of it a pool of 5.
 *
 * 1. 50 concurrent queries: the queue forms, then drains as connections open
 *    and are reused; one connection dies in the middle and is replaced.
 * 2. The load stops: idle connections above `min` are reaped.
 * 3. Five long reports hold every connection: one more query times out.
 *
 * Run with `npm run example:pool`.
 */
import { Data, Deferred, Effect, Fiber } from "effect"
import { Pool } from "effect-otp"

class DbError extends Data.TaggedError("DbError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

interface Connection {
  readonly id: number
  readonly dead: Deferred.Deferred<void, DbError>
  queries: number
}

const started = Date.now()
const say = (line: string) => Effect.sync(() => console.log(`${String(Date.now() - started).padStart(5)} ms  ${line}`))

let nextId = 0

/** Opens a connection in 20 ms; closing it is logged. */
const connect = Effect.gen(function* () {
  const id = ++nextId
  yield* Effect.sleep("20 millis")
  const dead = yield* Deferred.make<void, DbError>()
  const conn: Connection = { id, dead, queries: 0 }
  yield* say(`db: connection ${id} opened`)
  yield* Effect.addFinalizer(() => say(`db: connection ${id} closed`))
  return conn
})

/** A query; connection 3 dies (the server drops it) on its fourth query. */
const query = (conn: Connection, millis: number) =>
  Effect.gen(function* () {
    conn.queries++
    if (conn.id === 3 && conn.queries === 4) {
      yield* say(`db: connection ${conn.id} dropped by the server`)
      yield* Deferred.fail(conn.dead, new DbError({ reason: "connection reset" }))
      return yield* Effect.fail(new DbError({ reason: "connection reset" }))
    }
    yield* Effect.sleep(millis)
    return conn.id
  })

const program = Effect.gen(function* () {
  const pool = yield* Pool.make({
    name: "example/Db",
    connect,
    // the connection's body: it ends (and the pool replaces the connection) when the server drops it
    run: (conn) => Deferred.await(conn.dead),
    max: 5,
    min: 1,
    idleTimeout: "300 millis",
    checkoutTimeout: "300 millis"
  })
  const stats = Effect.sync(() => {
    const s = Pool.statsUnsafe(pool)
    return `open ${s.open}, idle ${s.idle}, in use ${s.inUse}, opening ${s.creating}, waiting ${s.waiting}`
  })
  const report = (label: string) => Effect.flatMap(stats, (s) => say(`${label}: ${s}`))

  yield* Effect.sleep("40 millis")
  yield* report("pool ready (min 1)")

  // 1. 50 concurrent queries of 10-30 ms
  yield* say("50 queries arrive at once")
  const watcher = yield* Effect.forkChild(Effect.forever(Effect.andThen(Effect.sleep("40 millis"), report("  queue"))))
  const results = yield* Effect.forEach(
    Array.from({ length: 50 }, (_, i) => i),
    (i) =>
      Pool.withConnection(pool, (conn) => query(conn, 10 + (i % 3) * 10)).pipe(
        Effect.retry({ times: 1 }) // a dropped connection: try once more on another one
      ),
    { concurrency: "unbounded" }
  )
  yield* Fiber.interrupt(watcher)
  const perConn = new Map<number, number>()
  for (const id of results) perConn.set(id, (perConn.get(id) ?? 0) + 1)
  yield* say(`all 50 answered; queries per connection: ${[...perConn].map(([id, n]) => `#${id}: ${n}`).join(", ")}`)
  yield* report("after the burst")

  // 2. nothing to do: connections above min are reaped after 300 ms idle
  yield* say("load stops; waiting 400 ms")
  yield* Effect.sleep("400 millis")
  yield* report("after the idle timeout")

  // 3. five long reports hold every connection; one more query times out after 300 ms
  yield* say("5 long reports (600 ms each) take every connection")
  const reports = yield* Effect.forkChild(
    Effect.forEach(
      Array.from({ length: 5 }, (_, i) => i),
      () => Pool.withConnection(pool, (conn) => query(conn, 600)),
      { concurrency: "unbounded" }
    )
  )
  yield* Effect.sleep("50 millis")
  yield* report("reports running")
  yield* say("one more query arrives")
  const outcome = yield* Pool.withConnection(pool, (conn) => query(conn, 10)).pipe(
    Effect.map((id) => `answered by connection ${id}`),
    Effect.catchTag("PoolTimeout", (e) => Effect.succeed(`failed: ${e.message}`))
  )
  yield* say(`  ${outcome}`)
  yield* Fiber.join(reports)
  yield* report("reports done")
  const s = Pool.statsUnsafe(pool)
  yield* say(`totals: ${s.created} connections opened, ${s.destroyed} closed, ${s.timeouts} checkout timed out`)
  yield* say("closing the pool")
})

Effect.runPromise(Effect.scoped(program)).then(
  () => console.log(`${String(Date.now() - started).padStart(5)} ms  pool closed, every connection released`),
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
