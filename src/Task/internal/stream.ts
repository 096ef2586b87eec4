/**
 * The `asyncStream` engine: one `Run` per enumeration of the stream.
 *
 * The consumer's pulls drive everything: each pull starts tasks while fewer
 * than `maxConcurrency` run (and, when ordered, while fewer than
 * `maxConcurrency + maxBuffered` items are started but not yet emitted), then
 * emits every result that is ready, in one chunk. A task that finishes
 * synchronously never waits for a wake-up, so trivial items go through in
 * large chunks at about the cost of forking their fiber.
 *
 * Each task is a light child of the supervisor (counted, limited by
 * `maxChildren`, stopped with it) with no Scope of its own: a Scope per task
 * costs as much again as the fiber (see the module docs of TaskSupervisor).
 *
 * Timeouts: every task's deadline is its start time plus the same timeout, so
 * deadlines grow in start order; one watchdog fiber sleeps (on Effect's
 * Clock) until the oldest running task's deadline — one timer per stream,
 * not one per task.
 *
 * @internal
 */
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Pull from "effect/Pull"
import type { ShutdownPolicy } from "../../Supervisor/ChildSpec.ts"
import type * as DynamicSupervisor from "../../Supervisor/DynamicSupervisor.ts"
import * as child from "../../internal/child.ts"
import { monotonicMillis } from "../../internal/effectInternals.ts"
import type { SupervisorStopped } from "../../Errors.ts"
import { TaskExited, TaskTimeout } from "./errors.ts"
import { type Member, stopTask, type SupervisorImpl } from "./task.ts"

/** @internal */
export interface Config {
  readonly maxConcurrency: number
  readonly ordered: boolean
  readonly maxBuffered: number
  /** per task from its start, ms; Infinity for none */
  readonly timeout: number
  readonly killOnTimeout: boolean
  readonly zipInputOnExit: boolean
  readonly shutdown: ShutdownPolicy
  /** asyncStream: a task failure fails the stream; asyncStreamNolink: it is emitted */
  readonly linked: boolean
}

const RUNNING = 0
const DONE = 1
const TIMED_OUT = 2

/**
 * The consumer is resumed through the scheduler after the tasks queued in the
 * same batch (priority 1 runs after 0), so one wake-up collects every result
 * of the batch instead of one.
 */
const wakeUp = Effect.yieldNowWith(1)

/** The most results one pull emits. */
const CHUNK = 4096

interface Rec {
  readonly index: number
  readonly input: unknown
  readonly pid: number
  readonly deadline: number
  fiber: Fiber.Fiber<unknown, unknown>
  state: number
}

/** The input: a synchronous iterator or an upstream pull. @internal */
export type Input =
  | { readonly _tag: "Iterator"; readonly iterator: Iterator<unknown> }
  | { readonly _tag: "Pull"; readonly pull: Pull.Pull<Arr.NonEmptyReadonlyArray<unknown>, unknown, void> }

type Out = Exit.Exit<unknown, unknown>

/** @internal */
export class Run implements Member {
  running = 0
  nextIndex = 0
  emitIndex = 0
  readonly cap: number
  readonly ring: Array<Out | undefined>
  readonly queue: Array<Out> = []
  queueHead = 0
  readonly fifo: Array<Rec> = []
  fifoHead = 0
  failure: Cause.Cause<unknown> | undefined = undefined
  closed = false
  waiter: (() => void) | undefined = undefined
  /** counts wake-ups, so a pull that decided to wait can tell it missed one */
  events = 0
  refilling = false
  /** fails with the stream's failure: raced against a slow input */
  failed: Deferred.Deferred<never, unknown> | undefined = undefined
  watchdog: Fiber.Fiber<unknown, unknown> | undefined = undefined
  watchWaiter: (() => void) | undefined = undefined
  inputBuf: ReadonlyArray<unknown> = []
  inputPos = 0
  inputDone = false
  readonly onExit: (rec: Rec) => (exit: Exit.Exit<unknown, unknown>) => void
  /** monotonic milliseconds: deadlines ignore wall-clock steps */
  readonly now: () => number

  constructor(
    readonly sup: SupervisorImpl,
    readonly f: (a: unknown) => Effect.Effect<unknown, unknown>,
    readonly config: Config,
    readonly input: Input,
    readonly context: Context.Context<never>,
    readonly clock: Clock.Clock
  ) {
    // ordered: the slow head plus at most maxBuffered finished results behind it
    this.cap = config.ordered ? config.maxBuffered + 1 : config.maxConcurrency + config.maxBuffered
    this.ring = config.ordered ? new Array(this.cap) : []
    this.onExit = (rec) => (exit) => this.taskExited(rec, exit)
    this.now = monotonicMillis(clock)
    sup.members.add(this)
  }

  // ---- tasks --------------------------------------------------------------------

  canStart(): boolean {
    return (
      this.running < this.config.maxConcurrency &&
      (this.config.ordered
        ? this.nextIndex - this.emitIndex < this.cap
        : this.running + this.queue.length - this.queueHead < this.cap) &&
      this.failure === undefined &&
      !this.closed
    )
  }

  /**
   * Starts tasks from the input at hand while there is room. Called by the
   * pull and by every task that ends (so a freed slot is refilled without
   * waiting for the consumer); the guard turns tasks that end synchronously
   * into iterations, not recursion.
   */
  refill(limit: number): boolean {
    if (this.refilling) return false
    this.refilling = true
    let started = false
    try {
      while (this.nextIndex < limit && this.canStart()) {
        if (this.inputPos < this.inputBuf.length) {
          this.start(this.inputBuf[this.inputPos++])
        } else if (this.input._tag === "Iterator" && !this.inputDone) {
          let next: IteratorResult<unknown>
          try {
            next = this.input.iterator.next()
          } catch (defect) {
            this.fail(Cause.die(defect))
            break
          }
          if (next.done) {
            this.inputDone = true
            break
          }
          this.start(next.value)
        } else break
        started = true
      }
    } finally {
      this.refilling = false
    }
    return started
  }

  start(input: unknown): void {
    const refused = this.sup.refuse()
    if (refused !== undefined) {
      this.fail(Cause.fail(refused))
      return
    }
    const index = this.nextIndex++
    this.sup.light++
    let fiber: Fiber.Fiber<unknown, unknown>
    try {
      fiber = Effect.runForkWith(this.context)(this.f(input))
    } catch (defect) {
      // `f` itself threw while building its effect
      fiber = Effect.runForkWith(this.context)(Effect.die(defect))
    }
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) {
      // ended synchronously: no record, no pid, no deadline, no observer
      this.sup.light--
      this.settle(index, input, exit)
      return
    }
    this.running++
    const rec: Rec = {
      index,
      input,
      pid: child.newPid(),
      // the synchronous prefix has run: under a real clock that is microseconds, under TestClock nothing
      deadline: this.config.timeout === Infinity ? Infinity : this.now() + this.config.timeout,
      fiber,
      state: RUNNING
    }
    fiber.addObserver(this.onExit(rec))
    this.fifo.push(rec)
    // finished records are dropped here too, not only by the watchdog (there is none without a timeout)
    if (this.fifo.length - this.fifoHead > 2 * this.config.maxConcurrency + 64) this.oldest()
    if (rec.deadline !== Infinity) {
      if (this.watchdog === undefined) this.startWatchdog()
      else if (this.watchWaiter !== undefined) {
        const w = this.watchWaiter
        this.watchWaiter = undefined
        w()
      }
    }
  }

  /** a task's result, as the stream will emit it (or its failure, for linked streams) */
  settle(index: number, input: unknown, exit: Exit.Exit<unknown, unknown>): void {
    if (this.config.linked && exit._tag === "Failure") this.fail(exit.cause)
    else this.store(index, input, exit)
  }

  taskExited(rec: Rec, exit: Exit.Exit<unknown, unknown>): void {
    this.sup.light--
    if (rec.state !== RUNNING) return
    rec.state = DONE
    this.running--
    if (this.closed) return
    this.settle(rec.index, rec.input, exit)
    this.refill(Infinity)
    this.wake()
  }

  store(index: number, input: unknown, exit: Out): void {
    const out =
      this.config.zipInputOnExit && exit._tag === "Failure"
        ? Exit.fail(new TaskExited({ input, cause: exit.cause }))
        : exit
    if (this.config.ordered) this.ring[index % this.cap] = out
    else this.queue.push(out)
  }

  fail(cause: Cause.Cause<unknown>): void {
    if (this.failure === undefined) {
      this.failure = cause
      if (this.failed !== undefined) Deferred.doneUnsafe(this.failed, Exit.failCause(cause))
    }
    this.wake()
  }

  wake(): void {
    this.events++
    const w = this.waiter
    if (w !== undefined) {
      this.waiter = undefined
      w()
    }
  }

  // ---- timeouts -----------------------------------------------------------------

  timedOut(rec: Rec): void {
    rec.state = TIMED_OUT
    this.running--
    const error = new TaskTimeout({ pid: rec.pid, timeout: this.config.timeout })
    if (this.config.killOnTimeout) this.store(rec.index, rec.input, Exit.fail(error))
    else this.fail(Cause.fail(error))
    rec.fiber.interruptUnsafe()
    this.refill(Infinity)
    this.wake()
  }

  /** the oldest running task, dropping finished ones from the front (and compacting) */
  oldest(): Rec | undefined {
    const fifo = this.fifo
    while (this.fifoHead < fifo.length && fifo[this.fifoHead]!.state !== RUNNING) this.fifoHead++
    if (this.fifoHead > 1024 && this.fifoHead * 2 > fifo.length) {
      fifo.splice(0, this.fifoHead)
      this.fifoHead = 0
    } else if (fifo.length - this.fifoHead > 4 * this.running + 1024) {
      // finished tasks pile up behind a slow one (unordered): keep only the running
      const live = fifo.filter((r, i) => i >= this.fifoHead && r.state === RUNNING)
      fifo.length = 0
      fifo.push(...live)
      this.fifoHead = 0
    }
    return fifo[this.fifoHead]
  }

  startWatchdog(): void {
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      if (this.closed) return Effect.void
      const rec = this.oldest()
      if (rec === undefined) {
        return Effect.andThen(
          Effect.callback<void>((resume) => {
            // a task may have started while this fiber yielded on its way here
            if (this.oldest() !== undefined) return resume(Effect.void)
            this.watchWaiter = () => resume(Effect.void)
          }),
          loop
        )
      }
      const now = this.now()
      if (now >= rec.deadline) {
        this.timedOut(rec)
        return loop
      }
      return Effect.andThen(this.clock.sleep(Duration.millis(rec.deadline - now)), loop)
    })
    this.watchdog = Effect.runForkWith(this.context)(loop)
  }

  // ---- the pull -------------------------------------------------------------------

  /** moves every result that may be emitted now into `out` */
  collect(out: Array<Out>): void {
    if (this.config.ordered) {
      const ring = this.ring
      const cap = this.cap
      while (out.length < CHUNK) {
        const slot = this.emitIndex % cap
        const r = ring[slot]
        if (r === undefined) return
        ring[slot] = undefined
        this.emitIndex++
        out.push(r)
      }
    } else {
      const q = this.queue
      while (this.queueHead < q.length && out.length < CHUNK) out.push(q[this.queueHead++]!)
      if (this.queueHead === q.length) {
        q.length = 0
        this.queueHead = 0
      }
    }
  }

  pending(): boolean {
    return this.config.ordered
      ? this.emitIndex < this.nextIndex
      : this.running > 0 || this.queueHead < this.queue.length
  }

  readonly pull: Pull.Pull<Arr.NonEmptyReadonlyArray<Out>, unknown, void> = Effect.suspend(() => this.step())

  step(): Effect.Effect<Arr.NonEmptyReadonlyArray<Out>, unknown> {
    const next = this.advance()
    // the tasks gauge follows the stream once per pull, not once per task
    this.sup.syncGauge()
    return next
  }

  advance(): Effect.Effect<Arr.NonEmptyReadonlyArray<Out>, unknown> {
    const out: Array<Out> = []
    while (true) {
      this.collect(out)
      // in one pull, start at most what one chunk can hold
      const started = out.length < CHUNK && this.refill(this.nextIndex + CHUNK - out.length)
      if (this.failure !== undefined) return Effect.failCause(this.failure)
      if (!started) break
    }
    this.collect(out)
    if (out.length > 0) return Effect.succeed(out as unknown as Arr.NonEmptyReadonlyArray<Out>)
    const inputEmpty = this.inputPos >= this.inputBuf.length
    if (inputEmpty && this.input._tag === "Pull" && !this.inputDone && this.canStart()) {
      const fetch = this.fetch(this.input.pull)
      // while tasks run, a failure (a linked task's, a timeout's) must not wait for a slow input
      const guarded =
        this.running > 0 ? Effect.raceFirst(fetch, Deferred.await((this.failed ??= Deferred.makeUnsafe()))) : fetch
      return Effect.flatMap(guarded, () => this.step())
    }
    if (inputEmpty && this.inputDone && !this.pending()) return Cause.done()
    const seen = this.events
    return Effect.flatMap(
      Effect.callback<void>((resume) => {
        // the fiber may have yielded between deciding to wait and getting here
        if (this.events !== seen) return resume(Effect.void)
        // resumed through the scheduler, not inside the finishing task's exit observers
        this.waiter = () => resume(wakeUp)
        return Effect.sync(() => {
          this.waiter = undefined
        })
      }),
      () => this.step()
    )
  }

  fetch(pull: Pull.Pull<Arr.NonEmptyReadonlyArray<unknown>, unknown, void>): Effect.Effect<void, unknown> {
    return Effect.matchCauseEffect(pull, {
      onSuccess: (chunk) => {
        this.inputBuf = chunk
        this.inputPos = 0
        return Effect.void
      },
      onFailure: (cause) => {
        if (Pull.isDoneCause(cause)) {
          this.inputDone = true
          return Effect.void
        }
        return Effect.failCause(cause)
      }
    })
  }

  // ---- stopping -------------------------------------------------------------------

  /** the stream ended (done, failed, halted early or interrupted): stop every task it started */
  close(): Effect.Effect<void> {
    if (this.closed) return Effect.void
    this.closed = true
    this.sup.members.delete(this)
    this.watchdog?.interruptUnsafe()
    const stops: Array<Effect.Effect<unknown>> = []
    for (let i = this.fifoHead; i < this.fifo.length; i++) {
      const rec = this.fifo[i]!
      if (rec.fiber.pollUnsafe() === undefined) stops.push(stopTask(this.sup, rec.pid, rec.fiber, this.config.shutdown))
    }
    this.fifo.length = 0
    this.ring.length = 0
    this.queue.length = 0
    const synced = Effect.sync(() => this.sup.syncGauge())
    return stops.length === 0
      ? synced
      : Effect.andThen(Effect.all(stops, { concurrency: "unbounded", discard: true }), synced)
  }

  stopAll(reason: SupervisorStopped): Effect.Effect<void> {
    this.fail(Cause.fail(reason))
    return this.close()
  }

  entries(out: Array<DynamicSupervisor.ChildInfo>): void {
    for (let i = this.fifoHead; i < this.fifo.length; i++) {
      const rec = this.fifo[i]!
      if (rec.fiber.pollUnsafe() === undefined) {
        out.push({
          pid: rec.pid,
          id: undefined,
          child: { pid: rec.pid, id: undefined, type: "worker", handle: undefined },
          type: "worker",
          restarts: 0
        })
      }
    }
  }
}
