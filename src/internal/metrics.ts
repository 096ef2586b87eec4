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
