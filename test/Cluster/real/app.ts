/**
 * The supervisors the multi-process suite runs: shared by the runner
 * processes (runner.ts) and the client (the test process).
 *
 * Every runner writes what happens to its children as JSON lines on stdout
 * (`init`, `begin`, `end`, `tick`), so the test can tell which runner handled
 * what and when, without trusting the system under test.
 */
import { Effect, Schedule, Schema } from "effect"
import { ClusterSchema } from "effect/cluster"
import { Rpc, RpcGroup } from "effect/rpc"
import { SqlClient } from "effect/sql"
import { ClusterRegistry, ClusterSupervisor } from "../../../src/Cluster/index.ts"
import * as Server from "../../../src/Server/Server.ts"

export const log = (line: Record<string, unknown>) => {
  process.stdout.write(`${JSON.stringify({ ...line, t: Date.now() })}\n`)
}

const Reply = Schema.Struct({ runner: Schema.String, incarnation: Schema.Number, seen: Schema.Number })

export const Say = Rpc.make("Say", { payload: { seq: Schema.Number }, success: Reply })
export const SayDurable = Rpc.make("SayDurable", { payload: { seq: Schema.Number }, success: Reply }).annotate(
  ClusterSchema.Persisted,
  true
)

export const SessionProtocol = RpcGroup.make(Say, SayDurable)

/** Every session registers its id here, with the runner it runs on. */
export const SessionNames = ClusterRegistry.make("real/SessionNames", {
  value: Schema.Struct({ runner: Schema.String })
})

/** A session: counts calls in memory; permanent, so it is re-homed without traffic (it ticks on its own). */
export const Sessions = ClusterSupervisor.make("real/Sessions", {
  server: Server.make("Session", [Say, SayDurable], {
    init: (id: string) =>
      Effect.gen(function* () {
        const child = yield* ClusterSupervisor.CurrentChild
        log({ e: "init", sup: "Sessions", id, inc: child.incarnation, runner: child.runner })
        yield* ClusterRegistry.register(SessionNames, id, { runner: child.runner }).pipe(Effect.orDie)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => log({ e: "stop", sup: "Sessions", id, inc: child.incarnation, runner: child.runner }))
        )
        // a child that works on its own: its ticks show it running without traffic
        yield* Effect.sync(() => log({ e: "tick", id, inc: child.incarnation, runner: child.runner })).pipe(
          Effect.repeat(Schedule.spaced("500 millis")),
          Effect.forkScoped
        )
        let seen = 0
        const handle = (durable: boolean) => (payload: { readonly seq: number }) =>
          Effect.gen(function* () {
            log({ e: "begin", id, seq: payload.seq, durable, inc: child.incarnation, runner: child.runner })
            yield* Effect.sleep("20 millis")
            seen++
            log({ e: "end", id, seq: payload.seq, durable, inc: child.incarnation, runner: child.runner })
            return { runner: child.runner, incarnation: child.incarnation, seen }
          })
        return { Say: handle(false), SayDurable: handle(true) }
      })
  }),
  restart: "permanent",
  maxRestarts: 3,
  maxSeconds: 5
})

export const Hello = Rpc.make("Hello", { success: Schema.String })

/** A temporary child: it ends with its incarnation, so a runner's death removes it. */
export const Temps = ClusterSupervisor.make("real/Temps", {
  server: Server.make("Temp", [Hello], {
    init: (id: string) =>
      Effect.map(ClusterSupervisor.CurrentChild, (child) => {
        log({ e: "init", sup: "Temps", id, inc: child.incarnation, runner: child.runner })
        return { Hello: () => Effect.succeed(`${id}@${child.runner}`) }
      })
  }),
  restart: "temporary"
})

/** A poison child: its init always dies. */
export const Poison = ClusterSupervisor.make("real/Poison", {
  server: Server.make("Poison", [Hello], {
    init: (id: string) =>
      Effect.gen(function* () {
        const child = yield* ClusterSupervisor.CurrentChild
        log({ e: "init", sup: "Poison", id, inc: child.incarnation, runner: child.runner })
        return yield* Effect.die("poison")
      })
  }),
  restart: "permanent",
  maxRestarts: 2,
  maxSeconds: 60
})

/**
 * A writer: writes a row every 50 ms, once through the fencing token and once
 * without it, each stamped with its incarnation.
 */
export const Writers = ClusterSupervisor.make("real/Writers", {
  server: Server.make("Writer", [Hello], {
    init: (id: string) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const child = yield* ClusterSupervisor.CurrentChild
        log({ e: "init", sup: "Writers", id, inc: child.incarnation, runner: child.runner })
        const write = (fencedWrite: boolean) =>
          sql`INSERT INTO otp_test_writes (id, token, runner, fenced) VALUES (${id}, ${child.incarnation}, ${child.runner}, ${fencedWrite})`
        yield* Effect.gen(function* () {
          yield* write(false).pipe(Effect.ignore)
          yield* ClusterSupervisor.fenced(write(true)).pipe(
            Effect.tapError((e) =>
              Effect.sync(() => log({ e: "fenced", id, inc: child.incarnation, runner: child.runner, tag: e._tag }))
            ),
            Effect.ignore
          )
        }).pipe(Effect.repeat(Schedule.spaced("50 millis")), Effect.forkScoped)
        return { Hello: () => Effect.succeed(`${id}@${child.runner}#${child.incarnation}`) }
      })
  }),
  restart: "permanent"
})
