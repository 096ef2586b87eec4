/**
 * Layers for the processes of a cluster: the failover presets of
 * effect/cluster's `ShardingConfig`, the bookkeeping store of
 * `ClusterSupervisor` and `ClusterRegistry` (tables in the cluster's own
 * PostgreSQL database), and an in-process test layer.
 *
 * effect-otp brings no transport and no SQL driver: a runner is
 * `NodeClusterSocket.layer({ storage: "sql", shardingConfig })` from
 * `@effect/platform-node` plus a `SqlClient` (`@effect/sql-pg`), both your
 * choice, with {@link shardingConfig} choosing the timers and
 * {@link layerStorage} adding the bookkeeping.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as MessageStorage from "effect/cluster/MessageStorage"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import type * as Runners from "effect/cluster/Runners"
import type * as Sharding from "effect/cluster/Sharding"
import type * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as TestRunner from "effect/cluster/TestRunner"
import type * as SqlClient from "effect/sql/SqlClient"
import { ClusterStore, layerMemory, layerSql } from "./internal/store.ts"

/**
 * The bookkeeping store's service (the child table, the event log and the
 * registry table).
 *
 * @category services
 * @since 0.1.0
 */
export const Bookkeeping = ClusterStore

/**
 * The service type of {@link Bookkeeping}.
 *
 * @category services
 * @since 0.1.0
 */
export type Bookkeeping = ClusterStore

/**
 * A failover preset.
 *
 * - `"default"`: effect/cluster's own timers (shard-lock refresh 10 s, lock
 *   expiry 35 s, health check every minute). Measured failover after
 *   `kill -9`: 33–37 s.
 * - `"fast"`: refresh 2 s, expiry 8 s, health check 2 s, assignment refresh
 *   1 s, message poll 1 s. Measured failover after `kill -9`: about 4.5 s
 *   (see the README's "Across machines" for this project's figures). 1 s / 4 s
 *   was measured to flap ("Shard lock storage is unhealthy" without a fault)
 *   on a loaded 2-core host, so it is not offered.
 *
 * @category models
 * @since 0.1.0
 */
export type Preset = "default" | "fast"

/**
 * The `ShardingConfig` fields of each preset.
 *
 * @category constants
 * @since 0.1.0
 */
export const presets: Readonly<Record<Preset, Partial<ShardingConfig.ShardingConfig["Service"]>>> = {
  default: {},
  fast: {
    shardLockRefreshInterval: Duration.seconds(2),
    shardLockExpiration: Duration.seconds(8),
    runnerHealthCheckInterval: Duration.seconds(2),
    refreshAssignmentsInterval: Duration.seconds(1),
    entityMessagePollInterval: Duration.seconds(1)
  }
}

/**
 * The `shardingConfig` for a runner (or a client): a preset, this runner's
 * address, and any field to override.
 *
 * **Example** (The fast preset on port 34431)
 *
 * ```ts
 * import { Duration } from "effect"
 * import { ClusterRunner } from "effect-otp/cluster"
 *
 * const config = ClusterRunner.shardingConfig({ failover: "fast", host: "127.0.0.1", port: 34431 })
 * Duration.toSeconds(Duration.fromInputUnsafe(config.shardLockExpiration!)) // => 8
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const shardingConfig = (options: {
  readonly failover?: Preset | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly overrides?: Partial<ShardingConfig.ShardingConfig["Service"]> | undefined
}): Partial<ShardingConfig.ShardingConfig["Service"]> => ({
  ...presets[options.failover ?? "default"],
  ...(options.host !== undefined || options.port !== undefined
    ? {
        runnerAddress: Option.some(RunnerAddress.make(options.host ?? "localhost", options.port ?? 34431))
      }
    : {}),
  ...options.overrides
})

/**
 * The bookkeeping tables in the cluster's own PostgreSQL database (created
 * if missing): `effect_otp_children`, `effect_otp_events`,
 * `effect_otp_registry`. A runner counts as alive while the engine's
 * `cluster_runners` row says so (healthy, heartbeat younger than the lock
 * expiration), so pass the same preset (or `shardLockExpiration`) as the
 * runners use.
 *
 * **Example** (Beside a runner)
 *
 * ```ts
 * import { ClusterRunner } from "effect-otp/cluster"
 *
 * // provide a SqlClient (e.g. PgClient.layer) to it
 * const StorageLive = ClusterRunner.layerStorage({ failover: "fast" })
 * typeof StorageLive // => "object"
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerStorage = (options?: {
  readonly failover?: Preset | undefined
  readonly shardLockExpiration?: Duration.Input | undefined
  /** effect/cluster's table prefix, if `SqlRunnerStorage.layerWith` set one (default `cluster`). */
  readonly clusterPrefix?: string | undefined
  /** Our tables' prefix (default `effect_otp`). */
  readonly prefix?: string | undefined
}): Layer.Layer<Bookkeeping, never, SqlClient.SqlClient> =>
  layerSql({
    clusterPrefix: options?.clusterPrefix,
    prefix: options?.prefix,
    shardLockExpiration:
      options?.shardLockExpiration ??
      presets[options?.failover ?? "default"].shardLockExpiration ??
      Duration.seconds(35)
  })

/**
 * The bookkeeping in memory, for one process.
 *
 * **Example** (In a test)
 *
 * ```ts
 * import { ClusterRunner } from "effect-otp/cluster"
 *
 * typeof ClusterRunner.layerStorageMemory // => "object"
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerStorageMemory: Layer.Layer<Bookkeeping> = layerMemory

/**
 * A whole cluster in this process for tests: effect/cluster's `TestRunner`
 * (one runner, in-memory message and runner storage, no network) and the
 * bookkeeping in memory. Works with `TestClock`.
 *
 * **Example** (Providing it)
 *
 * ```ts
 * import { ClusterRunner } from "effect-otp/cluster"
 *
 * typeof ClusterRunner.layerTest // => "object"
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerTest: Layer.Layer<Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage | Bookkeeping> =
  Layer.merge(TestRunner.layer, layerMemory)
