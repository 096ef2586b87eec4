/**
 * The engine of the static `Supervisor`: an ordered child table and a mailbox
 * drained by one fiber at a time, so that every operation (an exit, a retry,
 * an admin call) runs to completion before the next, exactly as OTP's
 * `supervisor` gen_server serializes them. A retry after a failed restart is
 * a message at the back of the mailbox (OTP's `try_again_restart` cast), so
 * calls queued before it get in between.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { RestartIntensityExceeded, SupervisorStopped } from "../../Errors.ts"
import { showValue } from "../../internal/show.ts"
import type { ChildSpec } from "../ChildSpec.ts"
import * as child from "./child.ts"
import { addRestart, makeWindow, type RestartWindow } from "../../internal/restartWindow.ts"
import { type SupervisorMetrics, supervisorMetrics } from "../../internal/metrics.ts"

/** @internal */
export type Strategy = "oneForOne" | "oneForAll" | "restForOne"

/** @internal */
export type AutoShutdown = "never" | "anySignificant" | "allSignificant"

/** One child spec and its current incarnation. @internal */
export interface Slot {
  readonly id: string
  readonly spec: ChildSpec<any, unknown, unknown>
  /** the services the child starts with (its starter's) */
  readonly context: Context.Context<never>
  /** the current incarnation (running or starting); undefined when not running (OTP's `:undefined`) */
  inc: child.Incarnation | undefined
  /** a failed restart is being retried (OTP's `{:restarting, _}`) */
  restarting: boolean
  /** deleted from the table */
  removed: boolean
  /** how many times the supervisor restarted it (successful restarts) */
  restarts: number
}

type Message =
  | { readonly _tag: "Exit"; readonly inc: child.Incarnation; readonly exit: Exit.Exit<unknown, unknown> }
  | { readonly _tag: "TryAgain"; readonly slot: Slot }
  | {
      readonly _tag: "Call"
      readonly op: Effect.Effect<unknown, unknown>
      readonly resume: (effect: Effect.Effect<any, any>) => void
      /** the fiber running `op`, while it runs */
      fiber: Fiber.Fiber<unknown, unknown> | undefined
    }

type Call = Extract<Message, { _tag: "Call" }>

/** @internal */
export class StaticSupervisor implements child.Host {
  state: "open" | "stopping" | "stopped" = "open"
  stopReason: "shutdown" | RestartIntensityExceeded = "shutdown"
  /** children in start order */
  readonly order: Array<Slot> = []
  readonly byId = new Map<string, Slot>()
  readonly window: RestartWindow = makeWindow()
  readonly done = Deferred.makeUnsafe<void, RestartIntensityExceeded>()
  /** messages are held until the initial children have started (OTP processes EXITs after init) */
  ready = false
  readonly mailbox: Array<Message> = []
  draining = false
  drainer: Fiber.Fiber<void> | undefined = undefined
  current: Call | undefined = undefined
  stopped: Effect.Effect<void> | undefined = undefined
  /** incarnations whose start succeeded and that have not exited */
  running = 0
  gaugeDirty = false
  readonly m: SupervisorMetrics

  constructor(
    readonly name: string,
    readonly strategy: Strategy,
    readonly maxRestarts: number,
    readonly maxSeconds: number,
    readonly autoShutdown: AutoShutdown,
    readonly context: Context.Context<never>,
    readonly clock: Clock.Clock
  ) {
    this.m = supervisorMetrics(name)
  }

  // ---- child.Host ----------------------------------------------------------

  /**
   * The active-children gauge is set once per tick rather than on every start
   * and exit, as DynamicSupervisor does (a metric update costs about a start).
   */
  touchGauge(delta: number): void {
    this.running += delta
    if (this.gaugeDirty) return
    this.gaugeDirty = true
    queueMicrotask(() => {
      this.gaugeDirty = false
      this.m.active.updateUnsafe(this.running, this.context)
    })
  }

  childStarted(inc: child.Incarnation): void {
    this.touchGauge(1)
    child.settleStart(inc, Effect.void)
  }

  childExited(inc: child.Incarnation, exit: Exit.Exit<unknown, unknown>): void {
    if (!inc.started) {
      this.m.startFailures.modifyUnsafe(1, this.context)
      child.settleStart(inc, Effect.failCause(child.exitCause(exit)))
      return
    }
    this.touchGauge(-1)
    // an exit the supervisor caused is never processed as a crash (OTP flushes the EXIT)
    if (inc.stopping || this.state !== "open") return
    this.send({ _tag: "Exit", inc, exit })
  }

  // ---- the mailbox -----------------------------------------------------------

  send(message: Message): void {
    this.mailbox.push(message)
    this.pump()
  }

  pump(): void {
    if (this.draining || !this.ready || this.state !== "open" || this.mailbox.length === 0) return
    this.draining = true
    this.drainer = Effect.runForkWith(this.context)(this.drain)
  }

  readonly drain: Effect.Effect<void> = Effect.suspend(() => {
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      const message = this.state === "open" ? this.mailbox.shift() : undefined
      if (message === undefined) {
        this.draining = false
        this.drainer = undefined
        return Effect.void
      }
      return Effect.flatMap(this.process(message), () => loop)
    })
    return loop
  })

  process(message: Message): Effect.Effect<void> {
    switch (message._tag) {
      case "Exit":
        return this.handleExit(message.inc, message.exit)
      case "TryAgain": {
        const slot = message.slot
        // terminateChild or deleteChild may have cancelled the retry in between
        return slot.removed || !slot.restarting ? Effect.void : this.restart(slot)
      }
      case "Call":
        // the operation runs in its own fiber, so that an interrupted caller can cancel it
        this.current = message
        return Effect.flatMap(Effect.forkChild(message.op, { startImmediately: true }), (fiber) => {
          message.fiber = fiber
          return Effect.map(Fiber.await(fiber), (exit) => {
            this.current = undefined
            message.fiber = undefined
            message.resume(exit)
          })
        })
    }
  }

  /** Runs `op` in the supervisor, after everything queued before it. */
  call<A, E>(op: Effect.Effect<A, E>): Effect.Effect<A, E | SupervisorStopped> {
    return Effect.callback<A, E | SupervisorStopped>((resume) => {
      if (this.state !== "open") {
        resume(Effect.fail(new SupervisorStopped({ reason: this.stopReason })))
        return
      }
      const message: Call = { _tag: "Call", op, resume, fiber: undefined }
      this.send(message)
      return Effect.suspend(() => {
        // an interrupted caller withdraws a queued request, or cancels the running one
        const i = this.mailbox.indexOf(message)
        if (i >= 0) this.mailbox.splice(i, 1)
        return message.fiber === undefined ? Effect.void : Effect.asVoid(Fiber.interrupt(message.fiber))
      })
    })
  }

  // ---- starting and stopping one child -----------------------------------------

  /** Starts a new incarnation of the slot and waits for its `start`. */
  startSlot(slot: Slot, isRestart = false): Effect.Effect<Exit.Exit<void, unknown>> {
    const inc = child.create(this, slot.spec, slot.context)
    inc.record = slot
    slot.inc = inc
    child.begin(inc, true)
    return Effect.map(Effect.exit(Effect.suspend(() => child.awaitStart(inc))), (exit) => {
      if (slot.inc === inc) {
        if (exit._tag === "Failure") slot.inc = undefined
        else {
          slot.restarting = false
          if (isRestart) {
            slot.restarts++
            this.m.restarts.modifyUnsafe(1, this.context)
          }
        }
      }
      return exit
    }).pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          if (slot.inc === inc) slot.inc = undefined
        })
      )
    )
  }

  /** Stops the slot's incarnation, if any, by its own shutdown policy. */
  stopSlot(slot: Slot): Effect.Effect<void> {
    const inc = slot.inc
    slot.inc = undefined
    slot.restarting = false
    if (inc === undefined) return Effect.void
    return Effect.flatMap(child.stop(inc), (outcome) => {
      if (outcome !== "abandoned") return Effect.void
      this.m.abandoned.modifyUnsafe(1, this.context)
      const policy = inc.spec.shutdown
      return this.logged(
        Effect.logWarning(
          `child ${showValue(slot.id)} (pid ${inc.pid}) did not stop within ${
            policy._tag === "Timeout" ? policy.millis : 0
          } ms: abandoned (its finalizers may still be running)`
        )
      )
    })
  }

  append(slot: Slot): void {
    this.order.push(slot)
    this.byId.set(slot.id, slot)
  }

  remove(slot: Slot): void {
    if (slot.removed) return
    slot.removed = true
    this.byId.delete(slot.id)
    const i = this.order.lastIndexOf(slot)
    if (i >= 0) this.order.splice(i, 1)
  }

  logged(effect: Effect.Effect<void>): Effect.Effect<void> {
    return Effect.annotateLogs(effect, { supervisor: this.name })
  }

  // ---- exits and restarts (OTP restart_child/3, restart/2,3) --------------------

  handleExit(inc: child.Incarnation, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const slot = inc.record as Slot
    if (slot.removed || slot.inc !== inc || inc.stopping || this.state !== "open") return Effect.void
    slot.inc = undefined
    const kind = child.exitKind(exit)
    const crash =
      kind === "abnormal"
        ? (this.m.crashes.modifyUnsafe(1, this.context),
          this.logged(Effect.logError(`child ${showValue(slot.id)} (pid ${inc.pid}) crashed`, child.exitCause(exit))))
        : Effect.void
    if (child.shouldRestart(slot.spec.restart, kind)) return Effect.andThen(crash, this.restart(slot))
    // not restarted: a temporary child's spec goes, a transient one's stays
    if (slot.spec.restart === "temporary") this.remove(slot)
    return Effect.andThen(crash, this.maybeAutoShutdown(slot))
  }

  /** One counted restart attempt, by strategy; gives up past the intensity. */
  restart(slot: Slot): Effect.Effect<void> {
    if (!addRestart(this.window, this.clock.currentTimeMillisUnsafe(), this.maxRestarts, this.maxSeconds * 1000)) {
      return this.giveUp(slot)
    }
    switch (this.strategy) {
      case "oneForOne":
        slot.restarting = true // shown as "restarting" while the new incarnation starts
        return Effect.flatMap(this.startSlot(slot, true), (exit) =>
          exit._tag === "Success" ? Effect.void : this.retryLater(slot, exit)
        )
      case "oneForAll":
        return this.restartGroup(this.order.slice())
      case "restForOne":
        return this.restartGroup(this.order.slice(this.order.indexOf(slot)))
    }
  }

  /**
   * Stops the group's running children in reverse start order, one at a time
   * (temporary ones are removed), then starts the rest in start order; a start
   * that fails stops the group restart there and is retried later.
   */
  restartGroup(group: ReadonlyArray<Slot>): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      for (let i = group.length - 1; i >= 0; i--) {
        const s = group[i]!
        if (s.inc !== undefined) yield* this.stopSlot(s)
        s.restarting = false
        if (s.spec.restart === "temporary") this.remove(s)
      }
      for (const s of group) {
        if (s.removed) continue
        const exit = yield* this.startSlot(s, true)
        if (exit._tag === "Failure") return yield* this.retryLater(s, exit)
      }
    })
  }

  retryLater(slot: Slot, exit: Exit.Exit<void, unknown>): Effect.Effect<void> {
    slot.restarting = true
    this.send({ _tag: "TryAgain", slot })
    return this.logged(Effect.logError(`child ${showValue(slot.id)} failed to restart`, child.exitCause(exit)))
  }

  giveUp(slot: Slot): Effect.Effect<void> {
    const error = new RestartIntensityExceeded({
      maxRestarts: this.maxRestarts,
      maxSeconds: this.maxSeconds,
      child: slot.id,
      reason: "intensity"
    })
    slot.restarting = false
    return Effect.andThen(this.logged(Effect.logError(error.message)), this.terminate(error, false))
  }

  /** OTP's do_auto_shutdown: only a significant child that exited by itself and was not restarted. */
  maybeAutoShutdown(slot: Slot): Effect.Effect<void> {
    if (this.autoShutdown === "never" || !slot.spec.significant) return Effect.void
    if (this.autoShutdown === "allSignificant") {
      for (const s of this.order) {
        if (s.spec.significant && (s.inc !== undefined || s.restarting)) return Effect.void
      }
    }
    return Effect.andThen(
      this.logged(Effect.logInfo(`significant child ${showValue(slot.id)} exited: auto shutdown`)),
      this.terminate("shutdown", false)
    )
  }

  // ---- termination (OTP terminate/2) -----------------------------------------------

  /** Stops every child one at a time in reverse start order, each by its own policy. */
  stopAll(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      for (let i = this.order.length - 1; i >= 0; i--) {
        const s = this.order[i]
        if (s !== undefined) yield* this.stopSlot(s)
      }
    })
  }

  /**
   * Stops the supervisor. From outside (its Scope closing) the operation in
   * progress is interrupted first; from inside (giving up, auto shutdown) it
   * runs in the draining fiber itself.
   */
  terminate(reason: "shutdown" | RestartIntensityExceeded, outside: boolean): Effect.Effect<void> {
    return Effect.suspend(() => this.terminateNow(reason, outside))
  }

  terminateNow(reason: "shutdown" | RestartIntensityExceeded, outside: boolean): Effect.Effect<void> {
    if (this.state !== "open") return this.stopped ?? Effect.void
    this.state = "stopping"
    this.stopReason = reason
    this.stopped = Effect.asVoid(Effect.exit(Deferred.await(this.done)))
    const stoppedError = Effect.fail(new SupervisorStopped({ reason }))
    const interruptDrainer = outside && this.drainer !== undefined ? Fiber.interrupt(this.drainer) : Effect.void
    return Effect.uninterruptible(
      Effect.gen({ self: this }, function* () {
        yield* interruptDrainer
        // callers waiting in the mailbox (or whose call was cut short) get SupervisorStopped
        if (outside && this.current !== undefined) this.current.resume(stoppedError)
        this.current = undefined
        for (const message of this.mailbox) if (message._tag === "Call") message.resume(stoppedError)
        this.mailbox.length = 0
        yield* this.stopAll()
        this.state = "stopped"
        if (reason === "shutdown") yield* Deferred.succeed(this.done, undefined)
        else yield* Deferred.fail(this.done, reason)
      })
    )
  }
}
