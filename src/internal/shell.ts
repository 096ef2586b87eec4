/**
 * The supervisor shell every engine hosts on: open / stopping / stopped with
 * its stop reason and `done`, the one give-up, the one "abandoned" report
 * (log + metric + event), the one active-children gauge batched per tick, the
 * crash log that costs nothing when its level is dropped, the restart policy
 * interpreter, the children's context (their own trace and log context), the
 * inspection listeners, and a stop loop that yields to the event loop.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import { RestartIntensityExceeded, SupervisorStopped } from "../Errors.ts"
import type { ShutdownPolicy } from "../Supervisor/ChildSpec.ts"
import { monotonicMillis } from "./effectInternals.ts"
import * as Inspect from "./inspect.ts"
import { type SupervisorMetrics, supervisorMetrics } from "./metrics.ts"
import { Restarts, type RestartPolicy } from "./policy.ts"

/** @internal */
export type ShellState = "open" | "stopping" | "stopped"

/** How many children a stop or restart loop handles before yielding to the event loop. @internal */
export const yieldEvery = 2048

/** @internal */
export class Shell {
  state: ShellState = "open"
  stopReason: "shutdown" | RestartIntensityExceeded = "shutdown"
  readonly done = Deferred.makeUnsafe<void, RestartIntensityExceeded>()
  listeners: Inspect.Listeners = undefined
  readonly m: SupervisorMetrics
  /** monotonic milliseconds */
  readonly now: () => number
  readonly clock: Clock.Clock
  readonly restarts: Restarts
  /** children counted in the active gauge */
  active = 0
  private gaugeDirty = false
  private lastCaller: Context.Context<never> | undefined = undefined
  private lastBase: Context.Context<never> | undefined = undefined
  readonly tracing: boolean

  constructor(
    readonly kind: Inspect.InspectableKind,
    readonly name: string,
    /** the context the supervisor was made in (its own services, Clock, loggers) */
    readonly context: Context.Context<never>,
    readonly policy: RestartPolicy
  ) {
    this.m = supervisorMetrics(name)
    this.clock = Context.get(context, Clock.Clock)
    this.now = monotonicMillis(this.clock)
    this.restarts = new Restarts(policy, this.now)
    this.tracing = isTracing(context)
    this.epochBase = this.epoch()
    this.nowBase = this.now()
  }

  /** epoch ms on the Clock, for events and `startedAt` */
  epoch(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  /** the Clock's epoch and monotonic readings when the shell was made: children's start times are offsets from them */
  readonly epochBase: number
  readonly nowBase: number

  /** now, as a child's start-time offset (whole ms since the shell was made, on the monotonic reading) */
  startOffset(): number {
    return Math.floor(this.now() - this.nowBase)
  }

  /** a child's start time, epoch ms, from its offset */
  startedAt(offset: number): number {
    return this.epochBase + offset
  }

  stoppedError(): SupervisorStopped {
    return new SupervisorStopped({ reason: this.stopReason })
  }

  // ---- the gauge ---------------------------------------------------------------

  /**
   * The active-children gauge is set once per tick rather than on every start
   * and exit: a metric update costs about as much as a whole start.
   */
  addActive(delta: number): void {
    this.active += delta
    if (this.gaugeDirty) return
    this.gaugeDirty = true
    queueMicrotask(this.flushGauge)
  }

  readonly flushGauge = (): void => {
    this.gaugeDirty = false
    this.m.active.updateUnsafe(this.active, this.context)
  }

  // ---- logs -------------------------------------------------------------------------

  /** Whether a log at `level` would reach a logger (checked before anything is built). */
  logs(level: LogLevel.LogLevel): boolean {
    if (LogLevel.isGreaterThan(Context.get(this.context, References.MinimumLogLevel), level)) return false
    return Context.get(this.context, References.CurrentLoggers).size > 0
  }

  /** Logs with the supervisor's annotations (and the child's), on a fiber only when it would print. */
  log(
    level: "Error" | "Warn" | "Info",
    message: string,
    cause?: Cause.Cause<unknown>,
    child?: { readonly id: string | undefined; readonly pid: number }
  ): void {
    if (!this.logs(level)) return
    const annotations: Record<string, unknown> = { supervisor: this.name }
    if (child !== undefined) {
      annotations.pid = child.pid
      if (child.id !== undefined) annotations.id = child.id
    }
    const args: Array<unknown> = cause === undefined ? [message] : [message, cause]
    Effect.runForkWith(this.context)(Effect.annotateLogs(Effect.logWithLevel(level)(...args), annotations))
  }

  // ---- events --------------------------------------------------------------------------

  emitStarted(c: { readonly id: string | undefined; readonly pid: number }): void {
    if (this.listeners === undefined) return
    Inspect.emit(this.listeners, { _tag: "Started", ...this.base(c) })
  }

  emitExited(c: { readonly id: string | undefined; readonly pid: number }, exit: Exit.Exit<unknown, unknown>): void {
    if (this.listeners === undefined) return
    const reason = Exit.isSuccess(exit) ? "normal" : hasInterruptsOnly(exit) ? "shutdown" : "crash"
    Inspect.emit(this.listeners, {
      _tag: "Exited",
      ...this.base(c),
      reason,
      cause: reason === "crash" ? prettyCause(exit) : undefined
    })
  }

  /**
   * The `Exited` event of an incarnation its owner stopped (terminateChild, a
   * restart of its group, the supervisor stopping): `shutdown`, or `crash` if
   * it failed while stopping (a finalizer that failed).
   */
  emitStopped(c: { readonly id: string | undefined; readonly pid: number }, exit: Exit.Exit<unknown, unknown>): void {
    if (this.listeners === undefined) return
    const crashed = exit._tag === "Failure" && !hasInterruptsOnly(exit)
    Inspect.emit(this.listeners, {
      _tag: "Exited",
      ...this.base(c),
      reason: crashed ? "crash" : "shutdown",
      cause: crashed ? prettyCause(exit) : undefined
    })
  }

  emitRestarted(
    c: { readonly id: string | undefined; readonly pid: number },
    previousPid: number,
    attempt: number
  ): void {
    if (this.listeners === undefined) return
    Inspect.emit(this.listeners, { _tag: "Restarted", ...this.base(c), previousPid, attempt })
  }

  private base(c: { readonly id: string | undefined; readonly pid: number | undefined }) {
    return { supervisor: this.name, supervisorKind: this.kind, id: c.id, pid: c.pid, at: this.epoch() }
  }

  // ---- give-up and abandoned ------------------------------------------------------------

  /** The one give-up: logs it, emits it and returns the error the supervisor stops with. */
  giveUp(child: { readonly id: string | undefined; readonly pid: number }, reason: "intensity" | "backoff") {
    const error = new RestartIntensityExceeded({
      maxRestarts: this.policy.maxRestarts,
      maxSeconds: this.policy.maxSeconds,
      child: child.id ?? child.pid,
      reason
    })
    this.log("Error", error.message)
    if (this.listeners !== undefined) {
      Inspect.emit(this.listeners, {
        _tag: "GaveUp",
        ...this.base(child),
        reason,
        maxRestarts: this.policy.maxRestarts,
        maxSeconds: this.policy.maxSeconds
      })
    }
    return error
  }

  /** The one "abandoned" report: metric, warning, event. */
  abandoned(
    child: { readonly id: string | undefined; readonly pid: number },
    policy: ShutdownPolicy,
    what = "child"
  ): void {
    this.m.abandoned.modifyUnsafe(1, this.context)
    const millis = policy._tag === "Timeout" ? policy.millis : 0
    const who =
      what === "child"
        ? child.id === undefined
          ? `child (pid ${child.pid})`
          : `child ${JSON.stringify(child.id)} (pid ${child.pid})`
        : `${what} ${child.pid}`
    this.log(
      "Warn",
      `${who} did not stop within ${millis} ms: abandoned (its finalizers may still be running)`,
      undefined,
      child
    )
    if (this.listeners !== undefined) {
      Inspect.emit(this.listeners, { _tag: "Abandoned", ...this.base(child), shutdownMillis: millis })
    }
  }

  /** Reports an outcome of a stop: an abandoned child is reported once. */
  report(
    child: { readonly id: string | undefined; readonly pid: number },
    policy: ShutdownPolicy,
    outcome: Effect.Effect<"stopped" | "killed" | "abandoned">,
    stoppedNow: Effect.Effect<"stopped" | "killed" | "abandoned">,
    what = "child"
  ): Effect.Effect<void> {
    if (outcome === stoppedNow) return Effect.void
    return Effect.map(outcome, (o) => {
      if (o === "abandoned") this.abandoned(child, policy, what)
    })
  }

  // ---- stopping -------------------------------------------------------------------------

  /** Marks the shell stopping; false when it already was. */
  beginStop(reason: "shutdown" | RestartIntensityExceeded): boolean {
    if (this.state !== "open") return false
    this.state = "stopping"
    this.stopReason = reason
    return true
  }

  /** Marks the shell stopped and completes `done` (fails it when the supervisor gave up). */
  endStop(): void {
    this.state = "stopped"
    this.active = 0
    this.flushGauge()
    Deferred.doneUnsafe(this.done, this.stopReason === "shutdown" ? Exit.void : Exit.fail(this.stopReason))
  }

  /** Waits until stopped, whatever the reason. */
  readonly awaitStopped: Effect.Effect<void> = Effect.asVoid(Effect.exit(Deferred.await(this.done)))

  // ---- spans (only when tracing) ------------------------------------------------------------

  /**
   * An incarnation's run as its own root span `<kind>.child`, linked to the
   * span that started it (`started-by`) or to the restart that made it
   * (`restarted-by`).
   */
  tracedRun(
    main: Effect.Effect<unknown, unknown>,
    link: Tracer.AnySpan | undefined,
    linkKind: "started-by" | "restarted-by",
    attributes: Record<string, unknown>
  ): Effect.Effect<unknown, unknown> {
    return Effect.withSpan(main, `${this.kind}.child`, {
      root: true,
      links: link === undefined ? [] : [{ span: link, attributes: { "effect_otp.link": linkKind } }],
      attributes: { supervisor: this.name, ...attributes }
    })
  }

  /** A restart as a root span `<kind>.restart` (supervisor, id, previousPid, attempt; pid once it is up). */
  restartSpan(id: string | undefined, previousPid: number | undefined, attempt: number): Tracer.Span {
    const tracer = Context.get(this.context, Tracer.Tracer)
    const span = tracer.span({
      name: `${this.kind}.restart`,
      parent: { _tag: "None" } as any,
      annotations: Context.empty(),
      links: [],
      startTime: this.clock.currentTimeNanosUnsafe(),
      kind: "internal",
      root: true,
      sampled: true
    })
    span.attribute("supervisor", this.name)
    span.attribute("id", id)
    span.attribute("previousPid", previousPid)
    span.attribute("attempt", attempt)
    return span
  }

  /** Ends a restart span: the new incarnation is up (`pid`), or the restart was cancelled or gave up. */
  endRestartSpan(span: Tracer.Span, pid: number | undefined, exit: Exit.Exit<unknown, unknown> = Exit.void): void {
    if (pid !== undefined) span.attribute("pid", pid)
    span.end(this.clock.currentTimeNanosUnsafe(), exit)
  }

  // ---- the children's context --------------------------------------------------------------

  /**
   * The base context of children started from `caller`: the caller's services,
   * without its span, log annotations and log spans (a child runs in its own
   * trace and log context). Kept for the last caller context, so a loop of
   * starts from one fiber builds it once.
   */
  childBase(caller: Context.Context<never>): Context.Context<never> {
    if (caller === this.lastCaller) return this.lastBase!
    let ctx = Context.omit(Tracer.ParentSpan)(caller) as Context.Context<never>
    ctx = Context.add(ctx, References.CurrentLogSpans, [])
    ctx = Context.add(ctx, References.CurrentStackFrame, undefined)
    this.lastCaller = caller
    this.lastBase = ctx
    return ctx
  }
}

const hasInterruptsOnly = (exit: Exit.Exit<unknown, unknown>): boolean =>
  exit._tag === "Failure" && exit.cause.reasons.length > 0 && exit.cause.reasons.every((r) => r._tag === "Interrupt")

const prettyCause = (exit: Exit.Exit<unknown, unknown>): string | undefined =>
  exit._tag === "Failure" ? Cause.pretty(exit.cause) : undefined

/** Whether spans go anywhere: a tracer other than Effect's native one, tracing enabled. @internal */
export const isTracing = (context: Context.Context<never>): boolean =>
  Context.get(context, References.TracerEnabled) && Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer

/**
 * Runs `step` over `items`, yielding to the event loop whenever a slice of
 * work has taken {@link sliceMillis} (checked every 64 items), so stopping or
 * restarting any number of children never freezes it; collects the effects
 * `step` returns that need waiting.
 *
 * @internal
 */
export const chunked = <T>(
  items: Iterable<T>,
  step: (item: T) => Effect.Effect<void> | undefined
): Effect.Effect<Array<Effect.Effect<void>>> =>
  Effect.suspend(() => {
    const pending: Array<Effect.Effect<void>> = []
    const it = items[Symbol.iterator]()
    const loop: Effect.Effect<Array<Effect.Effect<void>>> = Effect.suspend(() => {
      const t0 = performance.now()
      // at most sliceItems per slice as well: an interrupted fiber ends on Effect's scheduler, in the
      // next macrotask, so a slice's interrupts complete (as one scheduler batch) before the next slice
      for (let done = 0; done < sliceItems; done += 64) {
        for (let i = 0; i < 64; i++) {
          const next = it.next()
          if (next.done) return Effect.succeed(pending)
          const wait = step(next.value)
          if (wait !== undefined) pending.push(wait)
        }
        if (performance.now() - t0 >= sliceMillis) break
      }
      return Effect.andThen(yieldMacrotask, loop)
    })
    return loop
  })

/** How long a slice of stop or restart work may hold the event loop. @internal */
export const sliceMillis = 8

/** At most this many children per slice of a stop. @internal */
export const sliceItems = 256

/** Yields to the event loop (a macrotask), so timers and I/O run between slices. @internal */
export const yieldMacrotask: Effect.Effect<void> = Effect.callback<void>((resume) => {
  const t = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(t))
})

/**
 * Restarts run at once, on the crash's own stack, until more than
 * {@link burstLimit} of them ran within {@link sliceMillis}; the rest wait in
 * a queue drained in time-bounded slices between event-loop turns (a storm of
 * crashes does not freeze the process while it restarts).
 *
 * @internal
 */
export class RestartPacer {
  private burst = 0
  private windowStart = -Infinity
  private readonly queue: Array<() => void> = []
  private head = 0
  private draining = false

  /**
   * Runs `restart` now, or queues it when {@link burstLimit} restarts already
   * ran within the last {@link sliceMillis} (a clock read, no scheduling, on
   * the hot path).
   */
  run(restart: () => void): void {
    if (this.head === this.queue.length) {
      const t = performance.now()
      if (t - this.windowStart >= sliceMillis) {
        this.windowStart = t
        this.burst = 0
      }
      if (this.burst < burstLimit) {
        this.burst++
        restart()
        return
      }
    }
    this.queue.push(restart)
    if (!this.draining) {
      this.draining = true
      setImmediate(this.drain)
    }
  }

  private readonly drain = (): void => {
    const t0 = performance.now()
    const queue = this.queue
    while (this.head < queue.length) {
      for (let i = 0; i < 32 && this.head < queue.length; i++) {
        const restart = queue[this.head]!
        queue[this.head++] = undefined as never
        restart()
      }
      if (performance.now() - t0 >= sliceMillis) {
        setImmediate(this.drain)
        return
      }
    }
    queue.length = 0
    this.head = 0
    this.draining = false
  }
}

/** Restarts allowed on the crash's own stack per slice of time before they are paced. @internal */
export const burstLimit = 256
