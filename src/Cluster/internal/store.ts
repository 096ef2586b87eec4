/**
 * The bookkeeping of effect-otp/cluster: the child table, the event log and
 * the registry table. One interface, two implementations: PostgreSQL (the
 * cluster's own database, liveness joined from the engine's `cluster_runners`
 * table) and memory (in-process tests beside effect/cluster's TestRunner).
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Duration from "effect/Duration"
import { PersistenceError } from "effect/cluster/ClusterError"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"

/** @internal */
export interface ChildRow {
  readonly supervisor: string
  readonly id: string
  readonly status: "started" | "failed"
  readonly incarnation: number
  readonly runner: string | null
  /** Wall-clock ms of the restarts inside the current window. */
  readonly window: ReadonlyArray<number>
  readonly restarts: number
  readonly startedAt: number
}

/** @internal */
export interface ChildView extends ChildRow {
  /** The runner recorded for the child is registered, healthy and heartbeating (engine's runner table). */
  readonly alive: boolean
}

/** @internal */
export interface EventRow {
  readonly seq: number
  readonly scope: string
  readonly kind: string
  readonly id: string
  readonly runner: string | null
  readonly incarnation: number
  readonly detail: string | null
  readonly at: number
}

/** @internal */
export interface RegRow {
  readonly registry: string
  readonly key: string
  readonly owner: string
  readonly runner: string
  readonly value: string
  readonly alive: boolean
}

/** @internal */
export type Insert =
  | { readonly _tag: "Inserted" }
  | { readonly _tag: "Exists"; readonly row: ChildRow }
  | {
      readonly _tag: "Max"
    }

/** @internal */
export interface Store {
  readonly insertChild: (
    sup: string,
    id: string,
    now: number,
    maxChildren: number
  ) => Effect.Effect<Insert, PersistenceError>
  readonly getChild: (sup: string, id: string) => Effect.Effect<Option.Option<ChildRow>, PersistenceError>
  readonly deleteChild: (sup: string, id: string) => Effect.Effect<boolean, PersistenceError>
  /**
   * Records that this process (its `session`) is the runner at `address`:
   * a runner restarted on the same address is a new session, so rows of the
   * old process stop counting as alive.
   */
  readonly registerSession: (address: string, session: string) => Effect.Effect<void, PersistenceError>
  /** Bumps the incarnation (the fencing token) and records the runner. */
  readonly activate: (
    sup: string,
    id: string,
    runner: string,
    session: string
  ) => Effect.Effect<Option.Option<ChildRow>, PersistenceError>
  /** Adds a restart at `now`; if the window then holds more than maxRestarts, marks the child failed. */
  readonly recordRestart: (
    sup: string,
    id: string,
    now: number,
    windowMs: number,
    maxRestarts: number,
    runner: string,
    session: string
  ) => Effect.Effect<Option.Option<{ readonly row: ChildRow; readonly exceeded: boolean }>, PersistenceError>
  /** Clears `failed` and the restart window. */
  readonly resetChild: (sup: string, id: string) => Effect.Effect<Option.Option<ChildRow>, PersistenceError>
  /** Forgets the runner if the incarnation is still this one (a graceful stop). */
  readonly release: (sup: string, id: string, incarnation: number) => Effect.Effect<void, PersistenceError>
  readonly listChildren: (sup: string) => Effect.Effect<ReadonlyArray<ChildView>, PersistenceError>
  /** Runs `effect` only while `token` is the child's incarnation (row locked for the duration in SQL). */
  readonly fenced: <A, E, R>(
    sup: string,
    id: string,
    token: number,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | PersistenceError | { readonly _tag: "StaleToken"; readonly current: number }, R>
  /**
   * Appends an event; the scope keeps about its last `keep` events (default
   * {@link defaultMaxEvents}, `Infinity` keeps all): the SQL store prunes the
   * older ones every `pruneEvery(keep)` appends from this process.
   */
  readonly appendEvent: (event: Omit<EventRow, "seq">, keep?: number) => Effect.Effect<void, PersistenceError>
  readonly lastEventSeq: (scope: string) => Effect.Effect<number, PersistenceError>
  readonly readEvents: (scope: string, after: number) => Effect.Effect<ReadonlyArray<EventRow>, PersistenceError>
  readonly regInsert: (
    registry: string,
    key: string,
    owner: string,
    runner: string,
    session: string,
    value: string
  ) => Effect.Effect<Option.Option<RegRow>, PersistenceError>
  /** Deletes the entry if `owner` holds it from this `session` (a newer incarnation elsewhere keeps its entry). */
  readonly regDelete: (
    registry: string,
    key: string,
    owner: string,
    session: string
  ) => Effect.Effect<boolean, PersistenceError>
  readonly regList: (registry: string) => Effect.Effect<ReadonlyArray<RegRow>, PersistenceError>
  /** Deletes rows whose runner is no longer alive; returns them. */
  readonly regSweep: (registry: string) => Effect.Effect<ReadonlyArray<RegRow>, PersistenceError>
}

/**
 * Events kept per scope (supervisor or registry) unless told otherwise.
 *
 * @internal
 */
export const defaultMaxEvents = 10_000

/**
 * How many appends from one process between two prunes of a scope keeping
 * `keep` events: a tenth of it, so a prune's cost (an index walk of `keep`
 * entries) is spread to about ten entries per append and the table holds at
 * most `keep + pruneEvery(keep)` rows per scope and appending process.
 *
 * @internal
 */
export const pruneEvery = (keep: number): number => Math.max(1, Math.ceil(keep / 10))

/**
 * This process, as a runner: a restarted runner on the same address is
 * another session.
 *
 * @internal
 */
export const processSession: string = globalThis.crypto.randomUUID()

/** @internal */
export class ClusterStore extends Context.Service<ClusterStore, Store>()("effect-otp/cluster/ClusterStore") {}

const keyOf = (a: string, b: string) => `${a}\u0000${b}`

/**
 * In memory, for one process (tests with effect/cluster's TestRunner). Every
 * recorded runner counts as alive unless `markDead` says otherwise.
 *
 * @internal
 */
export const makeMemory = (): Store & { readonly markDead: (runner: string, dead: boolean) => void } => {
  const children = new Map<string, ChildRow>()
  // per scope, oldest first; the memory store prunes on every append
  const events = new Map<string, Array<EventRow>>()
  const regs = new Map<string, Omit<RegRow, "alive">>()
  const regSessions = new Map<string, string>()
  const dead = new Set<string>()
  const sessions = new Map<string, string>()
  const sessionOf = new Map<string, string>()
  const alive = (runner: string | null, session?: string) =>
    runner !== null &&
    !dead.has(runner) &&
    (session === undefined || sessions.get(runner) === undefined || sessions.get(runner) === session)
  let seq = 0
  const store: Store & { readonly markDead: (runner: string, dead: boolean) => void } = {
    markDead: (runner, isDead) => {
      if (isDead) dead.add(runner)
      else dead.delete(runner)
    },
    insertChild: (sup, id, now, maxChildren) =>
      Effect.sync(() => {
        const existing = children.get(keyOf(sup, id))
        if (existing) return { _tag: "Exists", row: existing } as const
        let count = 0
        for (const row of children.values()) if (row.supervisor === sup) count++
        if (count >= maxChildren) return { _tag: "Max" } as const
        children.set(keyOf(sup, id), {
          supervisor: sup,
          id,
          status: "started",
          incarnation: 0,
          runner: null,
          window: [],
          restarts: 0,
          startedAt: now
        })
        return { _tag: "Inserted" } as const
      }),
    getChild: (sup, id) => Effect.sync(() => Option.fromUndefinedOr(children.get(keyOf(sup, id)))),
    deleteChild: (sup, id) => Effect.sync(() => children.delete(keyOf(sup, id))),
    registerSession: (address, session) =>
      Effect.sync(() => {
        sessions.set(address, session)
      }),
    activate: (sup, id, runner, session) =>
      Effect.sync(() => {
        const row = children.get(keyOf(sup, id))
        if (!row) return Option.none()
        sessionOf.set(keyOf(sup, id), session)
        const next = { ...row, incarnation: row.incarnation + 1, runner }
        children.set(keyOf(sup, id), next)
        return Option.some(next)
      }),
    recordRestart: (sup, id, now, windowMs, maxRestarts, runner, session) =>
      Effect.sync(() => {
        const row = children.get(keyOf(sup, id))
        if (!row) return Option.none()
        sessionOf.set(keyOf(sup, id), session)
        const window = [...row.window.filter((t) => t > now - windowMs), now]
        const exceeded = window.length > maxRestarts
        const next: ChildRow = exceeded
          ? { ...row, status: "failed", runner: null, window, restarts: row.restarts + 1 }
          : { ...row, window, restarts: row.restarts + 1, incarnation: row.incarnation + 1, runner }
        children.set(keyOf(sup, id), next)
        return Option.some({ row: next, exceeded })
      }),
    resetChild: (sup, id) =>
      Effect.sync(() => {
        const row = children.get(keyOf(sup, id))
        if (!row) return Option.none()
        const next: ChildRow = { ...row, status: "started", window: [] }
        children.set(keyOf(sup, id), next)
        return Option.some(next)
      }),
    release: (sup, id, incarnation) =>
      Effect.sync(() => {
        const row = children.get(keyOf(sup, id))
        if (row && row.incarnation === incarnation) children.set(keyOf(sup, id), { ...row, runner: null })
      }),
    listChildren: (sup) =>
      Effect.sync(() =>
        Array.from(children.values())
          .filter((row) => row.supervisor === sup)
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          .map((row) => ({ ...row, alive: alive(row.runner, sessionOf.get(keyOf(row.supervisor, row.id))) }))
      ),
    fenced: (sup, id, token, effect) =>
      Effect.suspend((): Effect.Effect<any, any, any> => {
        const row = children.get(keyOf(sup, id))
        if (!row || row.incarnation !== token || row.status === "failed") {
          return Effect.fail({ _tag: "StaleToken", current: row ? row.incarnation : -1 } as const)
        }
        return effect
      }),
    appendEvent: (event, keep = defaultMaxEvents) =>
      Effect.sync(() => {
        let rows = events.get(event.scope)
        if (rows === undefined) events.set(event.scope, (rows = []))
        rows.push({ ...event, seq: ++seq })
        if (rows.length > keep) rows.splice(0, rows.length - keep)
      }),
    lastEventSeq: () => Effect.sync(() => seq),
    readEvents: (scope, after) => Effect.sync(() => (events.get(scope) ?? []).filter((e) => e.seq > after)),
    regInsert: (registry, key, owner, runner, session, value) =>
      Effect.sync(() => {
        const existing = regs.get(keyOf(registry, key))
        if (existing && existing.owner !== owner && alive(existing.runner, regSessions.get(keyOf(registry, key)))) {
          return Option.some({ ...existing, alive: true })
        }
        regSessions.set(keyOf(registry, key), session)
        regs.set(keyOf(registry, key), { registry, key, owner, runner, value })
        return Option.none()
      }),
    regDelete: (registry, key, owner, session) =>
      Effect.sync(() => {
        const existing = regs.get(keyOf(registry, key))
        if (!existing || existing.owner !== owner || regSessions.get(keyOf(registry, key)) !== session) return false
        regs.delete(keyOf(registry, key))
        return true
      }),
    regList: (registry) =>
      Effect.sync(() =>
        Array.from(regs.values())
          .filter((r) => r.registry === registry)
          .map((r) => ({ ...r, alive: alive(r.runner, regSessions.get(keyOf(r.registry, r.key))) }))
          .filter((r) => r.alive)
      ),
    regSweep: (registry) =>
      Effect.sync(() => {
        const gone: Array<RegRow> = []
        for (const [k, r] of regs) {
          if (r.registry === registry && !alive(r.runner, regSessions.get(k))) {
            regs.delete(k)
            gone.push({ ...r, alive: false })
          }
        }
        return gone
      })
  }
  return store
}

/** @internal */
export const layerMemory: Layer.Layer<ClusterStore> = Layer.sync(ClusterStore)(() => makeMemory())

/** @internal */
export interface SqlOptions {
  /** effect/cluster's table prefix (`cluster` unless `SqlRunnerStorage.layerWith` set another). */
  readonly clusterPrefix?: string | undefined
  /** Our tables' prefix. */
  readonly prefix?: string | undefined
  /** The runners' `shardLockExpiration`: a runner whose heartbeat is older is not alive. */
  readonly shardLockExpiration: Duration.Input
}

interface RawChild {
  readonly supervisor: string
  readonly id: string
  readonly status: string
  readonly incarnation: string | number
  readonly runner: string | null
  readonly window_ms: string
  readonly restarts: string | number
  readonly started_at: string | number
  readonly alive?: boolean
}

const fromRaw = (raw: RawChild): ChildView => ({
  supervisor: raw.supervisor,
  id: raw.id,
  status: raw.status === "failed" ? "failed" : "started",
  incarnation: Number(raw.incarnation),
  runner: raw.runner,
  window: JSON.parse(raw.window_ms) as Array<number>,
  restarts: Number(raw.restarts),
  startedAt: Number(raw.started_at),
  alive: raw.alive === true
})

/**
 * PostgreSQL: the tables live in the cluster's own database. Liveness is the
 * engine's: a runner is alive while its `cluster_runners` row is healthy and
 * its heartbeat younger than the lock expiration (what `getRunners` reads).
 *
 * @internal
 */
export const makeSql = Effect.fnUntraced(function* (options: SqlOptions) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const prefix = options.prefix ?? "effect_otp"
  const children = sql(`${prefix}_children`)
  const events = sql(`${prefix}_events`)
  // appends per scope since this process last pruned it
  const appended = new Map<string, number>()
  const registry = sql(`${prefix}_registry`)
  const expiry = Math.max(1, Math.ceil(Duration.toSeconds(Duration.fromInputUnsafe(options.shardLockExpiration))))
  // `cluster_runners` is the engine's table (created by its migrations).
  // ... and our session table tells a restarted runner (same address, new
  // process) from the one that recorded the row.
  const aliveExpr = (table: string) =>
    sql.literal(
      `(EXISTS (SELECT 1 FROM ${options.clusterPrefix ?? "cluster"}_runners r WHERE r.address = ${table}.runner AND r.healthy AND r.last_heartbeat > NOW() - INTERVAL '${expiry} seconds')` +
        ` AND EXISTS (SELECT 1 FROM ${prefix}_sessions s WHERE s.address = ${table}.runner AND s.session = ${table}.session))`
    )
  const sessions = sql(`${prefix}_sessions`)
  // A paused process (GC pause, SIGSTOP, VM freeze) inside one of our
  // transactions would hold its locks, and so block a newer activation, for as
  // long as it stays paused: PostgreSQL aborts such a transaction once it has
  // been idle for the lock expiration, so the locks go with the lease.
  const idleLimit = sql.literal(
    `SET LOCAL idle_in_transaction_session_timeout = ${Math.ceil(
      Duration.toMillis(Duration.fromInputUnsafe(options.shardLockExpiration))
    )}`
  )
  const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    sql.withTransaction(Effect.andThen(sql`${idleLimit}`, effect))

  yield* sql
    .withTransaction(
      Effect.gen(function* () {
        yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`${prefix}:migrate`}))`
        yield* sql`CREATE TABLE IF NOT EXISTS ${children} (
        supervisor TEXT NOT NULL,
        id TEXT NOT NULL,
        status TEXT NOT NULL,
        incarnation BIGINT NOT NULL DEFAULT 0,
        runner TEXT,
        session TEXT,
        window_ms TEXT NOT NULL DEFAULT '[]',
        restarts BIGINT NOT NULL DEFAULT 0,
        started_at BIGINT NOT NULL,
        PRIMARY KEY (supervisor, id)
      )`
        yield* sql`CREATE TABLE IF NOT EXISTS ${events} (
        seq BIGSERIAL PRIMARY KEY,
        scope TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        runner TEXT,
        incarnation BIGINT NOT NULL,
        detail TEXT,
        at BIGINT NOT NULL
      )`
        yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${prefix}_events_scope`)} ON ${events} (scope, seq)`
        yield* sql`CREATE TABLE IF NOT EXISTS ${registry} (
        registry TEXT NOT NULL,
        key TEXT NOT NULL,
        owner TEXT NOT NULL,
        runner TEXT NOT NULL,
        session TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (registry, key)
      )`
        yield* sql`CREATE TABLE IF NOT EXISTS ${sessions} (
        address TEXT PRIMARY KEY,
        session TEXT NOT NULL
      )`
      })
    )
    .pipe(Effect.orDie)

  const getChild = (sup: string, id: string) =>
    sql<RawChild>`SELECT * FROM ${children} WHERE supervisor = ${sup} AND id = ${id}`.pipe(
      Effect.map((rows) => Option.map(Option.fromUndefinedOr(rows[0]), fromRaw)),
      PersistenceError.refail
    )

  const store: Store = {
    insertChild: (sup, id, now, maxChildren) =>
      transaction(
        Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`${prefix}:${sup}`}))`
          const existing = yield* sql<RawChild>`SELECT * FROM ${children} WHERE supervisor = ${sup} AND id = ${id}`
          if (existing[0]) return { _tag: "Exists", row: fromRaw(existing[0]) } as const
          if (Number.isFinite(maxChildren)) {
            const count = yield* sql<{ n: string }>`SELECT COUNT(*) AS n FROM ${children} WHERE supervisor = ${sup}`
            if (Number(count[0]?.n ?? 0) >= maxChildren) return { _tag: "Max" } as const
          }
          yield* sql`INSERT INTO ${children} (supervisor, id, status, started_at) VALUES (${sup}, ${id}, 'started', ${now})`
          return { _tag: "Inserted" } as const
        })
      ).pipe(PersistenceError.refail),
    getChild,
    deleteChild: (sup, id) =>
      sql<{ id: string }>`DELETE FROM ${children} WHERE supervisor = ${sup} AND id = ${id} RETURNING id`.pipe(
        Effect.map((rows) => rows.length > 0),
        PersistenceError.refail
      ),
    registerSession: (address, session) =>
      sql`INSERT INTO ${sessions} (address, session) VALUES (${address}, ${session})
        ON CONFLICT (address) DO UPDATE SET session = EXCLUDED.session`.pipe(Effect.asVoid, PersistenceError.refail),
    activate: (sup, id, runner, session) =>
      sql<RawChild>`UPDATE ${children} SET incarnation = incarnation + 1, runner = ${runner}, session = ${session}
        WHERE supervisor = ${sup} AND id = ${id} RETURNING *`.pipe(
        Effect.map((rows) => Option.map(Option.fromUndefinedOr(rows[0]), fromRaw)),
        PersistenceError.refail
      ),
    recordRestart: (sup, id, now, windowMs, maxRestarts, runner, session) =>
      transaction(
        Effect.gen(function* () {
          const rows =
            yield* sql<RawChild>`SELECT * FROM ${children} WHERE supervisor = ${sup} AND id = ${id} FOR UPDATE`
          const raw = rows[0]
          if (!raw) return Option.none()
          const row = fromRaw(raw)
          const window = [...row.window.filter((t) => t > now - windowMs), now]
          const exceeded = window.length > maxRestarts
          const updated = exceeded
            ? yield* sql<RawChild>`UPDATE ${children} SET status = 'failed', runner = NULL,
                window_ms = ${JSON.stringify(window)}, restarts = restarts + 1
                WHERE supervisor = ${sup} AND id = ${id} RETURNING *`
            : yield* sql<RawChild>`UPDATE ${children} SET incarnation = incarnation + 1, runner = ${runner},
                session = ${session}, window_ms = ${JSON.stringify(window)}, restarts = restarts + 1
                WHERE supervisor = ${sup} AND id = ${id} RETURNING *`
          return Option.some({ row: fromRaw(updated[0]!), exceeded })
        })
      ).pipe(PersistenceError.refail),
    resetChild: (sup, id) =>
      sql<RawChild>`UPDATE ${children} SET status = 'started', window_ms = '[]'
        WHERE supervisor = ${sup} AND id = ${id} RETURNING *`.pipe(
        Effect.map((rows) => Option.map(Option.fromUndefinedOr(rows[0]), fromRaw)),
        PersistenceError.refail
      ),
    release: (sup, id, incarnation) =>
      sql`UPDATE ${children} SET runner = NULL WHERE supervisor = ${sup} AND id = ${id} AND incarnation = ${incarnation}`.pipe(
        Effect.asVoid,
        PersistenceError.refail
      ),
    listChildren: (sup) =>
      sql<RawChild>`SELECT c.*, ${aliveExpr("c")} AS alive FROM ${children} c
        WHERE c.supervisor = ${sup} ORDER BY c.id`.pipe(
        Effect.map((rows) => rows.map(fromRaw)),
        PersistenceError.refail
      ),
    fenced: (sup, id, token, effect) =>
      transaction(
        Effect.gen(function* () {
          // FOR SHARE: a newer activation's UPDATE waits until this write
          // commits, and any write after it reads the newer incarnation.
          const rows = yield* sql<{ incarnation: string; status: string }>`SELECT incarnation, status FROM ${children}
            WHERE supervisor = ${sup} AND id = ${id} FOR SHARE`.pipe(PersistenceError.refail)
          const current = rows[0] ? Number(rows[0].incarnation) : -1
          if (current !== token || rows[0]?.status === "failed") {
            return yield* Effect.fail({ _tag: "StaleToken", current } as const)
          }
          return yield* effect
        })
      ).pipe(
        Effect.catchTag("SqlError" as never, (e: unknown) => Effect.fail(new PersistenceError({ cause: e })))
      ) as never,
    appendEvent: (e, keep = defaultMaxEvents) =>
      sql`INSERT INTO ${events} (scope, kind, id, runner, incarnation, detail, at)
        VALUES (${e.scope}, ${e.kind}, ${e.id}, ${e.runner}, ${e.incarnation}, ${e.detail}, ${e.at})`.pipe(
        Effect.andThen(
          Effect.suspend((): Effect.Effect<unknown, SqlError> => {
            if (keep === Infinity) return Effect.void
            const count = (appended.get(e.scope) ?? 0) + 1
            if (count < pruneEvery(keep)) {
              appended.set(e.scope, count)
              return Effect.void
            }
            appended.set(e.scope, 0)
            // the `keep`-th newest row of the scope (by the (scope, seq) index): older ones go
            return sql`DELETE FROM ${events} WHERE scope = ${e.scope} AND seq < (
              SELECT seq FROM ${events} WHERE scope = ${e.scope} ORDER BY seq DESC OFFSET ${keep - 1} LIMIT 1)`
          })
        ),
        Effect.asVoid,
        PersistenceError.refail
      ),
    lastEventSeq: (scope) =>
      sql<{ seq: string | null }>`SELECT MAX(seq) AS seq FROM ${events} WHERE scope = ${scope}`.pipe(
        Effect.map((rows) => Number(rows[0]?.seq ?? 0)),
        PersistenceError.refail
      ),
    readEvents: (scope, after) =>
      sql<
        Omit<EventRow, "seq" | "incarnation" | "at"> & { seq: string; incarnation: string; at: string }
      >`SELECT * FROM ${events} WHERE scope = ${scope} AND seq > ${after} ORDER BY seq LIMIT 1000`.pipe(
        Effect.map((rows) =>
          rows.map((r) => ({ ...r, seq: Number(r.seq), incarnation: Number(r.incarnation), at: Number(r.at) }))
        ),
        PersistenceError.refail
      ),
    regInsert: (reg, key, owner, runner, session, value) =>
      transaction(
        Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`${prefix}:reg:${reg}:${key}`}))`
          const rows = yield* sql<Omit<RegRow, "alive"> & { alive: boolean }>`SELECT g.*, ${aliveExpr("g")} AS alive
            FROM ${registry} g WHERE g.registry = ${reg} AND g.key = ${key}`
          const existing = rows[0]
          if (existing && existing.owner !== owner && existing.alive) return Option.some(existing)
          yield* sql`INSERT INTO ${registry} (registry, key, owner, runner, session, value)
            VALUES (${reg}, ${key}, ${owner}, ${runner}, ${session}, ${value})
            ON CONFLICT (registry, key) DO UPDATE SET owner = EXCLUDED.owner, runner = EXCLUDED.runner,
              session = EXCLUDED.session, value = EXCLUDED.value`
          return Option.none()
        })
      ).pipe(PersistenceError.refail),
    regDelete: (reg, key, owner, session) =>
      sql<{ key: string }>`DELETE FROM ${registry} WHERE registry = ${reg} AND key = ${key} AND owner = ${owner}
        AND session = ${session} RETURNING key`.pipe(
        Effect.map((rows) => rows.length > 0),
        PersistenceError.refail
      ),
    regList: (reg) =>
      sql<
        Omit<RegRow, "alive">
      >`SELECT g.* FROM ${registry} g WHERE g.registry = ${reg} AND ${aliveExpr("g")} ORDER BY g.key`.pipe(
        Effect.map((rows) => rows.map((r) => ({ ...r, alive: true }))),
        PersistenceError.refail
      ),
    regSweep: (reg) =>
      sql<
        Omit<RegRow, "alive">
      >`DELETE FROM ${registry} g WHERE g.registry = ${reg} AND NOT ${aliveExpr("g")} RETURNING g.*`.pipe(
        Effect.map((rows) => rows.map((r) => ({ ...r, alive: false }))),
        PersistenceError.refail
      )
  }
  return store
})

/** @internal */
export const layerSql = (options: SqlOptions): Layer.Layer<ClusterStore, never, SqlClient.SqlClient> =>
  Layer.effect(ClusterStore)(makeSql(options))
