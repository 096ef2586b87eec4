/**
 * The seed's per-user sessions across machines: the same `Server` definition
 * as examples/sessions.ts, run by a `ClusterSupervisor` on 3 runner processes
 * with an embedded PostgreSQL. One runner is killed (`kill -9`) mid-run; its
 * sessions answer again from the other runners, and the failover time is
 * printed.
 *
 * What changes from the single-process example, and why: the sessions are
 * children of a `ClusterSupervisor` (the bookkeeping lives in PostgreSQL,
 * next to effect/cluster's own tables), the session's id is its name (no
 * Registry needed), and callers use the cluster client. The definition —
 * protocol and handlers — is the same. A session's in-memory state starts
 * over after a move (a new incarnation): keep what must survive in storage.
 *
 * Run with `npm run example:cluster` (it starts and stops everything itself).
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as Path from "node:path"
import { NodeClusterSocket, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer, ManagedRuntime, Option, Redacted, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Server from "../src/Server/Server.ts"
import { ClusterRunner, ClusterSupervisor } from "../src/Cluster/index.ts"
import { freePort, startPostgres } from "../test/utils/postgres.ts"

// ---- the session: the same definition as the single-process example -------------------

const Say = Rpc.make("Say", { payload: { text: Schema.String }, success: Schema.String })
const Crash = Rpc.make("Crash")

const UserSession = Server.make("UserSession", [Say, Crash], {
  init: (userId: number) =>
    Effect.gen(function* () {
      const { incarnation, runner } = yield* ClusterSupervisor.CurrentChild
      yield* Effect.addFinalizer(() => Effect.log(`session ${userId}#${incarnation} stopped on ${runner}`))
      let seen = 0
      return {
        Say: ({ text }) =>
          Effect.sync(() => `session ${userId}#${incarnation} on ${runner} got "${text}" (message ${++seen})`),
        Crash: () => Effect.die(`session ${userId} crashed`)
      }
    })
})

// ---- the cluster supervisor (declared once, used by runners and clients) -------------

const Sessions = ClusterSupervisor.make("app/Sessions", {
  server: UserSession,
  restart: "permanent",
  maxRestarts: 3,
  maxSeconds: 5
})

// ---- a runner process ----------------------------------------------------------------

const runRunner = () => {
  const port = Number(process.env.PORT)
  const Runner = ClusterSupervisor.layer(Sessions, { args: (id) => Number(id) }).pipe(
    Layer.provideMerge(ClusterRunner.layerStorage({ failover: "fast" })),
    Layer.provideMerge(
      NodeClusterSocket.layer({
        storage: "sql",
        shardingConfig: ClusterRunner.shardingConfig({ failover: "fast", host: "127.0.0.1", port })
      })
    ),
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(process.env.PG_URL!) })),
    Layer.tap(() => Effect.sync(() => process.stdout.write("ready\n")))
  )
  NodeRuntime.runMain(Layer.launch(Runner))
}

// ---- the demo: PostgreSQL, 3 runners, a client -----------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const startRunner = (port: number, pgUrl: string): Promise<ChildProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--no-warnings", "--import", "tsx", Path.resolve(import.meta.filename), "runner"],
      {
        env: { ...process.env, PORT: String(port), PG_URL: pgUrl },
        stdio: ["ignore", "pipe", "inherit"]
      }
    )
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve(child)
    })
    child.on("exit", (code) => reject(new Error(`runner on ${port} exited (${code})`)))
  })

const demo = async () => {
  console.log("starting PostgreSQL and 3 runners on 127.0.0.1 ...")
  const pg = await startPostgres()
  const runners = new Map<string, ChildProcess>()
  let runtime: ManagedRuntime.ManagedRuntime<any, any> | undefined
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      runners.set(`127.0.0.1:${port}`, await startRunner(port, pg.url))
    }
    runtime = ManagedRuntime.make(
      ClusterRunner.layerStorage({ failover: "fast" }).pipe(
        Layer.provideMerge(
          NodeClusterSocket.layer({
            clientOnly: true,
            storage: "sql",
            shardingConfig: ClusterRunner.shardingConfig({ failover: "fast" })
          })
        ),
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(pg.url) }))
      )
    )
    const run = <A, E>(effect: Effect.Effect<A, E, any>) => runtime!.runPromise(effect)
    const users = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    for (const user of users) await run(ClusterSupervisor.startChild(Sessions, String(user)))
    const session = await run(ClusterSupervisor.client(Sessions))
    for (const user of users) console.log(await run(session(String(user)).Say({ text: "hello" })))

    // a message to a session that was never started is not answered by a new one
    const ghost = await run(Effect.exit(session("404").Say({ text: "anyone?" })))
    console.log(`session 404: ${Exit.isFailure(ghost) ? "ChildNotFound" : "answered?!"}`)

    // kill -9 the runner with the most sessions
    const children = await run(ClusterSupervisor.whichChildren(Sessions))
    const byRunner = new Map<string, Array<string>>()
    for (const c of children) {
      const r = Option.getOrElse(c.runner, () => "-")
      byRunner.set(r, [...(byRunner.get(r) ?? []), c.id])
    }
    const [victim, victimIds] = [...byRunner.entries()].sort((a, b) => b[1].length - a[1].length)[0]!
    console.log(`\nkill -9 ${victim} (pid ${runners.get(victim)!.pid}), running sessions ${victimIds.join(", ")}`)
    const killedAt = Date.now()
    runners.get(victim)!.kill("SIGKILL")
    const failover = await Promise.all(
      victimIds.map(async (id) => {
        const reply = await run(session(id).Say({ text: "still there?" }))
        const ms = Date.now() - killedAt
        console.log(`  +${ms} ms  ${reply}`)
        return ms
      })
    )
    console.log(
      `failover after kill -9: ${Math.min(...failover)}–${Math.max(...failover)} ms (fast preset: 2 s refresh, 8 s expiry)`
    )
    await sleep(1_000)
    console.log("\nwhichChildren:")
    for (const c of await run(ClusterSupervisor.whichChildren(Sessions))) {
      console.log(`  ${c.id}: ${c.status} on ${Option.getOrElse(c.runner, () => "-")} incarnation ${c.incarnation}`)
    }
  } finally {
    await runtime?.dispose()
    for (const child of runners.values()) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
    await pg.close()
    console.log("\nstopped every runner and PostgreSQL by PID")
  }
}

if (process.argv[2] === "runner") runRunner()
else
  demo().then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
