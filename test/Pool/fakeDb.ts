/**
 * A scripted fake database for pool tests (technique B.9): every connect,
 * query, health check, reset and close is appended to a transcript, and the
 * next connects can be scripted to fail, hang or take time.
 */
import { Data, Effect } from "effect"
import type * as Scope from "effect/Scope"

export class ConnectError extends Data.TaggedError("ConnectError")<{ readonly attempt: number }> {}
export class QueryError extends Data.TaggedError("QueryError")<{ readonly conn: number }> {}

export interface FakeConn {
  readonly id: number
  alive: boolean
}

export type ConnectScript =
  "ok" | "fail" | { readonly delayMillis: number; readonly then?: "fail" | undefined } | "failAfterAcquire"

export interface FakeDb {
  readonly transcript: Array<string>
  /** connections opened and not yet closed */
  readonly live: () => number
  readonly attempts: () => number
  /** the next connects follow this script, then "ok" (or `otherwise`) */
  readonly script: (steps: ReadonlyArray<ConnectScript>, otherwise?: ConnectScript) => void
  readonly connect: Effect.Effect<FakeConn, ConnectError, Scope.Scope>
  readonly query: (conn: FakeConn, sql?: string) => Effect.Effect<number, QueryError>
  readonly healthCheck: (conn: FakeConn) => Effect.Effect<void, QueryError>
  /** makes a connection dead: its queries and health checks fail */
  readonly kill: (conn: FakeConn) => void
  /** closes take this long (a hanging close, #82) */
  closeDelayMillis: number
}

export const makeFakeDb = (): FakeDb => {
  const transcript: Array<string> = []
  let attempts = 0
  let live = 0
  let steps: Array<ConnectScript> = []
  let otherwise: ConnectScript = "ok"
  const db: FakeDb = {
    transcript,
    live: () => live,
    attempts: () => attempts,
    script: (s, o = "ok") => {
      steps = [...s]
      otherwise = o
    },
    closeDelayMillis: 0,
    connect: Effect.gen(function* () {
      const attempt = ++attempts
      const step = steps.length > 0 ? steps.shift()! : otherwise
      transcript.push(`connect:${attempt}`)
      if (typeof step === "object") yield* Effect.sleep(step.delayMillis)
      if (step === "fail" || (typeof step === "object" && step.then === "fail")) {
        transcript.push(`connect-failed:${attempt}`)
        return yield* Effect.fail(new ConnectError({ attempt }))
      }
      const conn: FakeConn = { id: attempt, alive: true }
      live++
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          if (db.closeDelayMillis > 0) yield* Effect.sleep(db.closeDelayMillis)
          transcript.push(`close:${attempt}`)
          conn.alive = false
          live--
        })
      )
      if (step === "failAfterAcquire") {
        transcript.push(`connect-failed:${attempt}`)
        return yield* Effect.fail(new ConnectError({ attempt }))
      }
      return conn
    }),
    query: (conn, sql = "q") =>
      Effect.suspend(() => {
        transcript.push(`${sql}:${conn.id}`)
        return conn.alive ? Effect.succeed(conn.id) : Effect.fail(new QueryError({ conn: conn.id }))
      }),
    healthCheck: (conn) =>
      Effect.suspend(() => {
        transcript.push(`check:${conn.id}`)
        return conn.alive ? Effect.void : Effect.fail(new QueryError({ conn: conn.id }))
      }),
    kill: (conn) => {
      conn.alive = false
    }
  }
  return db
}
