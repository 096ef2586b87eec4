/**
 * effect-otp/cluster: OTP supervision across machines, on effect/cluster.
 * A separate entry point, so single-process users never load effect/cluster.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as ClusterErrors from "./ClusterErrors.ts"

/** @since 0.1.0 */
export * as ClusterRegistry from "./ClusterRegistry.ts"

/** @since 0.1.0 */
export * as ClusterRunner from "./ClusterRunner.ts"

/** @since 0.1.0 */
export * as ClusterSupervisor from "./ClusterSupervisor.ts"
