/**
 * ClusterSupervisor over real processes: 3 runner processes and an embedded
 * PostgreSQL on 127.0.0.1, this process as the client.
 *
 * 1. Call latency (p50/p99) and calls/s through a ClusterSupervisor child
 *    beside a bare effect/cluster entity with the same protocol and handler,
 *    registered on the same runners, the same ids (so the same shards and
 *    runners): the subjects take turns, one round each, medians of the
 *    rounds. Goal (issue 12): ≤ 1.2× the bare entity.
 * 2. Failover: after `kill -9` and after `SIGTERM` of the runner hosting a
 *    child, the time until the child answers from another runner, with the
 *    "fast" preset and with the engine's defaults (one sample each: the
 *    figure is dominated by the configured timers).
 *
 * The same file is the runner when started with CLUSTER_BENCH_RUNNER=1.
 */
import { NodeClusterSocket, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, ManagedRuntime, Option, Redacted, Schema } from "effect"
import { Entity, TestRunner } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { ClusterRunner, ClusterSupervisor } from "../src/Cluster/index.ts"
import * as Server from "../src/Server/Server.ts"
import { type RunnerProcess, sleep, spawnRunner, stopAll, terminate } from "../test/Cluster/real/harness.ts"
import { freePort, startPostgres } from "../test/utils/postgres.ts"
import { median, printTable, quantile } from "./util.ts"

const Ping = Rpc.make("Ping", {
  payload: { n: Schema.Number },
  success: Schema.Struct({ n: Schema.Number, runner: Schema.String })
})

const Echo = Server.make("Echo", [Ping], {
  init: (_id: string) =>
    Effect.map(ClusterSupervisor.CurrentChild, (child) => ({
      Ping: ({ n }) => Effect.succeed({ n, runner: child.runner })
    }))
})

const Echoes = ClusterSupervisor.make("bench/Echoes", { server: Echo, restart: "permanent" })
const BareEcho = Entity.make("bench/BareEcho", [Ping])

// ---- the runner ------------------------------------------------------------------------

const runRunner = () => {
  const port = Number(process.env.PORT)
  const preset = (process.env.PRESET ?? "fast") as ClusterRunner.Preset
  const Bare = BareEcho.toLayer(
    Effect.map(Entity.CurrentRunnerAddress, (address) =>
      BareEcho.of({
        Ping: (request) => Effect.succeed({ n: request.payload.n, runner: `${address.host}:${address.port}` })
      })
    )
  )
  const Main = Layer.mergeAll(ClusterSupervisor.layer(Echoes), Bare).pipe(
    Layer.provideMerge(ClusterRunner.layerStorage({ failover: preset })),
    Layer.provideMerge(
      NodeClusterSocket.layer({
        storage: "sql",
        shardingConfig: ClusterRunner.shardingConfig({ failover: preset, host: "127.0.0.1", port })
      })
    ),
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(process.env.PG_URL!) })),
    Layer.tap(() => Effect.sync(() => process.stdout.write(`${JSON.stringify({ e: "ready", t: Date.now() })}\n`)))
  )
  NodeRuntime.runMain(Layer.launch(Main))
}

// ---- the client ------------------------------------------------------------------------

const IDS = Array.from({ length: 10 }, (_, i) => `e-${i}`)
const ROUNDS = Number(process.env.CLUSTER_BENCH_ROUNDS ?? 7)
const CALLS = 300
const IN_PROCESS_ROUNDS = Number(process.env.CLUSTER_BENCH_IN_PROCESS_ROUNDS ?? 15)

const startCluster = async (preset: ClusterRunner.Preset) => {
  const pg = await startPostgres()
  const runners: Array<RunnerProcess> = []
  const script = new URL(import.meta.url).pathname
  try {
    for (let i = 0; i < 3; i++) {
      runners.push(
        await spawnRunner({
          script,
          port: await freePort(),
          pgUrl: pg.url,
          preset,
          env: { CLUSTER_BENCH_RUNNER: "1" }
        })
      )
    }
  } catch (e) {
    await stopAll(runners)
    await pg.close()
    throw e
  }
  const runtime = ManagedRuntime.make(
    ClusterRunner.layerStorage({ failover: preset }).pipe(
      Layer.provideMerge(
        NodeClusterSocket.layer({
          clientOnly: true,
          storage: "sql",
          shardingConfig: ClusterRunner.shardingConfig({ failover: preset })
        })
      ),
      Layer.provideMerge(PgClient.layer({ url: Redacted.make(pg.url) }))
    )
  )
  const run = <A, E>(effect: Effect.Effect<A, E, any>) => runtime.runPromise(effect as Effect.Effect<A, E, never>)
  return {
    runners,
    run,
    close: async () => {
      await runtime.dispose().catch(() => undefined)
      await stopAll(runners)
      await pg.close()
    }
  }
}

type Call = (id: string, n: number) => Promise<{ n: number; runner: string }>

/** `CALLS` sequential calls over the ids: per-call latencies (ms). */
const sequential = async (call: Call) => {
  const out: Array<number> = []
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now()
    await call(IDS[i % IDS.length]!, i)
    out.push(performance.now() - t0)
  }
  return out
}

/** One caller per id, `CALLS` calls each, all at once: calls per second. */
const concurrent = async (call: Call) => {
  const t0 = performance.now()
  await Promise.all(
    IDS.map(async (id) => {
      for (let i = 0; i < CALLS / 3; i++) await call(id, i)
    })
  )
  return (IDS.length * Math.floor(CALLS / 3)) / ((performance.now() - t0) / 1000)
}

const latencyBench = async () => {
  const cluster = await startCluster("fast")
  try {
    const { run } = cluster
    for (const id of IDS) await run(ClusterSupervisor.startChild(Echoes, id))
    const supClient = await run(ClusterSupervisor.client(Echoes))
    const bareClient = await run(BareEcho.client)
    const subjects: Record<string, Call> = {
      ClusterSupervisor: (id, n) => run(supClient(id).Ping({ n })),
      "bare entity": (id, n) => run(bareClient(id).Ping({ n }))
    }
    // settle: every id placed and answering from a stable runner
    await sleep(3_000)
    for (const call of Object.values(subjects)) await sequential(call)
    const p50: Record<string, Array<number>> = {}
    const p99: Record<string, Array<number>> = {}
    const rate: Record<string, Array<number>> = {}
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, call] of Object.entries(subjects)) {
        const lat = await sequential(call)
        ;(p50[name] ??= []).push(quantile(lat, 0.5))
        ;(p99[name] ??= []).push(quantile(lat, 0.99))
        ;(rate[name] ??= []).push(await concurrent(call))
        if (process.env.CLUSTER_BENCH_VERBOSE === "1") console.log(round, name, rate[name]!.at(-1), p50[name]!.at(-1))
      }
    }
    const m = (xs: Record<string, Array<number>>, k: string) => median(xs[k]!)
    printTable(
      `ClusterSupervisor vs a bare effect/cluster entity (3 runners, fast preset, ${ROUNDS} interleaved rounds)`,
      [
        {
          name: "call latency p50",
          ours: m(p50, "ClusterSupervisor"),
          baseline: m(p50, "bare entity"),
          baselineName: "bare entity",
          unit: "ms",
          target: "≤ 1.2x"
        },
        {
          name: "call latency p99",
          ours: m(p99, "ClusterSupervisor"),
          baseline: m(p99, "bare entity"),
          baselineName: "bare entity",
          unit: "ms",
          target: "≤ 1.2x"
        },
        {
          name: `calls/s (${IDS.length} callers, one per id)`,
          ours: m(rate, "ClusterSupervisor"),
          baseline: m(rate, "bare entity"),
          baselineName: "bare entity",
          unit: "calls/s",
          lowerIsBetter: false,
          target: "≥ 0.83x"
        }
      ]
    )
  } finally {
    await cluster.close()
  }
}

/**
 * The same comparison in one process on effect/cluster's TestRunner (no
 * network; messages still encoded and decoded): the wrapper's own cost per
 * call, with far less noise than the multi-process figures.
 */
const inProcessBench = async () => {
  const layer = Layer.mergeAll(
    ClusterSupervisor.layer(Echoes),
    BareEcho.toLayer({ Ping: (request) => Effect.succeed({ n: request.payload.n, runner: "local" }) })
  ).pipe(Layer.provideMerge(Layer.merge(TestRunner.layer, ClusterRunner.layerStorageMemory)))
  const runtime = ManagedRuntime.make(layer)
  try {
    await runtime.runPromise(ClusterSupervisor.startChild(Echoes, "a"))
    const sup = await runtime.runPromise(ClusterSupervisor.client(Echoes))
    const bare = await runtime.runPromise(BareEcho.client)
    const N = 2_000
    const loop = (f: (n: number) => Effect.Effect<unknown, unknown>) =>
      Effect.gen(function* () {
        for (let i = 0; i < N; i++) yield* f(i)
      })
    const subjects: Record<string, Effect.Effect<unknown, unknown>> = {
      ClusterSupervisor: loop((n) => sup("a").Ping({ n })),
      "bare entity": loop((n) => bare("a").Ping({ n }))
    }
    const perCall: Record<string, Array<number>> = {}
    // CPU time is steadier than wall time on a shared, loaded machine
    const cpuPerCall: Record<string, Array<number>> = {}
    for (const effect of Object.values(subjects)) await runtime.runPromise(effect)
    for (let round = 0; round < IN_PROCESS_ROUNDS; round++) {
      for (const [name, effect] of Object.entries(subjects)) {
        const c0 = process.cpuUsage()
        const t0 = performance.now()
        await runtime.runPromise(effect)
        ;(perCall[name] ??= []).push(((performance.now() - t0) * 1000) / N)
        const c = process.cpuUsage(c0)
        ;(cpuPerCall[name] ??= []).push((c.user + c.system) / N)
      }
    }
    printTable(`In one process (TestRunner): time per sequential call, ${IN_PROCESS_ROUNDS} interleaved rounds`, [
      {
        name: "call",
        ours: median(perCall["ClusterSupervisor"]!),
        baseline: median(perCall["bare entity"]!),
        baselineName: "bare entity",
        unit: "µs",
        target: "≤ 1.2x"
      },
      {
        name: "call, CPU time",
        ours: median(cpuPerCall["ClusterSupervisor"]!),
        baseline: median(cpuPerCall["bare entity"]!),
        baselineName: "bare entity",
        unit: "µs",
        target: "≤ 1.2x"
      }
    ])
  } finally {
    await runtime.dispose()
  }
}

/** Kills (or terminates) the runner hosting `id`; ms until `id` answers from another runner. */
const failoverOnce = async (preset: ClusterRunner.Preset, how: "kill -9" | "SIGTERM") => {
  const cluster = await startCluster(preset)
  try {
    const { run, runners } = cluster
    const id = "victim"
    await run(ClusterSupervisor.startChild(Echoes, id))
    const client = await run(ClusterSupervisor.client(Echoes))
    await sleep(2_000)
    const before = (await run(client(id).Ping({ n: 0 }))).runner
    const [child] = (await run(ClusterSupervisor.whichChildren(Echoes))).filter((c) => c.id === id)
    const address = Option.getOrElse(child!.runner, () => before)
    const victim = runners.find((r) => `127.0.0.1:${r.port}` === address)!
    const t0 = Date.now()
    const stopping = how === "kill -9" ? (victim.signal("SIGKILL"), victim.exited) : terminate(victim)
    let n = 0
    while (true) {
      const reply = await run(client(id).Ping({ n: ++n }))
      if (reply.runner !== address) break
      await sleep(20)
    }
    const ms = Date.now() - t0
    await stopping
    return ms
  } finally {
    await cluster.close()
  }
}

const failoverBench = async () => {
  const rows: Array<{ preset: string; how: string; ms: number }> = []
  for (const preset of ["fast", "default"] as const) {
    for (const how of ["SIGTERM", "kill -9"] as const) {
      rows.push({ preset, how, ms: await failoverOnce(preset, how) })
    }
  }
  console.log("\n## Failover: time until the child answers from another runner (one sample each)\n")
  console.log("| preset | fault | failover |")
  console.log("| --- | --- | --- |")
  for (const r of rows) console.log(`| ${r.preset} | ${r.how} | ${r.ms} ms |`)
}

export default async () => {
  await inProcessBench()
  if (process.env.CLUSTER_BENCH_IN_PROCESS_ONLY === "1") return
  await latencyBench()
  if (process.env.CLUSTER_BENCH_SKIP_FAILOVER !== "1") await failoverBench()
}

if (process.env.CLUSTER_BENCH_RUNNER === "1") runRunner()
