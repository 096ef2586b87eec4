/**
 * Moved to `src/internal/shutdown.ts` (the kernel); kept so older imports resolve.
 *
 * @internal
 */
export { decodeShutdown, defaultWorkerShutdownMillis } from "../../internal/shutdown.ts"
