/**
 * The engine of `DynamicSupervisor`: a table of children keyed by pid on the
 * kernel's shell and child (src/internal). A child is one `Child` object; a
 * child that restarts keeps a {@link Record} (its restart count, backoff
 * state and restart state) that moves from incarnation to incarnation.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { pipeArguments } from "effect/Pipeable"
import * as Tracer from "effect/Tracer"
import type { RestartIntensityExceeded } from "../../Errors.ts"
import * as child from "../../internal/child.ts"
import * as Inspect from "../../internal/inspect.ts"
import { type BackoffState, newBackoffState, type RestartPolicy } from "../../internal/policy.ts"
import { chunked, isTracing, RestartPacer, Shell } from "../../internal/shell.ts"
import type { ChildSpec } from "../ChildSpec.ts"
import { isStartFailure } from "../../internal/metrics.ts"

/** @internal */
export const TypeId = "~effect-otp/DynamicSupervisor"

/**
 * Where a child that exited by itself is in its restart, as a tagged state:
 * `Up` (running), `Waiting` (its backoff delay runs in `timer`), `Starting`
 * (the incarnation `next` runs its start).
 *
 * @internal
 */
export type RestartState =
  | { readonly _tag: "Up" }
  | { readonly _tag: "Waiting"; timer: Fiber.Fiber<unknown, unknown> | undefined }
  | { readonly _tag: "Starting"; readonly next: child.Child }

const Up: RestartState = { _tag: "Up" }

/**
 * What a child keeps across incarnations, allocated when first needed (its
 * first restart, or at start when a backoff is configured).
 *
 * @internal
 */
export interface Record {
  /** the incarnation the table holds (the running one, or while restarting the one that exited) */
  current: child.Child
  restarts: number
  state: RestartState
  backoff: BackoffState | undefined
  /** the span of the restart in flight, when tracing */
  span: Tracer.Span | undefined
}

const recordOf = (c: child.Child): Record | undefined => child.linkOf<Record>(c)

let restartDepth = 0

/** @internal */
export class DynamicEngine implements child.Host, Inspect.Inspector {
  readonly shell: Shell
  /** every child by the pid of its current incarnation, including those starting */
  readonly children = new Map<number, child.Child>()
  /** children in the table whose first start has not finished */
  starting = 0
  workers = 0
  supervisors = 0
  readonly pacer = new RestartPacer()
  /** the children a stop waits for, while the supervisor stops */
  stopGroups: child.StopGroups | undefined = undefined
  /** the inspector: the engine itself */
  readonly [Inspect.TypeId]: Inspect.Inspector = this

  constructor(
    readonly kind: Inspect.InspectableKind,
    readonly name: string,
    readonly maxChildren: number,
    readonly extraArguments: unknown,
    policy: RestartPolicy,
    context: Context.Context<never>
  ) {
    this.shell = new Shell(kind, name, context, policy)
  }

  pipe() {
    return pipeArguments(this, arguments)
  }
  toJSON() {
    return { _id: this.kind, name: this.name, state: this.shell.state }
  }

  // ---- starting ------------------------------------------------------------------

  /** Begins a first incarnation for a caller; undefined when refused. */
  spawn(spec: ChildSpec<any, unknown, unknown>, caller: Context.Context<never>): child.Child {
    const c = child.create(this.name, this, spec)
    this.children.set(c.pid, c)
    this.starting++
    if (this.shell.policy.backoff !== undefined) {
      child.setLink(c, {
        current: c,
        restarts: 0,
        state: Up,
        backoff: newBackoffState(this.shell.now()),
        span: undefined
      } satisfies Record)
    }
    const base = this.shell.childBase(caller)
    if (isTracing(caller)) {
      const origin = Context.getOption(caller, Tracer.ParentSpan)
      child.begin(c, base, true, this.traced(c, origin._tag === "Some" ? origin.value : undefined, 1, 0))
    } else {
      child.begin(c, base, true)
    }
    return c
  }

  /** The incarnation's effect as its own root span, linked to the span that started it. */
  traced(c: child.Child, link: Tracer.AnySpan | undefined, incarnation: number, attempt: number) {
    return this.shell.tracedRun(
      child.mainOf(child.specOf(c), restartDepth === 0 || incarnation === 1),
      link,
      incarnation === 1 ? "started-by" : "restarted-by",
      { id: c.id, pid: c.pid, incarnation, attempt }
    )
  }

  // ---- child.Host ------------------------------------------------------------------

  childStarted(c: child.Child): void {
    const record = recordOf(c)
    if (record !== undefined && record.current !== c) {
      // a restart succeeded: the table moves from the old pid to the new one
      if (record.state._tag !== "Starting" || record.state.next !== c || this.shell.state !== "open") return
      const previous = record.current
      this.children.delete(previous.pid)
      this.children.set(c.pid, c)
      record.current = c
      record.state = Up
      record.restarts++
      child.setStartedAt(c, this.shell.startOffset())
      if (record.backoff !== undefined) record.backoff.upSince = this.shell.now()
      this.shell.addActive(1)
      this.shell.m.restarts.modifyUnsafe(1, this.shell.context)
      if (record.span !== undefined) {
        this.shell.endRestartSpan(record.span, c.pid)
        record.span = undefined
      }
      this.shell.emitRestarted(c, previous.pid, record.restarts)
      return
    }
    // a first start, from startChild
    this.starting--
    if (this.shell.state !== "open") {
      // the supervisor is stopping and stops this child too (it is in the table)
      child.settleStart(c, Effect.fail(this.shell.stoppedError()))
      return
    }
    if (child.specOf(c).type === "supervisor") this.supervisors++
    else this.workers++
    if (record?.backoff !== undefined) record.backoff.upSince = this.shell.now()
    child.setStartedAt(c, this.shell.startOffset())
    this.shell.addActive(1)
    child.settleStart(c, Effect.void)
    this.shell.emitStarted(c)
  }

  childExited(c: child.Child, exit: Exit.Exit<unknown, unknown>): void {
    if (this.stopGroups !== undefined) this.stopGroups.exited(c)
    const record = recordOf(c)
    if (!child.started(c)) {
      if (isStartFailure(exit)) this.shell.m.startFailures.modifyUnsafe(1, this.shell.context)
      if (record === undefined || record.current === c) {
        // startChild's start failed: tell the caller; nothing stays in the table
        if (this.children.get(c.pid) === c) {
          this.children.delete(c.pid)
          this.starting--
        }
        const cause = child.exitCause(exit)
        child.settleStart(
          c,
          this.shell.state !== "open" && child.exitKind(exit) === "shutdown"
            ? Effect.fail(this.shell.stoppedError())
            : Effect.failCause(cause)
        )
        return
      }
      // a restart attempt failed: stay "restarting" under the old pid and retry
      if (record.state._tag !== "Starting" || record.state.next !== c) return
      if (
        child.isStopping(c) ||
        this.shell.state !== "open" ||
        this.children.get(record.current.pid) !== record.current
      ) {
        return
      }
      this.shell.log("Error", `${child.describe(record.current)} failed to restart`, child.exitCause(exit), c)
      this.scheduleRestart(record)
      return
    }
    if (child.isStopping(c) || this.shell.state !== "open") {
      // stopped by its owner (terminateChild, which already took it out of the table, or the
      // supervisor stopping): not a crash, but still an Exited event
      this.shell.emitStopped(c, exit)
      if (this.shell.state === "open" && this.children.get(c.pid) === c) this.remove(c)
      return
    }
    if (this.children.get(c.pid) !== c) return // replaced already
    const kind = child.exitKind(exit)
    if (kind === "abnormal") {
      this.shell.m.crashes.modifyUnsafe(1, this.shell.context)
      this.shell.log("Error", `${child.describe(c)} crashed`, child.exitCause(exit), c)
    }
    this.shell.emitExited(c, exit)
    if (child.shouldRestart(child.specOf(c).restart, kind)) {
      let r = record
      if (r === undefined) {
        r = { current: c, restarts: 0, state: Up, backoff: undefined, span: undefined }
        child.setLink(c, r)
      }
      this.scheduleRestart(r)
    } else this.remove(c)
  }

  /** Drops a started child from the table and the counts. */
  remove(c: child.Child): void {
    if (!this.children.delete(c.pid)) return
    const record = recordOf(c)
    if (record === undefined || record.state._tag === "Up") this.shell.addActive(-1)
    if (child.specOf(c).type === "supervisor") this.supervisors--
    else this.workers--
  }

  // ---- restarts ------------------------------------------------------------------------

  scheduleRestart(record: Record): void {
    const shell = this.shell
    if (!shell.restarts.allow()) return this.giveUp(record.current, "intensity")
    if (record.state._tag === "Up") shell.addActive(-1)
    if (shell.tracing && record.span === undefined) {
      record.span = shell.restartSpan(record.current.id, record.current.pid, record.restarts + 1)
    }
    if (shell.policy.backoff === undefined) {
      const c = record.current
      // a placeholder state while the restart may wait for the pacer
      const waiting: RestartState & { _tag: "Waiting" } = { _tag: "Waiting", timer: undefined }
      record.state = waiting
      return this.pacer.run(() => {
        if (record.state === waiting && shell.state === "open" && this.children.get(c.pid) === c) this.spawnNext(record)
      })
    }
    const backoff = (record.backoff ??= newBackoffState(shell.now()))
    const waiting: RestartState & { _tag: "Waiting" } = { _tag: "Waiting", timer: undefined }
    record.state = waiting
    const timer = Effect.runForkWith(shell.context)(
      Effect.flatMap(shell.restarts.nextDelay(backoff), (millis) => {
        if (record.state !== waiting) return Effect.void
        if (millis === undefined) return Effect.sync(() => this.giveUp(record.current, "backoff"))
        return Effect.andThen(
          Effect.sleep(millis),
          Effect.sync(() => {
            if (
              record.state === waiting &&
              shell.state === "open" &&
              this.children.get(record.current.pid) === record.current
            ) {
              this.spawnNext(record)
            }
          })
        )
      })
    )
    if (record.state === waiting) waiting.timer = timer
  }

  spawnNext(record: Record): void {
    const previous = record.current
    const c = child.create(this.name, this, child.specOf(previous))
    child.setLink(c, record)
    record.state = { _tag: "Starting", next: c }
    // Restart at once, on this stack, unless this is itself inside a restart
    // (a child that crashes during its own start): then go through the
    // scheduler, so a crash loop cannot grow the JavaScript stack.
    const immediate = restartDepth === 0
    restartDepth++
    try {
      const base = child.contextOf(previous)
      child.begin(
        c,
        base,
        immediate,
        record.span === undefined ? undefined : this.traced(c, record.span, record.restarts + 2, backoffAttempt(record))
      )
    } finally {
      restartDepth--
    }
  }

  giveUp(c: child.Child, reason: "intensity" | "backoff"): void {
    const error = this.shell.giveUp(c, reason)
    const record = recordOf(c)
    if (record?.span !== undefined) {
      this.shell.endRestartSpan(record.span, undefined, Exit.fail("gave up"))
      record.span = undefined
    }
    this.remove(c)
    Effect.runForkWith(this.shell.context)(this.shutdown(error))
  }

  // ---- stopping ---------------------------------------------------------------------------

  /**
   * Starts stopping one child (or cancels its restart); returns what to wait
   * for, or undefined when it stopped on the spot.
   */
  stopOne(c: child.Child): Effect.Effect<void> | undefined {
    const incarnation = this.incarnationToStop(c)
    return incarnation === undefined ? undefined : this.stopIncarnation(incarnation)
  }

  stopIncarnation(c: child.Child): Effect.Effect<void> | undefined {
    if (child.interruptUnsafe(c)) return undefined
    const policy = child.specOf(c).shutdown
    const outcome = child.stop(c, policy)
    if (outcome === child.stoppedNow) return undefined
    return Effect.map(outcome, (o) => {
      if (o === "abandoned") this.shell.abandoned(c, policy)
    })
  }

  /** The incarnation to stop for a child in the table (cancelling a pending restart); undefined if none. */
  incarnationToStop(c: child.Child): child.Child | undefined {
    const record = recordOf(c)
    if (record !== undefined && record.current === c && record.state._tag !== "Up") {
      const state = record.state
      record.state = Up
      if (record.span !== undefined) {
        this.shell.endRestartSpan(record.span, undefined)
        record.span = undefined
      }
      if (state._tag === "Waiting") {
        state.timer?.interruptUnsafe()
        return undefined
      }
      return state.next
    }
    return c
  }

  /**
   * Stops every child concurrently (each by its own policy), asking them all
   * before waiting for any, in slices that yield to the event loop, and waits
   * for them without a fiber or timer per child; then completes `done`.
   */
  shutdown(reason: "shutdown" | RestartIntensityExceeded): Effect.Effect<void> {
    const shell = this.shell
    if (!shell.beginStop(reason)) return shell.awaitStopped
    const groups = new child.StopGroups()
    this.stopGroups = groups
    return Effect.uninterruptible(
      Effect.flatMap(
        chunked(this.children.values(), (c) => {
          const inc = this.incarnationToStop(c)
          if (inc !== undefined && !child.interruptUnsafe(inc)) groups.add(inc)
          return undefined
        }),
        () =>
          Effect.map(
            groups.wait((c) => shell.abandoned(c, child.specOf(c).shutdown)),
            () => {
              // callers still waiting for a start (one stuck past its shutdown policy) end now
              for (const c of this.children.values()) {
                if (!child.started(c) && child.phase(c) !== "Exited")
                  child.settleStart(c, Effect.fail(shell.stoppedError()))
              }
              this.children.clear()
              this.starting = 0
              this.workers = 0
              this.supervisors = 0
              shell.endStop()
            }
          )
      )
    )
  }

  // ---- reading ---------------------------------------------------------------------------------

  counts(): { specs: number; active: number; supervisors: number; workers: number } {
    return {
      specs: this.children.size - this.starting,
      active: this.shell.active,
      supervisors: this.supervisors,
      workers: this.workers
    }
  }

  /** Calls `f` with every started child (the table's incarnation) and its record. */
  forEachChild(f: (c: child.Child, record: Record | undefined) => void): void {
    for (const c of this.children.values()) {
      if (child.started(c)) f(c, recordOf(c))
    }
  }

  // ---- Inspect.Inspector ---------------------------------------------------------------------------

  snapshot(): Inspect.NodeSnapshot {
    const children: Array<Inspect.NodeSnapshot> = []
    this.forEachChild((c, record) => {
      const restarting = record !== undefined && record.state._tag !== "Up"
      children.push(
        Inspect.childNode(
          {
            kind: "Worker",
            type: c.type,
            id: c.id,
            pid: restarting ? undefined : c.pid,
            state: restarting ? "restarting" : "running",
            restarts: record?.restarts ?? 0,
            startedAt: restarting ? undefined : this.shell.startedAt(child.startedAtOffset(c))
          },
          restarting ? undefined : c.handle
        )
      )
    })
    return {
      kind: this.kind,
      type: "supervisor",
      name: this.name,
      id: this.name,
      state: shellNodeState(this.shell),
      restarts: 0,
      counts: this.counts(),
      children
    }
  }

  subscribe(listener: (event: Inspect.InspectEvent) => void): () => void {
    return Inspect.addListener(this.shell, listener)
  }

  childInspectors(): ReadonlyArray<Inspect.Inspector> {
    const out: Array<Inspect.Inspector> = []
    this.forEachChild((c, record) => {
      if (record !== undefined && record.state._tag !== "Up") return
      const i = Inspect.inspectorOf(c.handle)
      if (i !== undefined) out.push(i)
    })
    return out
  }
}
Object.defineProperty(DynamicEngine.prototype, TypeId, { value: { _X: (x: unknown) => x } })

const backoffAttempt = (record: Record): number => record.backoff?.attempt ?? record.restarts + 1

/** The node state of a supervisor from its shell. @internal */
export const shellNodeState = (shell: Shell): Inspect.NodeState =>
  shell.state === "open"
    ? "running"
    : shell.state === "stopping"
      ? "stopping"
      : shell.stopReason === "shutdown"
        ? "stopped"
        : "failed"
