/**
 * The local server runtime.
 *
 * A server is a mailbox and a flag, `busy`, that serializes its handlers: at
 * most one runs at a time, in arrival order. Each message's handler runs in a
 * fiber of its own, started with the server's context (its Scope, log
 * annotations, span, `CurrentServer`) and run synchronously by
 * `runForkWith` until it ends or suspends:
 *
 * - a call to an idle server with an empty mailbox starts its handler at
 *   once, in the caller's turn; when the handler ends without suspending
 *   (most do) the reply is there when `runForkWith` returns, with no
 *   scheduler hop and no suspension of the caller;
 * - otherwise the message waits in the mailbox and the caller suspends; the
 *   server takes the next message when the running handler ends (in that
 *   handler's exit observer), or in a task on the scheduler for messages that
 *   arrived while it was idle (casts: a cast never runs a handler in its
 *   caller's turn);
 * - the handler never runs in the caller's fiber, so the caller's
 *   interruption or timeout cannot cut it short, and its defect crashes the
 *   server, not the caller.
 *
 * A crash (or stop, or shutdown) settles every waiting caller at once with
 * `ServerDown`, synchronously, then tells the owner (the child's body, or the
 * Scope of an unsupervised server).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Option from "effect/Option"
import { pipeArguments } from "effect/Pipeable"
import * as References from "effect/References"
import * as Scheduler from "effect/Scheduler"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type { DownReason, Runtime, Timer } from "../Server.ts"
import { kindOf, type Kind, monotonicMillis } from "./metrics.ts"

/** @internal */
export const RefTypeId = "~effect-otp/Server/ServerRef"

/** @internal */
export type AnyHandler = (payload: unknown, self: Runtime) => Effect.Effect<unknown, unknown, unknown>

const CALL = 0
const CAST = 1
const STOP = 2

const QUEUED = 0
const RUNNING = 1
const DONE = 2
const WITHDRAWN = 3

/** @internal */
export class Message {
  state = QUEUED
  exit: Exit.Exit<unknown, unknown> | undefined = undefined
  resume: ((exit: Exit.Exit<unknown, unknown>) => void) | undefined = undefined
  constructor(
    readonly kind: number,
    readonly tag: string,
    readonly payload: unknown,
    /** the caller's span, linked from the handler's span */
    readonly link: Tracer.AnySpan | undefined,
    /** when the call was made (monotonic ms), for the latency histogram; -1 for casts */
    readonly at: number,
    /** the calling fiber: a call whose caller ended before it started waiting is skipped */
    readonly caller?: Fiber.Fiber<unknown, unknown>
  ) {}
}

/** Builds the error a waiting caller gets when the server goes down. */
type DownError = (server: string, tag: string, reason: DownReason) => unknown

const isReply = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.length > 0 && cause.reasons.every(Cause.isFailReason)

const Normal: DownReason = { _tag: "Normal" }
const Shutdown: DownReason = { _tag: "Shutdown" }

/** Elixir's stop reasons: `:normal` and `:shutdown` are normal exits, anything else is abnormal. */
export const decodeStopReason = (reason: unknown): DownReason =>
  reason === undefined || reason === "normal" ? Normal : reason === "shutdown" ? Shutdown : { _tag: "Stopped", reason }

/** The exit of the child's body for a reason: success for normal ones, the cause for a crash. */
export const exitOf = (reason: DownReason): Exit.Exit<void, unknown> =>
  reason._tag === "Crashed"
    ? Exit.failCause(reason.cause)
    : reason._tag === "Stopped"
      ? Exit.fail(reason.reason)
      : Exit.void

let nextId = 0

let currentServerKey: Context.Key<unknown, Runtime> | undefined
/** Set once by the public module, which defines the CurrentServer service (kept there with its docs). @internal */
export const setCurrentServerKey = (key: Context.Key<unknown, Runtime>): void => {
  currentServerKey = key
}

/**
 * The scheduler handlers run with: the server's own, except that every fiber
 * gets the same dispatcher. A fiber makes a dispatcher (its own task queue and
 * `setImmediate`) the first time it yields, and a server starts a fiber per
 * call it takes at once; with one dispatcher per scheduler their yields are
 * batched in one macrotask, as those of one long-lived fiber are.
 */
const shared = new WeakMap<Scheduler.Scheduler, Scheduler.Scheduler>()
const sharedScheduler = (base: Scheduler.Scheduler): Scheduler.Scheduler => {
  let scheduler = shared.get(base)
  if (scheduler === undefined) {
    const dispatcher = base.makeDispatcher()
    scheduler = {
      executionMode: base.executionMode,
      shouldYield: (fiber) => base.shouldYield(fiber),
      makeDispatcher: () => dispatcher
    }
    shared.set(base, scheduler)
    shared.set(scheduler, scheduler)
  }
  return scheduler
}

/** @internal */
export class ServerImpl implements Runtime {
  declare readonly [RefTypeId]: typeof RefTypeId
  /** the child's context (its Scope, annotations, services) */
  base: Context.Context<never> = Context.empty()
  /** `base` with CurrentServer: built at the first message, so an idle server holds no copy of its context */
  ctx: Context.Context<never> | undefined = undefined
  handlers: Record<string, AnyHandler> | undefined = undefined
  /** a handler is running, the server is starting, or a drain owns the mailbox */
  busy = true
  /** a drain task is on the scheduler */
  scheduled = false
  down: DownReason | undefined = undefined
  /** `self.stop(reason)` was called: stop once the current handler has replied */
  stopping: DownReason | undefined = undefined
  mailbox: Array<Message> = []
  head = 0
  /** messages in the mailbox that are still waiting (not withdrawn) */
  queued = 0
  current: Fiber.Fiber<unknown, unknown> | undefined = undefined
  currentMessage: Message | undefined = undefined
  /** replies that a handler handed to a Deferred, each awaited by a fiber */
  later: Map<Fiber.Fiber<unknown, unknown>, Message> | undefined = undefined
  /** told once, when the incarnation ends */
  onDown: ((reason: DownReason) => void) | undefined = undefined
  /** resumed when the incarnation's Scope has closed (its last finalizer) */
  onClosed: Array<() => void> | undefined = undefined
  closed = false
  kind!: Kind
  now!: () => number
  /** the tracer, when spans go somewhere */
  tracer: Tracer.Tracer | undefined = undefined
  /** the Clock spans are timed with, when span timing is on */
  spanClock: Clock.Clock | undefined = undefined
  readonly pid: number
  constructor(
    readonly name: string,
    readonly capacity: number,
    readonly scope: Scope.Scope,
    readonly downError: DownError
  ) {
    this.pid = ++nextId
  }

  get id(): string {
    return String(this.pid)
  }

  /** The context handlers run in: the child's, with `CurrentServer`. */
  get context(): Context.Context<never> {
    if (this.ctx !== undefined) return this.ctx
    const scheduler = sharedScheduler(Context.get(this.base, Scheduler.Scheduler))
    return (this.ctx = Context.add(
      Context.add(this.base, currentServerKey!, this as Runtime),
      Scheduler.Scheduler,
      scheduler
    ) as Context.Context<never>)
  }

  /** Sets the server's base context (the child's) and what is read from it once. */
  setContext(context: Context.Context<never>): void {
    this.base = context
    this.kind = kindOf(this.name, context)
    this.now = monotonicMillis(context)
    // spans only when they go somewhere: tracing on and a tracer other than
    // Effect's native one (as the supervisors decide); a span per message
    // costs more than the rest of a call
    const tracer = Context.get(context, Tracer.Tracer)
    this.tracer = Context.get(context, References.TracerEnabled) && tracer !== Tracer.nativeTracer ? tracer : undefined
    this.spanClock = Context.get(context, References.TracerTimingEnabled)
      ? Context.get(context, Clock.Clock)
      : undefined
  }

  // ---- Runtime (what handlers see as `self`) ---------------------------------

  cast(tag: string, payload?: unknown): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.down === undefined) this.enqueue(new Message(CAST, tag, payload, undefined, -1))
    })
  }

  sendAfter(delay: Duration.Input, tag: string, payload?: unknown): Effect.Effect<Timer> {
    const send = Effect.andThen(Effect.sleep(delay), this.cast(tag, payload))
    return Effect.map(Effect.forkIn(send, this.scope, { startImmediately: true }), (fiber) => ({
      cancel: Effect.suspend(() => {
        if (fiber.pollUnsafe() !== undefined) return Effect.succeed(false)
        return Effect.as(Fiber.interrupt(fiber), true)
      })
    }))
  }

  stop(reason?: unknown): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.down !== undefined || this.stopping !== undefined) return
      this.stopping = decodeStopReason(reason)
      // outside a handler (a fiber the server forked, a timer): stop now
      if (!this.busy) this.terminate(this.stopping, undefined)
    })
  }

  // ---- the mailbox -----------------------------------------------------------

  /** Puts a message at the end of the mailbox; a drain is scheduled if nothing will take it. */
  enqueue(message: Message): void {
    this.mailbox.push(message)
    this.queued++
    this.kind.depth++
    if (!this.busy && !this.scheduled) this.schedule()
  }

  isFull(): boolean {
    return this.queued >= this.capacity
  }

  /** A request withdrawn by its caller (interrupted, timed out): skipped if still queued, its reply dropped if running. */
  withdraw(message: Message): void {
    message.resume = undefined
    if (message.state === QUEUED) {
      message.state = WITHDRAWN
      this.queued--
      this.kind.depth--
    }
  }

  private take(): Message | undefined {
    const mailbox = this.mailbox
    while (this.head < mailbox.length) {
      const message = mailbox[this.head]!
      mailbox[this.head++] = undefined as unknown as Message
      if (
        message.state === QUEUED &&
        message.resume === undefined &&
        message.caller !== undefined &&
        message.caller.pollUnsafe() !== undefined
      ) {
        // its caller was interrupted between sending and waiting
        this.withdraw(message)
        continue
      }
      if (message.state === QUEUED) {
        this.queued--
        this.kind.depth--
        if (this.head === mailbox.length) {
          this.mailbox = []
          this.head = 0
        } else if (this.head >= 1024 && this.head * 2 >= mailbox.length) {
          this.mailbox = mailbox.slice(this.head)
          this.head = 0
        }
        return message
      }
    }
    if (this.head > 0) {
      this.mailbox = []
      this.head = 0
    }
    return undefined
  }

  schedule(): void {
    this.scheduled = true
    const dispatcher = sharedScheduler(Context.get(this.base, Scheduler.Scheduler)).makeDispatcher()
    dispatcher.scheduleTask(() => {
      this.scheduled = false
      this.drain()
    }, 0)
  }

  /**
   * Handles waiting messages one at a time, until the mailbox is empty or a
   * caller waits for the reply. Without a tracer the handlers run one after
   * the other in one fiber (`drainLoop`): a burst of casts costs one fiber,
   * not one per message. With a tracer each message gets a fiber of its own,
   * started with its span.
   */
  drain(): void {
    if (this.busy || this.down !== undefined || this.queued === 0) return
    this.busy = true
    if (this.tracer === undefined) {
      Effect.runForkWith(this.context)(drainLoop)
      return
    }
    let budget = 1024
    while (true) {
      if (this.queued === 0) {
        this.busy = false
        return
      }
      if (budget-- === 0) {
        // let other fibers run; the rest is handled in the next task
        this.busy = false
        this.schedule()
        return
      }
      const message = this.take()
      if (message === undefined) {
        this.busy = false
        return
      }
      if (!this.run(message)) return // the handler suspended: its exit observer goes on
      if (this.down !== undefined) return this.deliver(message)
      if (message.resume !== undefined) {
        // Wake the caller with the server released: if it calls again at
        // once it takes the fast path (or queues behind what is waiting),
        // instead of running on inside this drain forever.
        this.busy = false
        this.deliver(message)
        if (this.busy || this.down !== undefined) return // someone else drives the server now
        this.busy = true
      }
    }
  }

  /** One step of `drainLoop` (run by `fiber`): the next message's handler, as an effect of the drain fiber. */
  step(fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<void> {
    const message = this.take()
    if (message === undefined || this.down !== undefined) return this.release()
    message.state = RUNNING
    if (message.kind === STOP) {
      this.current = undefined
      this.reply(message, Exit.void)
      this.terminate(message.payload as DownReason, undefined)
      return Effect.void
    }
    this.current = fiber
    this.currentMessage = message
    return Effect.flatMap(Effect.exit(this.handlerEffect(message)), (exit) => {
      // stopped from outside while it ran: its caller was told already
      if (this.down !== undefined) return Effect.void
      this.current = undefined
      this.currentMessage = undefined
      this.settle(message, exit, undefined)
      if (this.down !== undefined) {
        this.deliver(message)
        return Effect.void
      }
      if (message.resume === undefined || message.exit === undefined) return drainLoop
      // a caller waits for this reply: wake it with the server released (as
      // `drain` does: if it calls again at once it takes the fast path), then
      // go on in this fiber if nobody took the server meanwhile
      this.release()
      this.deliver(message)
      if (this.busy || this.down !== undefined || this.queued === 0) return Effect.void
      this.busy = true
      return drainLoop
    })
  }

  private release(): Effect.Effect<void> {
    this.current = undefined
    this.busy = false
    return Effect.void
  }

  /** The effect of a message's handler (a defect if there is none, or if calling it throws). */
  handlerEffect(message: Message): Effect.Effect<unknown, unknown> {
    const handler = this.handlers![message.tag]
    try {
      return (
        handler === undefined
          ? Effect.die(new Error(`${this.name}: no handler for request ${JSON.stringify(message.tag)}`))
          : handler(message.payload, this)
      ) as Effect.Effect<unknown, unknown>
    } catch (defect) {
      return Effect.die(defect)
    }
  }

  // ---- running one message -----------------------------------------------

  /**
   * Runs one message's handler (`busy` is set). Returns true when it ended in
   * this turn, false when it suspended (its exit observer then settles it and
   * goes on with the mailbox).
   */
  run(message: Message): boolean {
    message.state = RUNNING
    if (message.kind === STOP) {
      this.reply(message, Exit.void)
      this.terminate(message.payload as DownReason, undefined)
      return true
    }
    const effect = this.handlerEffect(message)
    let context = this.context
    let span: Tracer.Span | undefined
    if (this.tracer !== undefined) {
      span = this.span(message)
      context = Context.add(context, Tracer.ParentSpan, span)
    }
    const fiber = Effect.runForkWith(context)(effect as Effect.Effect<unknown, unknown>)
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) {
      this.settle(message, exit, span)
      return true
    }
    this.current = fiber
    this.currentMessage = message
    fiber.addObserver((exit) => {
      this.current = undefined
      this.currentMessage = undefined
      if (this.down !== undefined) {
        // stopped from outside while it ran: its caller was told already
        span?.end(this.clockNanos(), exit)
        return
      }
      this.settle(message, exit, span)
      if (this.down !== undefined) return this.deliver(message)
      this.busy = false
      this.deliver(message)
      this.drain()
    })
    return false
  }

  private clockNanos(): bigint {
    return this.spanClock === undefined ? 0n : this.spanClock.currentTimeNanosUnsafe()
  }

  /** The span of one handled message: a child of the server's own span (never the caller's), linked to the caller's. */
  private span(message: Message): Tracer.Span {
    const parent = Context.getOrUndefined(this.base, Tracer.ParentSpan)
    return this.tracer!.span({
      name: `${this.name}.${message.tag}`,
      parent: parent === undefined ? Option.none() : Option.some(parent),
      annotations: Context.empty(),
      links: message.link === undefined ? [] : [{ span: message.link, attributes: {} }],
      startTime: this.clockNanos(),
      kind: message.kind === CALL ? "server" : "consumer",
      root: parent === undefined,
      sampled: parent === undefined ? true : parent.sampled
    })
  }

  /** A handler ended: reply, reply later, or crash. */
  private settle(message: Message, exit: Exit.Exit<unknown, unknown>, span: Tracer.Span | undefined): void {
    if (span !== undefined) span.end(this.clockNanos(), exit)
    if (exit._tag === "Success") {
      if (Deferred.isDeferred(exit.value)) this.replyLater(message, exit.value)
      else this.reply(message, exit)
    } else if (isReply(exit.cause)) {
      if (message.kind === CALL) this.kind.failed("error")
      this.reply(message, exit)
    } else {
      this.terminate({ _tag: "Crashed", cause: exit.cause }, message)
      return
    }
    if (this.stopping !== undefined && this.down === undefined) this.terminate(this.stopping, undefined)
  }

  /** Records the reply; `deliver` hands it to a waiting caller. */
  reply(message: Message, exit: Exit.Exit<unknown, unknown>): void {
    message.state = DONE
    if (message.kind !== CALL) return
    if (message.at >= 0) this.kind.observe(this.now() - message.at)
    message.exit = exit
  }

  /** Resumes the caller waiting for this reply, if it still waits. */
  deliver(message: Message): void {
    const resume = message.resume
    if (resume !== undefined && message.exit !== undefined) {
      message.resume = undefined
      resume(message.exit)
    }
  }

  private replyLater(message: Message, deferred: Deferred.Deferred<unknown, unknown>): void {
    const fiber = Effect.runForkWith(this.context)(Deferred.await(deferred))
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) return this.reply(message, exit)
    const later = (this.later ??= new Map())
    later.set(fiber, message)
    fiber.addObserver((exit) => {
      later.delete(fiber)
      if (this.down !== undefined) return
      this.reply(message, exit)
      this.deliver(message)
    })
  }

  // ---- the end of an incarnation -------------------------------------------

  /**
   * Ends the incarnation with `reason`: every caller still waiting gets
   * `ServerDown` now (`culprit`, the message whose handler crashed, first),
   * the running handler (if the end came from outside) is interrupted, and
   * the owner is told.
   */
  terminate(reason: DownReason, culprit: Message | undefined): void {
    if (this.down !== undefined) return
    this.down = reason
    this.busy = true
    // Collect every request still waiting, then tell the owner first: a
    // supervisor that restarts synchronously has the next incarnation
    // registered before any caller wakes up with ServerDown and calls again.
    const waiting: Array<Message> = []
    if (culprit !== undefined) waiting.push(culprit)
    const current = this.current
    if (current !== undefined) {
      waiting.push(this.currentMessage!)
      current.interruptUnsafe()
    }
    if (this.later !== undefined) {
      const later = this.later
      this.later = undefined
      for (const [fiber, message] of later) {
        waiting.push(message)
        fiber.interruptUnsafe()
      }
    }
    const mailbox = this.mailbox
    for (let i = this.head; i < mailbox.length; i++) {
      const message = mailbox[i]!
      if (message.state === QUEUED) {
        this.queued--
        this.kind.depth--
        waiting.push(message)
      }
    }
    this.mailbox = []
    this.head = 0
    const onDown = this.onDown
    this.onDown = undefined
    if (onDown !== undefined) onDown(reason)
    for (const message of waiting) {
      if (message.kind === STOP) this.reply(message, Exit.void)
      else this.fail(message, reason)
      this.deliver(message)
    }
  }

  private fail(message: Message, reason: DownReason): void {
    if (message.state === DONE || message.state === WITHDRAWN) return
    if (message.kind === CALL) this.kind.failed("down")
    this.reply(message, Exit.fail(this.downError(this.name, message.tag, reason)))
  }

  /** The Scope's finalizer (added after init): ends the incarnation as a shutdown and waits for the running handler. */
  shutdown(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const current = this.current
      const later = this.later
      this.terminate(Shutdown, undefined)
      if (current === undefined && later === undefined) return Effect.void
      const fibers = later === undefined ? [] : [...later.keys()]
      if (current !== undefined) fibers.push(current)
      return Fiber.awaitAll(fibers)
    })
  }

  /** The Scope's last finalizer: the incarnation is gone, with everything it acquired. */
  markClosed(): void {
    this.closed = true
    if (this.down === undefined) this.terminate(Shutdown, undefined)
    const waiters = this.onClosed
    this.onClosed = undefined
    if (waiters !== undefined) for (const wake of waiters) wake()
  }

  /** Waits until the incarnation's Scope has closed. */
  awaitClosed(): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (this.closed) return resume(Effect.void)
      const wake = () => resume(Effect.void)
      ;(this.onClosed ??= []).push(wake)
      return Effect.sync(() => {
        const i = this.onClosed?.indexOf(wake) ?? -1
        if (i >= 0) this.onClosed!.splice(i, 1)
      })
    })
  }

  /** init finished: take the messages sent meanwhile, or stop if init asked to. */
  ready(handlers: Record<string, AnyHandler>): void {
    this.handlers = handlers
    this.busy = false
    if (this.stopping !== undefined) this.terminate(this.stopping, undefined)
    else if (this.queued > 0) this.schedule()
  }

  pipe() {
    return pipeArguments(this, arguments)
  }
  toJSON() {
    return { _id: "ServerRef", name: this.name, id: this.id, down: this.down?._tag, mailbox: this.queued }
  }
  toString() {
    return `ServerRef(${this.name}#${this.id})`
  }
  [NodeInspectSymbol]() {
    return this.toJSON()
  }
}

Object.defineProperty(ServerImpl.prototype, RefTypeId, { value: RefTypeId })

/**
 * The drain fiber's loop, shared by every server: it finds its server as
 * `CurrentServer` in the fiber's context (the server's own).
 */
const drainLoop: Effect.Effect<void> = Effect.withFiber((fiber) =>
  (Context.getUnsafe(fiber.context, currentServerKey!) as unknown as ServerImpl).step(fiber)
)

/** @internal */
export const CALL_KIND = CALL
/** @internal */
export const CAST_KIND = CAST
/** @internal */
export const STOP_KIND = STOP
