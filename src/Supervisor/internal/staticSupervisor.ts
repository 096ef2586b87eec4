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
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Tracer from "effect/Tracer"
import type { RestartIntensityExceeded, SupervisorStopped } from "../../Errors.ts"
import * as child from "../../internal/child.ts"
import * as Inspect from "../../internal/inspect.ts"
import { type BackoffState, newBackoffState, type RestartPolicy } from "../../internal/policy.ts"
import { isTracing, Shell } from "../../internal/shell.ts"
import type { ChildSpec } from "../ChildSpec.ts"
import { shellNodeState } from "./dynamic.ts"
import { isStartFailure } from "../../internal/metrics.ts"

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
  inc: child.Child | undefined
  /** a failed restart is being retried, or a backoff delay runs (OTP's `{:restarting, _}`) */
  restarting: boolean
  /** the backoff delay in flight */
  timer: Fiber.Fiber<unknown, unknown> | undefined
  /** the pid of the last incarnation that started (for a restart's span) */
  lastPid?: number | undefined
  /** the span of the restart in flight (when tracing), ended once the new incarnation is up */
  restartSpan?: Tracer.Span | undefined
  backoff: BackoffState | undefined
  /** deleted from the table */
  removed: boolean
  /** how many times the supervisor restarted it (successful restarts) */
  restarts: number
}

type Message =
  | { readonly _tag: "Exit"; readonly inc: child.Child; readonly exit: Exit.Exit<unknown, unknown> }
  | { readonly _tag: "TryAgain"; readonly slot: Slot }
  /** a backoff delay ended: restart by strategy without counting again */
  | { readonly _tag: "Restart"; readonly slot: Slot }
  | {
      readonly _tag: "Call"
      readonly op: Effect.Effect<unknown, unknown>
      readonly resume: (effect: Effect.Effect<any, any>) => void
      /** the fiber running `op`, while it runs */
      fiber: Fiber.Fiber<unknown, unknown> | undefined
    }

type Call = Extract<Message, { _tag: "Call" }>

/** @internal */
export class StaticSupervisor implements child.Host, Inspect.Inspector {
  readonly shell: Shell
  /** children in start order */
  readonly order: Array<Slot> = []
  readonly byId = new Map<string, Slot>()
  /** messages are held until the initial children have started (OTP processes EXITs after init) */
  ready = false
  readonly mailbox: Array<Message> = []
  draining = false
  drainer: Fiber.Fiber<void> | undefined = undefined
  current: Call | undefined = undefined
  readonly kind = "Supervisor" as const
  readonly [Inspect.TypeId]: Inspect.Inspector = this

  constructor(
    readonly name: string,
    readonly strategy: Strategy,
    readonly policy: RestartPolicy,
    readonly autoShutdown: AutoShutdown,
    readonly context: Context.Context<never>
  ) {
    this.shell = new Shell("Supervisor", name, context, policy)
  }

  get state() {
    return this.shell.state
  }
  get stopReason() {
    return this.shell.stopReason
  }
  get done() {
    return this.shell.done
  }

  // ---- child.Host ----------------------------------------------------------

  childStarted(inc: child.Child): void {
    child.setStartedAt(inc, this.shell.startOffset())
    this.shell.addActive(1)
    child.settleStart(inc, Effect.void)
  }

  childExited(inc: child.Child, exit: Exit.Exit<unknown, unknown>): void {
    if (!child.started(inc)) {
      if (isStartFailure(exit)) this.shell.m.startFailures.modifyUnsafe(1, this.context)
      child.settleStart(inc, Effect.failCause(child.exitCause(exit)))
      return
    }
    this.shell.addActive(-1)
    // an exit the supervisor caused is never processed as a crash (OTP flushes the EXIT)
    if (child.isStopping(inc) || this.shell.state !== "open") {
      this.shell.emitStopped(inc, exit)
      return
    }
    this.send({ _tag: "Exit", inc, exit })
  }

  // ---- the mailbox -----------------------------------------------------------

  send(message: Message): void {
    this.mailbox.push(message)
    this.pump()
  }

  pump(): void {
    if (this.draining || !this.ready || this.shell.state !== "open" || this.mailbox.length === 0) return
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
      case "Restart": {
        const slot = message.slot
        return slot.removed || !slot.restarting ? Effect.void : this.restartNow(slot)
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
      if (this.shell.state !== "open") {
        resume(Effect.fail(this.shell.stoppedError()))
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

  /**
   * Starts a new incarnation of the slot and waits for its `start`. A
   * restart's run is linked to `restartSpan` (the span of the restart that
   * caused it, its own or, in a group restart, the crashed sibling's).
   */
  startSlot(slot: Slot, isRestart = false, restartSpan?: Tracer.Span): Effect.Effect<Exit.Exit<void, unknown>> {
    const inc = child.create(this.name, this, slot.spec)
    child.setLink(inc, slot)
    const previous = slot.inc
    slot.inc = inc
    const base = this.shell.childBase(slot.context)
    if (isTracing(slot.context)) {
      // its run is a root span, linked to the restart that made it, or else to the span that made
      // the supervisor (first start) or started it (startChild, restartChild)
      const link = isRestart ? (restartSpan ?? slot.restartSpan) : undefined
      const origin = link === undefined ? Context.getOption(slot.context, Tracer.ParentSpan) : undefined
      const traced = this.shell.tracedRun(
        child.mainOf(slot.spec, true),
        link ?? (origin?._tag === "Some" ? origin.value : undefined),
        link === undefined ? "started-by" : "restarted-by",
        {
          id: slot.id,
          pid: inc.pid,
          incarnation: slot.restarts + (isRestart ? 2 : 1),
          attempt: isRestart ? slot.restarts + 1 : 0,
          restart: isRestart,
          previousPid: previous?.pid ?? slot.lastPid
        }
      )
      child.begin(inc, base, true, traced)
    } else {
      child.begin(inc, base, true)
    }
    return Effect.map(
      Effect.exit(Effect.suspend(() => child.awaitStart(inc, (c) => this.shell.abandoned(c, slot.spec.shutdown)))),
      (exit) => {
        if (slot.inc === inc) {
          if (exit._tag === "Failure") slot.inc = undefined
          else {
            slot.restarting = false
            if (slot.backoff !== undefined) slot.backoff.upSince = this.shell.now()
            slot.lastPid = inc.pid
            if (slot.restartSpan !== undefined) {
              this.shell.endRestartSpan(slot.restartSpan, inc.pid)
              slot.restartSpan = undefined
            }
            if (isRestart) {
              slot.restarts++
              this.shell.m.restarts.modifyUnsafe(1, this.context)
              this.shell.emitRestarted(inc, previous?.pid ?? 0, slot.restarts)
            } else this.shell.emitStarted(inc)
          }
        }
        return exit
      }
    ).pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          if (slot.inc === inc) slot.inc = undefined
        })
      )
    )
  }

  /** Stops the slot's incarnation, if any, by its own shutdown policy (and cancels a backoff delay). */
  stopSlot(slot: Slot): Effect.Effect<void> {
    const inc = slot.inc
    slot.inc = undefined
    slot.restarting = false
    this.endRestartSpan(slot)
    if (slot.timer !== undefined) {
      slot.timer.interruptUnsafe()
      slot.timer = undefined
    }
    if (inc === undefined) return Effect.void
    const outcome = child.stop(inc)
    if (outcome === child.stoppedNow) return Effect.void
    return Effect.map(outcome, (o) => {
      if (o === "abandoned")
        this.shell.abandoned(inc, inc === undefined ? slot.spec.shutdown : child.specOf(inc).shutdown)
    })
  }

  append(slot: Slot): void {
    this.order.push(slot)
    this.byId.set(slot.id, slot)
  }

  remove(slot: Slot): void {
    if (slot.removed) return
    slot.removed = true
    this.endRestartSpan(slot)
    this.byId.delete(slot.id)
    const i = this.order.lastIndexOf(slot)
    if (i >= 0) this.order.splice(i, 1)
  }

  logged(effect: Effect.Effect<void>): Effect.Effect<void> {
    return Effect.annotateLogs(effect, { supervisor: this.name })
  }

  /** A log through the shell (nothing built when its level is dropped), as an effect for the mailbox. */
  logNow(level: "Error" | "Info", message: string, cause?: Parameters<Shell["log"]>[2], c?: child.Child) {
    return Effect.sync(() => this.shell.log(level, message, cause, c))
  }

  // ---- exits and restarts (OTP restart_child/3, restart/2,3) --------------------

  handleExit(inc: child.Child, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const slot = child.linkOf<Slot>(inc)!
    if (slot.removed || slot.inc !== inc || child.isStopping(inc) || this.shell.state !== "open") return Effect.void
    slot.inc = undefined
    const kind = child.exitKind(exit)
    if (kind === "abnormal") this.shell.m.crashes.modifyUnsafe(1, this.context)
    const crash =
      kind === "abnormal"
        ? this.logNow("Error", `${child.describe(inc)} crashed`, child.exitCause(exit), inc)
        : Effect.void
    this.shell.emitExited(inc, exit)
    if (child.shouldRestart(slot.spec.restart, kind)) return Effect.andThen(crash, this.restart(slot))
    // not restarted: a temporary child's spec goes, a transient one's stays
    if (slot.spec.restart === "temporary") this.remove(slot)
    return Effect.andThen(crash, this.maybeAutoShutdown(slot))
  }

  /** Ends the slot's restart span, if a restart is in flight (cancelled, or the supervisor gave up). */
  endRestartSpan(slot: Slot, exit?: Exit.Exit<unknown, unknown>): void {
    if (slot.restartSpan === undefined) return
    this.shell.endRestartSpan(slot.restartSpan, undefined, exit)
    slot.restartSpan = undefined
  }

  /** One counted restart attempt, by strategy; gives up past the intensity. */
  restart(slot: Slot): Effect.Effect<void> {
    if (!this.shell.restarts.allow()) return this.giveUp(slot, "intensity")
    if (this.shell.tracing && slot.restartSpan === undefined) {
      slot.restartSpan = this.shell.restartSpan(slot.id, slot.lastPid, slot.restarts + 1)
    }
    if (this.policy.backoff === undefined) return this.restartNow(slot)
    // wait out the slot's backoff delay outside the mailbox, then restart by strategy
    slot.restarting = true
    const backoff = (slot.backoff ??= newBackoffState(this.shell.now()))
    return Effect.flatMap(this.shell.restarts.nextDelay(backoff), (millis) => {
      if (millis === undefined) return this.giveUp(slot, "backoff")
      slot.timer = Effect.runForkWith(this.context)(
        Effect.andThen(
          Effect.sleep(millis),
          Effect.sync(() => {
            slot.timer = undefined
            this.send({ _tag: "Restart", slot })
          })
        )
      )
      return Effect.void
    })
  }

  /** Restarts by strategy (the restart was counted). */
  restartNow(slot: Slot): Effect.Effect<void> {
    switch (this.strategy) {
      case "oneForOne":
        slot.restarting = true // shown as "restarting" while the new incarnation starts
        return Effect.flatMap(this.startSlot(slot, true), (exit) =>
          exit._tag === "Success" ? Effect.void : this.retryLater(slot, exit)
        )
      case "oneForAll":
        return this.restartGroup(this.order.slice(), slot.restartSpan)
      case "restForOne":
        return this.restartGroup(this.order.slice(this.order.indexOf(slot)), slot.restartSpan)
    }
  }

  /**
   * Stops the group's running children in reverse start order, one at a time
   * (temporary ones are removed), then starts the rest in start order; a start
   * that fails stops the group restart there and is retried later.
   */
  restartGroup(group: ReadonlyArray<Slot>, restartSpan: Tracer.Span | undefined): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      for (let i = group.length - 1; i >= 0; i--) {
        const s = group[i]!
        if (s.inc !== undefined) yield* this.stopSlot(s)
        s.restarting = false
        if (s.spec.restart === "temporary") this.remove(s)
      }
      for (const s of group) {
        if (s.removed) continue
        const exit = yield* this.startSlot(s, true, restartSpan)
        if (exit._tag === "Failure") return yield* this.retryLater(s, exit)
      }
    })
  }

  retryLater(slot: Slot, exit: Exit.Exit<void, unknown>): Effect.Effect<void> {
    slot.restarting = true
    this.send({ _tag: "TryAgain", slot })
    return this.logNow("Error", `child ${JSON.stringify(slot.id)} failed to restart`, child.exitCause(exit))
  }

  giveUp(slot: Slot, reason: "intensity" | "backoff"): Effect.Effect<void> {
    slot.restarting = false
    this.endRestartSpan(slot, Exit.fail("gave up"))
    const error = this.shell.giveUp({ id: slot.id, pid: slot.inc?.pid ?? 0 }, reason)
    return this.terminate(error, false)
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
      this.logNow("Info", `significant child ${JSON.stringify(slot.id)} exited: auto shutdown`),
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
    if (!this.shell.beginStop(reason)) return this.shell.awaitStopped
    const stoppedError = Effect.fail(this.shell.stoppedError() as SupervisorStopped)
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
        this.shell.endStop()
      })
    )
  }

  // ---- Inspect.Inspector ---------------------------------------------------------------

  snapshot(): Inspect.NodeSnapshot {
    const children = this.order.map((slot) => {
      const inc = slot.inc
      const running = inc !== undefined && child.started(inc) && !slot.restarting
      return Inspect.childNode(
        {
          kind: "Worker",
          type: slot.spec.type,
          id: slot.id,
          pid: running ? inc.pid : undefined,
          state: slot.restarting ? "restarting" : running ? "running" : inc !== undefined ? "starting" : "stopped",
          restarts: slot.restarts,
          startedAt: running ? this.shell.startedAt(child.startedAtOffset(inc)) : undefined
        },
        running ? inc.handle : undefined
      )
    })
    return {
      kind: "Supervisor",
      type: "supervisor",
      name: this.name,
      id: this.name,
      state: shellNodeState(this.shell),
      restarts: 0,
      counts: {
        specs: this.order.length,
        active: this.shell.active,
        supervisors: this.order.filter((s) => s.spec.type === "supervisor").length,
        workers: this.order.filter((s) => s.spec.type !== "supervisor").length
      },
      children
    }
  }

  subscribe(listener: (event: Inspect.InspectEvent) => void): () => void {
    return Inspect.addListener(this.shell, listener)
  }

  childInspectors(): ReadonlyArray<Inspect.Inspector> {
    const out: Array<Inspect.Inspector> = []
    for (const slot of this.order) {
      if (slot.inc !== undefined && child.started(slot.inc)) {
        const i = Inspect.inspectorOf(slot.inc.handle)
        if (i !== undefined) out.push(i)
      }
    }
    return out
  }
}
