/**
 * The child lifecycle every supervisor shares: one fiber with its own Scope
 * per incarnation. `start` runs first in that Scope, then `run`; when the
 * fiber ends its Scope is closed *inside the fiber*, so by the time a
 * supervisor observes the exit every resource of that incarnation has been
 * released (a restarted incarnation can never see its predecessor's
 * registry names or connections).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import type { ChildSpec, ChildType, ShutdownPolicy } from "../ChildSpec.ts"

/** @internal */
export interface Host {
  /** called synchronously inside the child's fiber once `start` succeeded */
  readonly childStarted: (inc: Incarnation) => void
  /** called when the child's fiber ended (its Scope already closed) */
  readonly childExited: (inc: Incarnation, exit: Exit.Exit<unknown, unknown>) => void
}

let nextPid = 0

/** A fresh pid, unique among every child and task in this process. @internal */
export const newPid = (): number => ++nextPid

/**
 * One incarnation of a child. It is also the public `Child<A>` value that
 * `startChild` returns: `pid` identifies this incarnation, `handle` is what
 * its `start` produced.
 *
 * @internal
 */
export class Incarnation<A = any> {
  readonly pid: number
  handle: A = undefined as A
  fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** `start` finished successfully */
  started = false
  /** its owner asked it to stop: its exit is not a crash */
  stopping = false
  /** resumes a caller waiting in `awaitStart` */
  waiter: ((effect: Effect.Effect<void, unknown>) => void) | undefined = undefined
  /** how start ended, kept for a caller that was not waiting yet */
  startResult: Effect.Effect<void, unknown> | undefined = undefined
  /** the incarnation's Scope, kept while it may still need closing */
  scope: Scope.Closeable | undefined = undefined
  /** body-less child whose fiber ended after start: it lives as its Scope alone */
  detached = false
  /** host-specific bookkeeping */
  record: any = undefined

  constructor(
    readonly spec: ChildSpec<A, unknown, unknown>,
    readonly context: Context.Context<never>,
    readonly host: Host
  ) {
    this.pid = newPid()
  }
  get id(): string | undefined {
    return this.spec.id
  }
  get type(): ChildType {
    return this.spec.type
  }
  toJSON(): unknown {
    return { _id: "Child", pid: this.pid, id: this.spec.id, type: this.spec.type }
  }
}

const onStarted = (inc: Incarnation) => (handle: unknown) => {
  inc.handle = handle
  inc.started = true
  inc.host.childStarted(inc)
  const run = inc.spec.run
  return run === undefined ? parkOrDetach(inc) : run(handle)
}

/**
 * A child without a body only holds what `start` acquired. If `start` left no
 * fiber of its own running (no `forkChild`), the incarnation needs no fiber
 * either: it ends here and the child lives on as its Scope alone, which
 * halves its memory (measured in bench/dynamic-supervisor.bench.ts). If start
 * did fork children, the fiber stays parked so they keep running.
 */
const parkOrDetach = (inc: Incarnation) =>
  Effect.withFiber((fiber) => {
    if (hasChildren(fiber)) return Effect.never
    inc.detached = true
    return Effect.void
  })

// FiberImpl keeps the fibers it forked in `_children`; there is no public reader
const hasChildren = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  const children = (fiber as unknown as { readonly _children?: ReadonlySet<unknown> })._children
  return children !== undefined && children.size > 0
}

/**
 * Creates an incarnation of `spec` without starting it, so its owner can
 * attach bookkeeping before `start` runs (it may run synchronously).
 *
 * @internal
 */
export const create = <A>(
  host: Host,
  spec: ChildSpec<A, unknown, unknown>,
  context: Context.Context<never>
): Incarnation<A> => new Incarnation<A>(spec, context, host)

/**
 * Forks the incarnation's fiber. With `immediate`, `start` begins
 * synchronously in the caller's tick (as FiberMap.run does); otherwise it is
 * scheduled, which keeps crash-restart loops off the JavaScript stack.
 *
 * @internal
 */
export const begin = (inc: Incarnation, immediate: boolean): void => {
  const scope = Scope.makeUnsafe()
  inc.scope = scope
  const main = Effect.flatMap(inc.spec.start, onStarted(inc))
  const body = Effect.onExit(immediate ? main : Effect.andThen(Effect.yieldNow, main), (exit) =>
    inc.detached && exit._tag === "Success" ? Effect.void : Scope.close(scope, exit)
  )
  const fiber = Effect.runForkWith(Context.add(inc.context, Scope.Scope, scope))(
    body as Effect.Effect<unknown, unknown>
  )
  inc.fiber = fiber
  fiber.addObserver((exit) => {
    if (inc.detached && exit._tag === "Success") {
      inc.fiber = undefined // lives on as its Scope; `stop` closes it
      return
    }
    inc.host.childExited(inc, exit)
  })
}

/**
 * Tells whoever waits in {@link awaitStart} how start ended, or keeps the
 * answer for a caller that has not started waiting yet (the scheduler may run
 * the child's whole start between the caller forking it and waiting for it).
 *
 * @internal
 */
export const settleStart = (inc: Incarnation, result: Effect.Effect<void, unknown>): void => {
  const waiter = inc.waiter
  inc.waiter = undefined
  if (waiter !== undefined) waiter(result)
  else inc.startResult = result
}

/**
 * Waits for `start` of an incarnation spawned for this caller. If the caller
 * is interrupted while `start` runs, the incarnation is stopped and its
 * Scope released before the interruption completes.
 *
 * @internal
 */
export const awaitStart = (inc: Incarnation): Effect.Effect<void, unknown> =>
  inc.startResult ??
  Effect.callback<void, unknown>((resume) => {
    if (inc.startResult !== undefined) return resume(inc.startResult)
    inc.waiter = resume
    return Effect.suspend(() => {
      inc.waiter = undefined
      inc.stopping = true
      return Fiber.interrupt(inc.fiber!)
    })
  })

/** @internal */
export type StopOutcome = "stopped" | "killed" | "abandoned"

/**
 * Stops an incarnation by its shutdown policy: interrupt it, then wait for its
 * finalizers (`Timeout`: at most that long, then abandon it; `Infinity`: as
 * long as it takes; `BrutalKill`: not at all). JavaScript cannot pre-empt a
 * fiber inside an uninterruptible region, so "killed" means "no longer waited
 * for".
 *
 * @internal
 */
export const stop = (inc: Incarnation, policy: ShutdownPolicy = inc.spec.shutdown): Effect.Effect<StopOutcome> => {
  inc.stopping = true
  if (inc.fiber === undefined && inc.detached && inc.scope !== undefined) {
    // a fiber-less child: release its Scope (on a fiber of its own when it has
    // finalizers, so the shutdown policy bounds the wait as for any other child)
    const scope = inc.scope
    inc.scope = undefined
    const finalize = Scope.closeUnsafe(scope, Exit.interrupt())
    if (finalize === undefined) {
      inc.host.childExited(inc, Exit.interrupt())
      return stoppedNow
    }
    const closing = Effect.runForkWith(inc.context)(Effect.uninterruptible(finalize))
    inc.fiber = closing
    closing.addObserver(() => inc.host.childExited(inc, Exit.interrupt()))
  }
  return inc.fiber === undefined ? stoppedNow : stopFiber(inc.fiber, policy)
}

/**
 * What {@link stop} returns for a child that stopped on the spot (nothing to
 * wait for); owners compare against it to skip waiting.
 *
 * @internal
 */
export const stoppedNow: Effect.Effect<StopOutcome> = Effect.succeed("stopped")

/**
 * Stops any fiber by a shutdown policy (see {@link stop}); used for children
 * that live outside a supervisor's slot table (TaskSupervisor's tasks).
 *
 * @internal
 */
export const stopFiber = (fiber: Fiber.Fiber<unknown, unknown>, policy: ShutdownPolicy): Effect.Effect<StopOutcome> => {
  if (fiber.pollUnsafe() !== undefined) return stoppedNow
  fiber.interruptUnsafe()
  if (fiber.pollUnsafe() !== undefined) return stoppedNow
  switch (policy._tag) {
    case "BrutalKill":
      return Effect.succeed("killed")
    case "Infinity":
      return Effect.as(Fiber.await(fiber), "stopped")
    case "Timeout":
      return Effect.map(Effect.timeoutOption(Fiber.await(fiber), policy.millis), (o): StopOutcome =>
        o._tag === "Some" ? "stopped" : "abandoned"
      )
  }
}

/** The cause of a failed exit, or an empty cause. @internal */
export const exitCause = (exit: Exit.Exit<unknown, unknown>): Cause.Cause<unknown> =>
  exit._tag === "Failure" ? exit.cause : Cause.empty

/** How a child's exit counts for its restart policy. @internal */
export type ExitKind = "normal" | "shutdown" | "abnormal"

/** @internal */
export const exitKind = (exit: Exit.Exit<unknown, unknown>): ExitKind =>
  Exit.isSuccess(exit) ? "normal" : Cause.hasInterruptsOnly(exit.cause) ? "shutdown" : "abnormal"

/** Whether a child with this restart value is restarted after this kind of exit. @internal */
export const shouldRestart = (restart: ChildSpec<any, any, any>["restart"], kind: ExitKind): boolean =>
  restart === "permanent" || (restart === "transient" && kind === "abnormal")
