/**
 * The metrics every supervisor reports, with the supervisor's name as the
 * `supervisor` attribute.
 *
 * @internal
 */
import * as Metric from "effect/Metric"

const metrics = {
  active: Metric.gauge("effect_otp_children_active", { description: "children currently running" }),
  restarts: Metric.counter("effect_otp_child_restarts_total", { description: "child restarts", incremental: true }),
  crashes: Metric.counter("effect_otp_child_crashes_total", {
    description: "abnormal child exits (failures and defects)",
    incremental: true
  }),
  startFailures: Metric.counter("effect_otp_child_start_failures_total", {
    description: "child starts (including restarts) that failed",
    incremental: true
  }),
  abandoned: Metric.counter("effect_otp_child_shutdown_abandoned_total", {
    description: "children that did not stop within their shutdown duration and were abandoned",
    incremental: true
  })
}

/** @internal */
export type SupervisorMetrics = { readonly [K in keyof typeof metrics]: Metric.Metric<number, unknown> }

/** @internal */
export const supervisorMetrics = (name: string): SupervisorMetrics => {
  const attrs = { supervisor: name }
  return {
    active: Metric.withAttributes(metrics.active, attrs),
    restarts: Metric.withAttributes(metrics.restarts, attrs),
    crashes: Metric.withAttributes(metrics.crashes, attrs),
    startFailures: Metric.withAttributes(metrics.startFailures, attrs),
    abandoned: Metric.withAttributes(metrics.abandoned, attrs)
  }
}

/**
 * Whether a start that did not succeed counts in `effect_otp_child_start_failures_total`:
 * a name race lost (`AlreadyStarted`, the usual "start it if it is not running")
 * and a start stopped by its owner (interruption only) are not failures.
 *
 * @internal
 */
export const isStartFailure = (exit: { readonly _tag: string; readonly cause?: unknown }): boolean => {
  if (exit._tag !== "Failure") return false
  const reasons = (
    exit.cause as { readonly reasons: ReadonlyArray<{ readonly _tag: string; readonly error?: unknown }> }
  ).reasons
  let failed = false
  for (const reason of reasons) {
    if (reason._tag === "Interrupt") continue
    if (reason._tag === "Fail" && (reason.error as { readonly _tag?: unknown } | null)?._tag === "AlreadyStarted") {
      continue
    }
    failed = true
  }
  return failed
}
