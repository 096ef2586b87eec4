/**
 * The metrics of one server kind (one definition name) in one metric
 * registry: mailbox depth (a gauge), call latency (a histogram) and calls
 * failed by reason (a counter per reason).
 *
 * Depth and latency are kept as plain numbers and registered as the state of
 * their series (`Metric.registerUnsafe`), computed when the metrics are read:
 * a call on the fast path adds its latency to an array of buckets, where
 * Effect's series would cost a registry look-up and a bucket search each.
 * Failures are rare and go through Effect's own counters.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import * as effectInternals from "../../internal/effectInternals.ts"

/** Call latency buckets, in milliseconds: 1 µs up to about 33 s. */
const bounds: ReadonlyArray<number> = Metric.exponentialBoundaries({ start: 0.001, factor: 2, count: 26 })

/** The reasons a call failed, as the `reason` attribute of `effect_otp_server_calls_failed_total`. */
export type FailReason = "timeout" | "down" | "noserver" | "mailbox_full" | "error"

/** @internal */
export class Kind {
  /** messages waiting in the mailboxes of every server of this kind */
  depth = 0
  count = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE
  readonly counts: Array<number> = new Array(bounds.length + 1).fill(0)
  private readonly failures = new Map<FailReason, Metric.Metric<number, unknown>>()

  constructor(
    readonly name: string,
    readonly context: Context.Context<never>
  ) {
    const attributes = { server: name }
    Metric.registerUnsafe(
      Metric.gauge("effect_otp_server_mailbox_depth", {
        description: "messages waiting in the mailboxes of the servers of this kind",
        attributes
      }),
      context,
      { get: () => ({ value: this.depth }), update: constVoid, modify: constVoid }
    )
    Metric.registerUnsafe(
      Metric.histogram("effect_otp_server_call_duration_millis", {
        description: "call round trip (call to reply), in milliseconds",
        attributes,
        boundaries: bounds
      }),
      context,
      { get: () => this.histogram(), update: constVoid, modify: constVoid }
    )
  }

  observe(millis: number): void {
    let i = 0
    while (i < bounds.length && !(millis <= bounds[i]!)) i++
    this.counts[i]!++
    this.count++
    this.sum += millis
    if (millis < this.min) this.min = millis
    if (millis > this.max) this.max = millis
  }

  histogram(): Metric.HistogramState {
    const buckets: Array<[number, number]> = []
    let cumulated = 0
    for (let i = 0; i < bounds.length; i++) {
      cumulated += this.counts[i]!
      buckets.push([bounds[i]!, cumulated])
    }
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }

  failed(reason: FailReason): void {
    let metric = this.failures.get(reason)
    if (metric === undefined) {
      metric = Metric.counter("effect_otp_server_calls_failed_total", {
        description: "calls that did not get a reply, or got an error reply, by reason",
        attributes: { server: this.name, reason },
        incremental: true
      })
      this.failures.set(reason, metric)
    }
    metric.updateUnsafe(1, this.context)
  }
}

const constVoid = (): void => {}

/**
 * A monotonic reading in milliseconds from the Clock in `context`:
 * `performance.now()` for Effect's default Clock (the same monotonic source
 * without a BigInt), the Clock's own reading otherwise (`TestClock`).
 */
export const monotonicMillis = (context: Context.Context<never>): (() => number) => {
  return effectInternals.monotonicMillis(Context.get(context, Clock.Clock))
}

/**
 * Whether the Clock in `context` is Effect's default one, whose sleeps are
 * `setTimeout`s: a call's timeout can then be a plain timer instead of a
 * fiber sleeping on the Clock (any other Clock, such as `TestClock`, gets the
 * fiber).
 */
export const isDefaultClock = (context: Context.Context<never>): boolean =>
  effectInternals.isDefaultClock(Context.get(context, Clock.Clock)) && typeof globalThis.setTimeout === "function"

const kinds = new WeakMap<object, Map<string, Kind>>()

/** The Kind of servers named `name` whose metrics go to the registry in `context`. */
export const kindOf = (name: string, context: Context.Context<never>): Kind => {
  const registry = Context.get(context, Metric.MetricRegistry)
  let byName = kinds.get(registry)
  if (byName === undefined) {
    byName = new Map()
    kinds.set(registry, byName)
  }
  let kind = byName.get(name)
  if (kind === undefined) {
    kind = new Kind(name, context)
    byName.set(name, kind)
  }
  return kind
}
