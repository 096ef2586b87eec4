/**
 * effect-otp: OTP's supervision for Effect.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as ChildSpec from "./Supervisor/ChildSpec.ts"

/** @since 0.1.0 */
export * as DynamicSupervisor from "./Supervisor/DynamicSupervisor.ts"

/** @since 0.1.0 */
export * as Errors from "./Errors.ts"

/** @since 0.1.0 */
export * as Registry from "./Registry/Registry.ts"

/** @since 0.1.0 */
export * as Supervisor from "./Supervisor/Supervisor.ts"

/** @since 0.1.0 */
export * as Pool from "./Pool/Pool.ts"

/** @since 0.1.0 */
export * as RateLimiter from "./RateLimiter/RateLimiter.ts"

/** @since 0.1.0 */
export * as Task from "./Task/Task.ts"

/** @since 0.1.0 */
export * as TaskSupervisor from "./Task/TaskSupervisor.ts"

/** @since 0.1.0 */
export * as RateLimitedSupervisor from "./RateLimiter/RateLimitedSupervisor.ts"

/** @since 0.1.0 */
export * as Observer from "./Observer/Observer.ts"

/** @since 0.1.0 */
export * as Server from "./Server/Server.ts"

/** @since 0.1.0 */
export * as Agent from "./Server/Agent.ts"
