/**
 * A supervisor that starts its children at runtime, restarts them by policy
 * when they exit, and stops them all when its Scope closes.
 *
 * A static `Supervisor` is given its children when it starts and starts them
 * in order. A `DynamicSupervisor` starts with none: children are started on
 * demand with {@link startChild} (a session per user, a connection per slot,
 * a job per request), there is no order between them, and they are identified
 * by the `Child` value `startChild` returns (its `pid` names that incarnation;
 * spec ids are labels, not keys). That is what lets it hold hundreds of
 * thousands of children and stop them all concurrently.
 *
 * Every child is one fiber with its own `Scope` (see `ChildSpec`). When a
 * child exits by itself, its restart value decides: `"permanent"` children are
 * restarted after any exit, `"transient"` ones after a failure or defect,
 * `"temporary"` ones never. Restarts are limited, exactly as in OTP: more than
 * `maxRestarts` restarts within `maxSeconds` and the supervisor gives up —
 * it stops every child and fails with `RestartIntensityExceeded`, so the
 * supervisor above it can restart it in turn.
 *
 * **What it does not do.** JavaScript cannot kill a fiber that is running an
 * uninterruptible region (a finalizer, say). A child that does not finish
 * stopping within its `shutdown` duration is *abandoned*: the supervisor stops
 * waiting for it, logs a warning, counts it in the
 * `effect_otp_child_shutdown_abandoned_total` metric, and goes on.
 *
 * **Differences from Elixir, on purpose.**
 * - The intensity window is measured in milliseconds on Effect's `Clock`
 *   (`now - t <= maxSeconds * 1000`), where OTP counts whole monotonic
 *   seconds, so that fractional periods work and `TestClock` drives it.
 * - `restartBackoff` (a `Schedule`) may delay each restart; OTP restarts at
 *   once, which stays the default.
 * - A start that fails is a typed failure of `startChild` (the start's own
 *   error); there is no `:ignore`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Pull from "effect/Pull"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { ChildNotFound, InvalidOptions, MaxChildren, RestartIntensityExceeded, SupervisorStopped } from "../Errors.ts"
import * as ChildSpec from "./ChildSpec.ts"
import type { ChildType } from "./ChildSpec.ts"
import * as child from "./internal/child.ts"
import { backoffDelay } from "./internal/backoff.ts"
import { checkSupervisorOptions } from "./internal/options.ts"
import { addRestart, makeWindow, type RestartWindow } from "./internal/restartWindow.ts"
import { type SupervisorMetrics, supervisorMetrics } from "./internal/metrics.ts"
import { showValue } from "../internal/show.ts"

export {
  /**
   * @category errors
   * @since 0.1.0
   */
  ChildNotFound,
  /**
   * @category errors
   * @since 0.1.0
   */
  InvalidOptions,
  /**
   * @category errors
   * @since 0.1.0
   */
  MaxChildren,
  /**
   * @category errors
   * @since 0.1.0
   */
  RestartIntensityExceeded,
  /**
   * @category errors
   * @since 0.1.0
   */
  SupervisorStopped
}

const TypeId = "~effect-otp/DynamicSupervisor"

/**
 * A running dynamic supervisor. `X` is the type of its `extraArguments`.
 *
 * @category models
 * @since 0.1.0
 */
export interface DynamicSupervisor<in out X = never> extends Pipeable {
  readonly [TypeId]: { readonly _X: (_: X) => X }
  /** The name given in the options, for logs, metrics and the live tree. */
  readonly name: string
}

/**
 * One incarnation of a supervised child, as `startChild` returns it.
 *
 * `pid` identifies this incarnation: after a restart the child has a new
 * `pid` and a new `handle`, and this value no longer names it (operations on
 * it fail with `ChildNotFound`, as an old pid does in Elixir). Callers that
 * must survive restarts address the child through a `Registry`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Child<out A> {
  readonly pid: number
  readonly id: string | undefined
  readonly type: ChildType
  readonly handle: A
}

/**
 * One entry of {@link whichChildren}: the running incarnation, or
 * `"restarting"` while a restart is pending or being retried.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildInfo {
  readonly pid: number
  readonly id: string | undefined
  readonly child: Child<unknown> | "restarting"
  readonly type: ChildType
  /** How many times this child has been restarted since `startChild`. */
  readonly restarts: number
}

/**
 * The result of {@link countChildren}, with Elixir's meaning: `specs` counts
 * every child including those waiting to be restarted, `active` those that
 * are running, `workers` and `supervisors` split `specs` by type.
 *
 * @category models
 * @since 0.1.0
 */
export interface Counts {
  readonly specs: number
  readonly active: number
  readonly supervisors: number
  readonly workers: number
}

/**
 * The options of {@link make}.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<X = never> {
  /** A name for logs, metrics and the live tree. @default "DynamicSupervisor" */
  readonly name?: string | undefined
  /** At most this many children, counting those waiting to be restarted. @default Infinity */
  readonly maxChildren?: number | undefined
  /** Restarts allowed within `maxSeconds` before the supervisor gives up. @default 3 */
  readonly maxRestarts?: number | undefined
  /** The intensity window, in seconds (fractions allowed). @default 5 */
  readonly maxSeconds?: number | undefined
  /** A value given to every child spec factory passed to `startChild`. */
  readonly extraArguments?: X | undefined
  /**
   * Delays each restart of a child by the schedule's next delay (its input is
   * the number of consecutive restarts of that child, from 1). When the
   * schedule ends, the supervisor gives up as if the intensity were exceeded.
   * Each child has its own schedule state. OTP has none: restarts are immediate.
   */
  readonly restartBackoff?: Schedule.Schedule<unknown, number> | undefined
  /**
   * A child that stayed up this long before exiting starts its backoff afresh.
   *
   * @default the intensity window, `maxSeconds`
   */
  readonly restartBackoffResetAfter?: Duration.Input | undefined
}

/** @internal */
interface Slot {
  /** the current incarnation; while restarting, the one that exited (its pid keys the slot) */
  inc: child.Incarnation
  restarting: boolean
  /** a restart in flight: the backoff timer, or the new incarnation's fiber */
  pending: Fiber.Fiber<unknown, unknown> | undefined
  next: child.Incarnation | undefined
  attempt: number
  /** successful restarts since startChild */
  restarts: number
  upSince: number
  step: ((now: number, input: number) => Pull.Pull<[unknown, Duration.Duration], unknown, unknown>) | undefined
}

const Proto = {
  [TypeId]: { _X: (x: unknown) => x },
  pipe() {
    return pipeArguments(this, arguments)
  },
  toJSON(this: SupervisorImpl) {
    return { _id: "DynamicSupervisor", name: this.name, state: this.state }
  }
}

/** @internal */
class SupervisorImpl implements child.Host {
  declare readonly [TypeId]: { readonly _X: (_: any) => any }
  declare pipe: Pipeable["pipe"]
  state: "open" | "stopping" | "stopped" = "open"
  stopReason: "shutdown" | RestartIntensityExceeded = "shutdown"
  readonly children = new Map<number, Slot>()
  readonly starting = new Set<child.Incarnation>()
  readonly window: RestartWindow = makeWindow()
  readonly done = Deferred.makeUnsafe<void, RestartIntensityExceeded>()
  stopped: Effect.Effect<void> | undefined = undefined
  gaugeDirty = false
  active = 0
  workers = 0
  supervisors = 0
  readonly m: SupervisorMetrics

  constructor(
    readonly name: string,
    readonly maxChildren: number,
    readonly maxRestarts: number,
    readonly maxSeconds: number,
    readonly extraArguments: unknown,
    readonly backoff: Schedule.Schedule<unknown, number> | undefined,
    readonly backoffResetMillis: number,
    readonly context: Context.Context<never>,
    readonly clock: Clock.Clock
  ) {
    this.m = supervisorMetrics(name)
  }

  // ---- bookkeeping -------------------------------------------------------

  addSlot(slot: Slot): void {
    this.children.set(slot.inc.pid, slot)
    this.active++
    if (slot.inc.spec.type === "supervisor") this.supervisors++
    else this.workers++
    this.touchGauge()
  }

  removeSlot(slot: Slot): void {
    if (!this.children.delete(slot.inc.pid)) return
    if (!slot.restarting) {
      this.active--
      this.touchGauge()
    }
    if (slot.inc.spec.type === "supervisor") this.supervisors--
    else this.workers--
  }

  /**
   * The active-children gauge is set once per tick rather than on every
   * start and exit: updating a metric costs about as much as a whole
   * startChild (bench/dynamic-supervisor.bench.ts).
   */
  touchGauge(): void {
    if (this.gaugeDirty) return
    this.gaugeDirty = true
    queueMicrotask(() => {
      this.gaugeDirty = false
      this.m.active.updateUnsafe(this.active, this.context)
    })
  }

  run(effect: Effect.Effect<unknown, unknown>): Fiber.Fiber<unknown, unknown> {
    return Effect.runForkWith(this.context)(effect)
  }

  log(effect: Effect.Effect<void>): void {
    this.run(Effect.annotateLogs(effect, { supervisor: this.name }))
  }

  // ---- child.Host ----------------------------------------------------------

  childStarted(inc: child.Incarnation): void {
    const slot = inc.record as Slot
    if (slot.inc === inc) {
      // first start, from startChild
      this.starting.delete(inc)
      if (this.state !== "open") {
        // the supervisor is shutting down and stops this child too (it was in `starting`)
        child.settleStart(inc, Effect.fail(new SupervisorStopped({ reason: this.stopReason })))
        return
      }
      if (this.backoff !== undefined) slot.upSince = this.clock.currentTimeMillisUnsafe()
      this.addSlot(slot)
      child.settleStart(inc, Effect.void)
      return
    }
    // a restart succeeded: the slot moves from the old pid to the new one
    if (slot.next !== inc || this.state !== "open") return
    this.children.delete(slot.inc.pid)
    slot.inc = inc
    slot.next = undefined
    slot.pending = undefined
    slot.restarting = false
    slot.restarts++
    if (this.backoff !== undefined) slot.upSince = this.clock.currentTimeMillisUnsafe()
    this.children.set(inc.pid, slot)
    this.active++
    this.touchGauge()
    this.m.restarts.modifyUnsafe(1, this.context)
  }

  childExited(inc: child.Incarnation, exit: Exit.Exit<unknown, unknown>): void {
    const slot = inc.record as Slot
    if (!inc.started) {
      this.m.startFailures.modifyUnsafe(1, this.context)
      if (slot.inc === inc) {
        // startChild's start failed: tell the caller; nothing was stored
        this.starting.delete(inc)
        const cause = child.exitCause(exit)
        child.settleStart(
          inc,
          this.state !== "open" && Cause.hasInterruptsOnly(cause)
            ? Effect.fail(new SupervisorStopped({ reason: this.stopReason }))
            : Effect.failCause(cause)
        )
        return
      }
      // a restart attempt failed: stay "restarting" under the old pid and retry
      if (slot.next !== inc) return
      slot.next = undefined
      slot.pending = undefined
      if (inc.stopping || this.state !== "open" || !this.children.has(slot.inc.pid)) return
      this.log(Effect.logError(`${describe(slot.inc)} failed to restart`, child.exitCause(exit)))
      this.scheduleRestart(slot)
      return
    }
    if (slot.inc !== inc) return
    if (inc.stopping || this.state !== "open") {
      // stopped by its owner, not a crash; a caller interrupted right after start
      // succeeded leaves its slot here, so drop it (no-op if already removed)
      if (this.state === "open") this.removeSlot(slot)
      return
    }
    const kind = child.exitKind(exit)
    if (kind === "abnormal") {
      this.m.crashes.modifyUnsafe(1, this.context)
      this.log(Effect.logError(`${describe(inc)} crashed`, child.exitCause(exit)))
    }
    if (child.shouldRestart(inc.spec.restart, kind)) this.scheduleRestart(slot)
    else this.removeSlot(slot)
  }

  // ---- restarts --------------------------------------------------------------

  scheduleRestart(slot: Slot): void {
    const now = this.clock.currentTimeMillisUnsafe()
    if (!addRestart(this.window, now, this.maxRestarts, this.maxSeconds * 1000)) {
      this.giveUp(slot, "intensity")
      return
    }
    if (!slot.restarting) {
      slot.restarting = true
      this.active--
      this.touchGauge()
    }
    if (this.backoff === undefined) {
      this.spawnNext(slot)
      return
    }
    if (slot.step !== undefined && now - slot.upSince >= this.backoffResetMillis && slot.next === undefined) {
      slot.step = undefined // stayed up long enough: the backoff starts afresh
      slot.attempt = 0
    }
    slot.attempt++
    const backoff = this.backoff
    slot.pending = this.run(
      Effect.gen({ self: this }, function* () {
        if (slot.step === undefined) slot.step = yield* Schedule.toStep(backoff)
        const result = yield* Effect.exit(slot.step(now, slot.attempt))
        if (result._tag === "Failure") {
          if (Pull.isDoneCause(result.cause)) return this.giveUp(slot, "backoff")
          return yield* Effect.failCause(result.cause)
        }
        yield* Effect.sleep(result.value[1])
        slot.pending = undefined
        if (this.state === "open" && this.children.get(slot.inc.pid) === slot) this.spawnNext(slot)
      })
    )
  }

  spawnNext(slot: Slot): void {
    const inc = child.create(this, slot.inc.spec, slot.inc.context)
    inc.record = slot
    slot.next = inc
    // Restart at once, on this stack, unless this is itself inside a restart
    // (a child that crashes during its own start): then go through the
    // scheduler, so a crash loop cannot grow the JavaScript stack.
    const immediate = restartDepth === 0
    restartDepth++
    try {
      child.begin(inc, immediate)
    } finally {
      restartDepth--
    }
    slot.pending = inc.fiber
  }

  giveUp(slot: Slot, reason: "intensity" | "backoff"): void {
    const error = new RestartIntensityExceeded({
      maxRestarts: this.maxRestarts,
      maxSeconds: this.maxSeconds,
      child: slot.inc.spec.id ?? slot.inc.pid,
      reason
    })
    this.log(Effect.logError(error.message))
    this.removeSlot(slot)
    this.run(this.shutdown(error))
  }

  // ---- stopping ----------------------------------------------------------------

  stopSlot(slot: Slot): Effect.Effect<void> {
    if (slot.restarting) {
      const pending = slot.pending
      const next = slot.next
      slot.pending = undefined
      slot.next = undefined
      if (next !== undefined) return this.report(next, child.stop(next))
      return pending === undefined ? Effect.void : Fiber.interrupt(pending)
    }
    return this.report(slot.inc, child.stop(slot.inc))
  }

  report(inc: child.Incarnation, outcome: Effect.Effect<child.StopOutcome>): Effect.Effect<void> {
    if (outcome === child.stoppedNow) return Effect.void
    return Effect.flatMap(outcome, (o) => {
      if (o !== "abandoned") return Effect.void
      this.m.abandoned.modifyUnsafe(1, this.context)
      const policy = inc.spec.shutdown
      return Effect.annotateLogs(
        Effect.logWarning(
          `${describe(inc)} did not stop within ${
            policy._tag === "Timeout" ? policy.millis : 0
          } ms: abandoned (its finalizers may still be running)`
        ),
        { supervisor: this.name }
      )
    })
  }

  /** Stops every child concurrently (each by its own policy), then completes `done`. */
  shutdown(reason: "shutdown" | RestartIntensityExceeded): Effect.Effect<void> {
    if (this.state !== "open") return this.stopped ?? Effect.void
    this.state = "stopping"
    this.stopReason = reason
    // ask every child to stop before waiting for any of them
    // (children that stopped on the spot are not waited for: no fiber per child)
    const stops: Array<Effect.Effect<void>> = []
    for (const slot of this.children.values()) {
      const stop = this.stopSlot(slot)
      if (stop !== Effect.void) stops.push(stop)
    }
    for (const inc of this.starting) stops.push(this.report(inc, child.stop(inc)))
    const all = Effect.andThen(Effect.all(stops, { concurrency: "unbounded", discard: true }), () => {
      this.children.clear()
      this.starting.clear()
      this.touchGauge()
      this.active = 0
      this.workers = 0
      this.supervisors = 0
      this.state = "stopped"
      return reason === "shutdown" ? Deferred.succeed(this.done, undefined) : Deferred.fail(this.done, reason)
    })
    this.stopped = Effect.asVoid(Deferred.await(this.done).pipe(Effect.exit))
    return Effect.uninterruptible(all)
  }
}
Object.assign(SupervisorImpl.prototype, Proto)

let restartDepth = 0

const describe = (inc: child.Incarnation): string =>
  inc.spec.id === undefined ? `child (pid ${inc.pid})` : `child ${showValue(inc.spec.id)} (pid ${inc.pid})`

const impl = <X>(self: DynamicSupervisor<X>): SupervisorImpl => self as unknown as SupervisorImpl

const validate = (options: Options<any>): InvalidOptions | undefined => {
  const m = "DynamicSupervisor"
  const common = checkSupervisorOptions(m, options)
  if (common) return common
  const invalidBackoff = (options.restartBackoff as { readonly [InvalidBackoff]?: InvalidOptions } | undefined)?.[
    InvalidBackoff
  ]
  if (invalidBackoff !== undefined) return invalidBackoff
  if (options.restartBackoff !== undefined && !Schedule.isSchedule(options.restartBackoff)) {
    return new InvalidOptions({
      module: m,
      field: "restartBackoff",
      value: options.restartBackoff,
      expected: "a Schedule"
    })
  }
  if (options.restartBackoffResetAfter !== undefined) {
    const d = Duration.fromInput(options.restartBackoffResetAfter)
    if (d._tag === "None" || !(Duration.toMillis(d.value) >= 0)) {
      return new InvalidOptions({
        module: m,
        field: "restartBackoffResetAfter",
        value: options.restartBackoffResetAfter,
        expected: "a duration >= 0"
      })
    }
  }
  return undefined
}

/**
 * Starts a dynamic supervisor with no children, owned by the current Scope:
 * closing the Scope stops every child (concurrently, each by its own
 * shutdown policy) before the Scope is released.
 *
 * **Details**
 *
 * Options are checked first: a negative `maxChildren`, a zero or NaN
 * `maxSeconds`, a fractional `maxRestarts` fail with `InvalidOptions` naming
 * the field and the value, and nothing is started.
 *
 * **Example** (A supervisor with a limit)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* DynamicSupervisor.make({ maxChildren: 2 })
 *   yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.succeed("a") }))
 *   return yield* DynamicSupervisor.countChildren(sup)
 * })
 * // => { specs: 1, active: 1, supervisors: 0, workers: 1 }
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <X = never>(
  options: Options<X> = {}
): Effect.Effect<DynamicSupervisor<X>, InvalidOptions, Scope.Scope> =>
  Effect.suspend(() => {
    const error = validate(options)
    if (error) return Effect.fail(error)
    return Effect.acquireRelease(
      Effect.withFiber((fiber) => {
        const context = fiber.context as Context.Context<never>
        const maxSeconds = options.maxSeconds ?? 5
        const sup = new SupervisorImpl(
          options.name ?? "DynamicSupervisor",
          options.maxChildren ?? Infinity,
          options.maxRestarts ?? 3,
          maxSeconds,
          options.extraArguments,
          options.restartBackoff,
          options.restartBackoffResetAfter === undefined
            ? maxSeconds * 1000
            : Duration.toMillis(Duration.fromInputUnsafe(options.restartBackoffResetAfter)),
          context,
          fiber.getRef(Clock.Clock)
        )
        return Effect.succeed(sup as unknown as DynamicSupervisor<X>)
      }),
      (sup) => impl(sup).shutdown("shutdown")
    )
  })

/**
 * A layer that provides a dynamic supervisor under the given service key,
 * started when the layer is built and stopped when it is released.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I, X = never>(
  tag: Context.Key<I, DynamicSupervisor<X>>,
  options?: Options<X>
): Layer.Layer<I, InvalidOptions> => Layer.effect(tag)(make(options))

/**
 * Declares a named dynamic supervisor as a service class, the Effect
 * counterpart of a module-based `DynamicSupervisor` (`use DynamicSupervisor`).
 *
 * **Example** (The seed's `MyApp.WorkerSupervisor`)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * class WorkerSupervisor extends DynamicSupervisor.Service<WorkerSupervisor>()("MyApp/WorkerSupervisor", {
 *   maxChildren: 100
 * }) {}
 *
 * const startWorker = (arg: string) =>
 *   Effect.gen(function*() {
 *     const sup = yield* WorkerSupervisor
 *     return yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.succeed(arg) }))
 *   })
 *
 * const program = startWorker("job-1").pipe(Effect.provide(WorkerSupervisor.layer))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const Service =
  <Self>() =>
  <const Id extends string, X = never>(
    id: Id,
    options?: Options<X>
  ): Context.ServiceClass<Self, Id, DynamicSupervisor<X>> & {
    readonly layer: Layer.Layer<Self, InvalidOptions>
  } => {
    const Base = Context.Service<Self, DynamicSupervisor<X>>()(id)
    const layer = Layer.effect(Base as unknown as Context.Key<Self, DynamicSupervisor<X>>)(
      make({ name: id, ...options })
    )
    return Object.assign(Base, { layer }) as any
  }

/**
 * Starts a child and returns after its `start` finished, with the child's
 * handle.
 *
 * **Details**
 *
 * - `start` runs in the child's own fiber and Scope. If it fails, `startChild`
 *   fails with that error and the Scope has been closed: nothing is left
 *   behind. If the caller is interrupted while `start` runs, the child is
 *   stopped and released before the interruption completes.
 * - At `maxChildren` (children waiting to restart count) it fails with
 *   `MaxChildren` and runs nothing. After the supervisor stopped it fails with
 *   `SupervisorStopped`. An invalid spec fails with `InvalidOptions`.
 * - Pass a function to receive the supervisor's `extraArguments` (typed).
 * - The context of this call (its services) is kept to restart the child.
 *
 * **Example** (Starting a worker)
 *
 * ```ts
 * import { Effect, Queue } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * const worker = ChildSpec.make({
 *   start: Queue.unbounded<string>(),
 *   run: (inbox) => Effect.forever(Effect.flatMap(Queue.take(inbox), Effect.log))
 * })
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* DynamicSupervisor.make()
 *   const child = yield* DynamicSupervisor.startChild(sup, worker)
 *   yield* Queue.offer(child.handle, "hello")
 * })
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const startChild: {
  <A, E, R, X>(
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>)
  ): (self: DynamicSupervisor<X>) => Effect.Effect<Child<A>, E | MaxChildren | SupervisorStopped | InvalidOptions, R>
  <A, E, R, X>(
    self: DynamicSupervisor<X>,
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>)
  ): Effect.Effect<Child<A>, E | MaxChildren | SupervisorStopped | InvalidOptions, R>
} = dual(
  2,
  <A, E, R, X>(
    self: DynamicSupervisor<X>,
    spec: ChildSpec.ChildSpec<A, E, R> | ((extra: X) => ChildSpec.ChildSpec<A, E, R>)
  ): Effect.Effect<Child<A>, E | MaxChildren | SupervisorStopped | InvalidOptions, R> =>
    Effect.withFiber((fiber) => {
      const sup = impl(self)
      if (sup.state !== "open") return Effect.fail(new SupervisorStopped({ reason: sup.stopReason }))
      if (sup.children.size + sup.starting.size >= sup.maxChildren) {
        return Effect.fail(new MaxChildren({ maxChildren: sup.maxChildren }))
      }
      const s = typeof spec === "function" ? spec(sup.extraArguments as X) : spec
      if (s.invalid !== undefined) return Effect.fail(s.invalid)
      const inc = child.create(
        sup,
        s as ChildSpec.ChildSpec<A, unknown, unknown>,
        fiber.context as Context.Context<never>
      )
      const slot: Slot = {
        inc,
        restarting: false,
        pending: undefined,
        next: undefined,
        attempt: 0,
        restarts: 0,
        upSince: 0,
        step: undefined
      }
      inc.record = slot
      sup.starting.add(inc)
      child.begin(inc, true)
      // a start that finished synchronously needs no waiting
      if (inc.startResult === Effect.void) return Effect.succeed(inc as Child<A>)
      return Effect.as(child.awaitStart(inc), inc) as Effect.Effect<
        Child<A>,
        E | MaxChildren | SupervisorStopped | InvalidOptions,
        R
      >
    })
)

/**
 * Stops a child by its shutdown policy and removes it; it is never restarted,
 * whatever its restart value.
 *
 * **Details**
 *
 * Fails with `ChildNotFound` when the child is not supervised here: never was,
 * already stopped, or restarted since (a restart is a new incarnation with a
 * new pid). A child that is waiting to be restarted can be terminated through
 * its last incarnation or its `whichChildren` entry, as in Elixir.
 *
 * **Gotchas**
 *
 * This waits up to the child's `shutdown` duration for its finalizers. With
 * `"infinity"` it can wait arbitrarily long; it is often better to ask the
 * child itself to finish.
 *
 * **Example** (Terminating twice)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* DynamicSupervisor.make()
 *   const child = yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.void }))
 *   yield* DynamicSupervisor.terminateChild(sup, child)
 *   const error = yield* Effect.flip(DynamicSupervisor.terminateChild(sup, child))
 *   return error._tag
 * })
 * // => "ChildNotFound"
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const terminateChild: {
  (
    child: Child<unknown> | ChildInfo
  ): <X>(self: DynamicSupervisor<X>) => Effect.Effect<void, ChildNotFound | SupervisorStopped>
  <X>(
    self: DynamicSupervisor<X>,
    child: Child<unknown> | ChildInfo
  ): Effect.Effect<void, ChildNotFound | SupervisorStopped>
} = dual(
  2,
  <X>(
    self: DynamicSupervisor<X>,
    target: Child<unknown> | ChildInfo
  ): Effect.Effect<void, ChildNotFound | SupervisorStopped> =>
    Effect.suspend((): Effect.Effect<void, ChildNotFound | SupervisorStopped> => {
      const sup = impl(self)
      if (sup.state !== "open") return Effect.fail(new SupervisorStopped({ reason: sup.stopReason }))
      // pids are never reused, so the pid alone names the incarnation
      const slot = sup.children.get(target.pid)
      if (slot === undefined) {
        return Effect.fail(new ChildNotFound({ child: target.pid }))
      }
      sup.removeSlot(slot)
      return Effect.uninterruptible(sup.stopSlot(slot))
    })
)

/**
 * Counts the children, with Elixir's meaning (see {@link Counts}).
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildren = <X>(self: DynamicSupervisor<X>): Effect.Effect<Counts, SupervisorStopped> =>
  Effect.suspend(() => {
    const counts = countChildrenUnsafe(self)
    return counts === undefined
      ? Effect.fail(new SupervisorStopped({ reason: impl(self).stopReason }))
      : Effect.succeed(counts)
  })

/**
 * The synchronous twin of {@link countChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * @category getters
 * @since 0.1.0
 */
export const countChildrenUnsafe = <X>(self: DynamicSupervisor<X>): Counts | undefined => {
  const sup = impl(self)
  if (sup.state === "stopped") return undefined
  return { specs: sup.children.size, active: sup.active, supervisors: sup.supervisors, workers: sup.workers }
}

/**
 * Lists the children: one entry per child, with its running incarnation or
 * `"restarting"`. The order is unspecified (insertion order here).
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildren = <X>(
  self: DynamicSupervisor<X>
): Effect.Effect<ReadonlyArray<ChildInfo>, SupervisorStopped> =>
  Effect.suspend(() => {
    const infos = whichChildrenUnsafe(self)
    return infos === undefined
      ? Effect.fail(new SupervisorStopped({ reason: impl(self).stopReason }))
      : Effect.succeed(infos)
  })

/**
 * The synchronous twin of {@link whichChildren}; `undefined` once the
 * supervisor has stopped.
 *
 * @category getters
 * @since 0.1.0
 */
export const whichChildrenUnsafe = <X>(self: DynamicSupervisor<X>): ReadonlyArray<ChildInfo> | undefined => {
  const sup = impl(self)
  if (sup.state === "stopped") return undefined
  const out: Array<ChildInfo> = []
  for (const slot of sup.children.values()) {
    out.push({
      pid: slot.inc.pid,
      id: slot.inc.spec.id,
      child: slot.restarting ? "restarting" : (slot.inc as Child<unknown>),
      type: slot.inc.spec.type,
      restarts: slot.restarts
    })
  }
  return out
}

const await_ = <X>(self: DynamicSupervisor<X>): Effect.Effect<void, RestartIntensityExceeded> =>
  Deferred.await(impl(self).done)

export {
  /**
   * Waits until the supervisor stops: succeeds when its Scope closed, fails
   * with `RestartIntensityExceeded` when it gave up.
   *
   * **When to use**
   *
   * Use as the `run` body of a supervisor that is itself a child: when it gives
   * up, the child fails and its own supervisor applies its restart policy
   * (escalation). {@link childSpec} does exactly that.
   *
   * @category getters
   * @since 0.1.0
   */
  await_ as await
}

/**
 * A child spec that runs a dynamic supervisor as a child of another
 * supervisor: type `"supervisor"`, shutdown `"infinity"`, permanent by
 * default, and a body that fails with `RestartIntensityExceeded` when the
 * inner supervisor gives up, so the outer one restarts it (escalation).
 *
 * @category constructors
 * @since 0.1.0
 */
export const childSpec = <X = never>(
  options: Options<X> & {
    readonly id?: string | undefined
    readonly restart?: ChildSpec.Restart | undefined
  } = {}
): ChildSpec.ChildSpec<DynamicSupervisor<X>, InvalidOptions> =>
  ChildSpec.make({
    id: options.id ?? options.name,
    start: make(options),
    run: await_,
    restart: options.restart ?? "permanent",
    type: "supervisor"
  })

/**
 * An exponential restart backoff for `restartBackoff`: the n-th consecutive
 * restart of a child waits `min · factor^(n-1)`, capped at `max`, optionally
 * jittered to 80–120% of that (Effect's `Schedule.jittered`, so not every
 * child of a crashed backend retries at the same instant).
 *
 * **Details**
 *
 * With `min: "100 millis"`, `max: "2 seconds"` and the default factor 2 the
 * restarts wait 100, 200, 400, 800, 1600, 2000, 2000 ms. The schedule never
 * ends; combine it with `Schedule.upTo({ times })` to give up after a number
 * of restarts. A child that stays up for `restartBackoffResetAfter` starts
 * again from `min`.
 *
 * **Example** (Backing off restarts)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DynamicSupervisor } from "effect-otp"
 *
 * const program = DynamicSupervisor.make({
 *   maxRestarts: 10,
 *   maxSeconds: 60,
 *   restartBackoff: DynamicSupervisor.backoff({ min: "100 millis", max: "2 seconds", jitter: true })
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const backoff = (options: {
  readonly min: Duration.Input
  readonly max: Duration.Input
  /** @default 2 */
  readonly factor?: number | undefined
  /** @default false */
  readonly jitter?: boolean | undefined
}): Schedule.Schedule<number, unknown> => {
  const millis = (d: Duration.Input): number => {
    const o = Duration.fromInput(d)
    return o._tag === "Some" ? Duration.toMillis(o.value) : Number.NaN
  }
  const min = millis(options.min)
  const max = millis(options.max)
  const factor = options.factor ?? 2
  const bad = (field: string, value: unknown, expected: string) =>
    new InvalidOptions({ module: "DynamicSupervisor.backoff", field, value, expected })
  const invalid =
    !(min >= 0) || min === Infinity
      ? bad("min", options.min, "a finite duration >= 0")
      : !(max >= min) || max === Infinity
        ? bad("max", options.max, "a finite duration >= min")
        : !(factor >= 1) || factor === Infinity
          ? bad("factor", options.factor, "a finite number >= 1")
          : undefined
  const base = Schedule.forever.pipe(
    Schedule.modifyDelay(({ attempt }) => Effect.succeed(Duration.millis(backoffDelay(attempt, min, max, factor))))
  )
  const schedule = options.jitter === true ? Schedule.jittered(base) : base
  // make() rejects the supervisor options with this error (a Schedule cannot fail to be built)
  return invalid === undefined ? schedule : Object.assign(schedule, { [InvalidBackoff]: invalid })
}

const InvalidBackoff = "~effect-otp/DynamicSupervisor/InvalidBackoff"

/**
 * Returns true if the value is a {@link DynamicSupervisor}.
 *
 * @category guards
 * @since 0.1.0
 */
export const isDynamicSupervisor = (u: unknown): u is DynamicSupervisor<unknown> =>
  typeof u === "object" && u !== null && TypeId in u
