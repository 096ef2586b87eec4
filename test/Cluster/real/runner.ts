/**
 * One runner process of the multi-process suite: effect/cluster over
 * sockets on 127.0.0.1:$PORT, PostgreSQL at $PG_URL, the "fast" preset
 * (or $PRESET), running the supervisors of app.ts. SIGTERM shuts it down
 * gracefully (NodeRuntime.runMain).
 */
import { NodeClusterSocket, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { ClusterRunner, ClusterSupervisor } from "../../../src/Cluster/index.ts"
import { log, Poison, Sessions, Temps, Writers } from "./app.ts"

const port = Number(process.env.PORT)
const preset = (process.env.PRESET ?? "fast") as ClusterRunner.Preset

const Supervisors = Layer.mergeAll(
  ClusterSupervisor.layer(Sessions),
  ClusterSupervisor.layer(Poison),
  ClusterSupervisor.layer(Writers),
  ClusterSupervisor.layer(Temps)
)

const Main = Layer.effectDiscard(Effect.sync(() => log({ e: "ready", port, pid: process.pid }))).pipe(
  Layer.provideMerge(Supervisors),
  Layer.provideMerge(ClusterRunner.layerStorage({ failover: preset })),
  Layer.provideMerge(
    NodeClusterSocket.layer({
      storage: "sql",
      shardingConfig: ClusterRunner.shardingConfig({ failover: preset, host: "127.0.0.1", port })
    })
  ),
  Layer.provideMerge(PgClient.layer({ url: Redacted.make(process.env.PG_URL!) }))
)

NodeRuntime.runMain(Layer.launch(Main))
