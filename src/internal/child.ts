/**
 * The child: one fiber with its own Scope per incarnation, owned by a host
 * (a supervisor engine). This is the hot path, so one object per incarnation
 * does every job:
 *
 * - it is the public `Child<A>` value (`pid`, `id`, `type`, `handle`);
 * - it is its own `Scope` (effectInternals reliance 2): `start` and `run`
 *   acquire into it, and it is closed from the fiber's exit observer —
 *   synchronously when it holds no finalizers, otherwise on a finalizer fiber
 *   whose end is reported — so the host hears of the exit only after every
 *   resource of the incarnation was released;
 * - it is its fiber's log annotation record (reliance 4): its only own
 *   enumerable string keys are `supervisor`, `pid` and (when set) `id`; every
 *   other field is under a symbol, and `util.inspect` (Effect's
 *   `defaultLogger` prints the record with `console.log`) shows only those.
 *
 * The start effect is built once per spec (the continuation finds its child
 * in the fiber's context under `Scope`), so no closure or effect node is
 * built per child besides the fiber's exit observer.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import type { ChildSpec, ChildType, ShutdownPolicy } from "../Supervisor/ChildSpec.ts"
import { hasForkedChildren, installAnnotationRecord, installScope, scopeEmptyState } from "./effectInternals.ts"

/** What a host hears from its children. @internal */
export interface Host {
  /** inside the child's fiber, synchronously, once `start` succeeded */
  childStarted(child: Child): void
  /** once the incarnation ended and its Scope was closed */
  childExited(child: Child, exit: Exit.Exit<unknown, unknown>): void
}

let nextPid = 0

/** A fresh pid, unique among every child and task in this process. @internal */
export const newPid = (): number => ++nextPid

/**
 * Where an incarnation is in its life:
 * - `Starting`: `start` runs in its fiber;
 * - `Running`: `start` succeeded, the body runs (or the fiber is parked);
 * - `Detached`: a body-less child whose fiber ended: it lives as its Scope;
 * - `Finalizing`: the fiber ended, its Scope's finalizers run;
 * - `Exited`: its Scope is closed and its host was told.
 *
 * @internal
 */
export type Phase = "Starting" | "Running" | "Detached" | "Finalizing" | "Exited"

const SState = Symbol.for("effect-otp/Child/scopeState")
const SHandle = Symbol.for("effect-otp/Child/handle")
const SFiber = Symbol.for("effect-otp/Child/fiber")
const SPhase = Symbol.for("effect-otp/Child/phase")
const SStopping = Symbol.for("effect-otp/Child/stopping")
const SStarted = Symbol.for("effect-otp/Child/started")
const SHost = Symbol.for("effect-otp/Child/host")
const SSpec = Symbol.for("effect-otp/Child/spec")
const SCtx = Symbol.for("effect-otp/Child/context")
const SSide = Symbol.for("effect-otp/Child/side")
const SStartedAt = Symbol.for("effect-otp/Child/startedAt")

/**
 * What only some incarnations need, allocated on first use: a caller waiting
 * for start, callers waiting for the end, and the host's own per-child data.
 *
 * @internal
 */
export interface Side {
  waiter: ((effect: Effect.Effect<void, unknown>) => void) | undefined
  startResult: Effect.Effect<void, unknown> | undefined
  exitWaiters: Array<() => void> | undefined
  /** the host's data for this child (a static slot, a restart record…) */
  link: unknown
}

/**
 * One incarnation of a child. `supervisor`, `pid` (and `id` in {@link ChildWithId})
 * are its only own enumerable string keys: they are its log annotations.
 *
 * @internal
 */
export class Child<A = any> {
  readonly supervisor: string
  readonly pid: number
  declare readonly id: string | undefined;
  [SState]: unknown = scopeEmptyState;
  [SHandle]: A = undefined as A;
  [SFiber]: Fiber.Fiber<unknown, unknown> | undefined = undefined;
  [SPhase]: Phase = "Starting";
  /** its owner asked it to stop: its exit is not a crash */
  [SStopping] = false;
  /** `start` succeeded */
  [SStarted] = false;
  [SHost]: Host;
  [SSpec]: ChildSpec<A, unknown, unknown>;
  /** the context its fiber starts with (the caller's services, itself as Scope and annotations) */
  [SCtx]: Context.Context<never> = undefined as any;
  [SSide]: Side | undefined = undefined;
  /** when `start` succeeded, in ms since its host's shell was made (a small integer: no boxed number per child) */
  [SStartedAt] = 0

  constructor(supervisor: string, host: Host, spec: ChildSpec<A, unknown, unknown>) {
    this.supervisor = supervisor
    this.pid = ++nextPid
    this[SHost] = host
    this[SSpec] = spec
  }
  get handle(): A {
    return this[SHandle]
  }
  get type(): ChildType {
    return this[SSpec].type
  }
  toJSON(): unknown {
    return { _id: "Child", pid: this.pid, id: this.id, type: this.type }
  }
}
Object.defineProperty(Child.prototype, "id", { get: () => undefined, enumerable: false, configurable: true })
installScope(Child, SState)
installAnnotationRecord(Child)

/** A child whose spec has an id: `id` is then an own annotation too. @internal */
export class ChildWithId<A = any> extends Child<A> {
  override readonly id: string
  constructor(supervisor: string, host: Host, spec: ChildSpec<A, unknown, unknown>, id: string) {
    super(supervisor, host, spec)
    this.id = id
  }
}

// ---- accessors (the fields are symbol-keyed) -------------------------------------

/** @internal */
export const phase = (c: Child): Phase => c[SPhase]
/** @internal */
export const isStopping = (c: Child): boolean => c[SStopping]
/** @internal */
export const markStopping = (c: Child): void => {
  c[SStopping] = true
}
/** @internal */
export const started = (c: Child): boolean => c[SStarted]
/** Records when `start` succeeded, as an offset from the host's time base. @internal */
export const setStartedAt = (c: Child, offset: number): void => {
  c[SStartedAt] = offset
}
/** When `start` succeeded, as an offset from the host's time base. @internal */
export const startedAtOffset = (c: Child): number => c[SStartedAt]
/** @internal */
export const specOf = <A>(c: Child<A>): ChildSpec<A, unknown, unknown> => c[SSpec]
/** @internal */
export const contextOf = (c: Child): Context.Context<never> => c[SCtx]
/** @internal */
export const fiberOf = (c: Child): Fiber.Fiber<unknown, unknown> | undefined => c[SFiber]
/** @internal */
export const side = (c: Child): Side =>
  (c[SSide] ??= { waiter: undefined, startResult: undefined, exitWaiters: undefined, link: undefined })
/** @internal */
export const linkOf = <L>(c: Child): L | undefined => c[SSide]?.link as L | undefined
/** @internal */
export const setLink = (c: Child, link: unknown): void => {
  side(c).link = link
}

/**
 * Creates an incarnation without starting it, so its host can record it
 * before `start` runs (it may run synchronously).
 *
 * @internal
 */
export const create = <A>(supervisor: string, host: Host, spec: ChildSpec<A, unknown, unknown>): Child<A> =>
  spec.id === undefined ? new Child<A>(supervisor, host, spec) : new ChildWithId<A>(supervisor, host, spec, spec.id)

// ---- the start effect, built once per spec ----------------------------------------

interface Compiled {
  readonly start: unknown
  readonly run: unknown
  readonly now: Effect.Effect<unknown, unknown>
  readonly later: Effect.Effect<unknown, unknown>
}

const compiled = new WeakMap<object, Compiled>()

const current = (): Child => Context.getUnsafe(Fiber.getCurrent()!.context, Scope.Scope) as unknown as Child

const afterStart = (handle: unknown): Effect.Effect<unknown, unknown> => {
  const c = current()
  c[SHandle] = handle
  c[SPhase] = "Running"
  c[SStarted] = true
  c[SHost].childStarted(c)
  const run = c[SSpec].run
  return run === undefined ? parkOrDetach : (run(handle) as Effect.Effect<unknown, unknown>)
}

/**
 * A child without a body only holds what `start` acquired. If `start` left no
 * fiber of its own running, the incarnation needs no fiber either: it ends
 * here and lives on as its Scope alone (about half the memory). If start did
 * fork fibers, the fiber stays parked so they keep running.
 */
const parkOrDetach: Effect.Effect<unknown> = Effect.withFiber((fiber) => {
  if (hasForkedChildren(fiber)) return Effect.never
  const c = Context.getUnsafe(fiber.context, Scope.Scope) as unknown as Child
  c[SPhase] = "Detached"
  return Effect.void
})

/**
 * Runs inside the dying fiber (a frame of the effect built once per spec):
 * closes the child's Scope, then reports the exit to the host. A detached
 * body-less child's fiber ends without closing anything: it lives as its Scope.
 */
const onMainExit = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined => {
  const c = current()
  c[SFiber] = undefined
  if (c[SPhase] === "Detached" && exit._tag === "Success") return undefined
  const finalize = Scope.closeUnsafe(c as unknown as Scope.Closeable, exit)
  if (finalize === undefined) {
    finish(c, exit)
    return undefined
  }
  c[SPhase] = "Finalizing"
  return Effect.flatMap(Effect.exit(finalize), (fexit) => {
    // a finalizer that failed turns a success into that failure
    finish(c, fexit._tag === "Failure" && exit._tag === "Success" ? fexit : exit)
    return Effect.void
  })
}

/** The incarnation's effect for a spec: `start`, then the body (built once per spec). @internal */
export const mainOf = (spec: ChildSpec<any, unknown, unknown>, immediate: boolean): Effect.Effect<unknown, unknown> => {
  let c = compiled.get(spec)
  if (c === undefined || c.start !== spec.start || c.run !== spec.run) {
    const main = Effect.flatMap(spec.start as Effect.Effect<unknown, unknown>, afterStart)
    c = {
      start: spec.start,
      run: spec.run,
      now: Effect.onExit(main, onMainExit as any),
      later: Effect.onExit(Effect.andThen(Effect.yieldNow, main), onMainExit as any)
    }
    compiled.set(spec, c)
  }
  return immediate ? c.now : c.later
}

/**
 * Wraps an effect (a traced main, say) so that its end closes the child's
 * Scope and reports, as {@link mainOf}'s effect does.
 *
 * @internal
 */
export const withExit = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.onExit(effect, onMainExit as any)

/**
 * Forks the incarnation's fiber in `base` (the caller's services; this adds
 * the child as Scope and as log annotations). With `immediate`, `start`
 * begins synchronously in the caller's tick (as FiberMap.run does);
 * otherwise it is scheduled, which keeps crash-restart loops off the stack.
 * `effect` replaces the spec's main effect; it must be built with
 * {@link withExit} around {@link mainOf}'s parts (a traced start, say).
 *
 * @internal
 */
export const begin = (
  c: Child,
  base: Context.Context<never>,
  immediate: boolean,
  effect?: Effect.Effect<unknown, unknown>
): void => {
  const ctx = Context.add(
    Context.add(base, Scope.Scope, c as unknown as Scope.Scope),
    annotationsKey,
    c as never
  ) as Context.Context<never>
  c[SCtx] = ctx
  c[SFiber] = Effect.runForkWith(ctx)(effect ?? mainOf(c[SSpec], immediate))
  if (c[SPhase] === "Exited" || (c[SPhase] === "Detached" && c[SFiber]!.pollUnsafe() !== undefined)) {
    c[SFiber] = undefined
  }
}

const annotationsKey = References.CurrentLogAnnotations as unknown as Context.Key<never, never>

const finish = (c: Child, exit: Exit.Exit<unknown, unknown>): void => {
  c[SPhase] = "Exited"
  const s = c[SSide]
  if (s !== undefined && s.exitWaiters !== undefined) {
    const waiters = s.exitWaiters
    s.exitWaiters = undefined
    for (const w of waiters) w()
  }
  c[SHost].childExited(c, exit)
}

/** Closes a detached child's Scope (outside any fiber), then reports the exit. */
const close = (c: Child, exit: Exit.Exit<unknown, unknown>): void => {
  const finalize = Scope.closeUnsafe(c as unknown as Scope.Closeable, exit)
  if (finalize === undefined) return finish(c, exit)
  c[SPhase] = "Finalizing"
  const fiber = Effect.runForkWith(c[SCtx])(Effect.uninterruptible(finalize))
  c[SFiber] = fiber
  fiber.addObserver((fexit) => {
    c[SFiber] = undefined
    finish(c, fexit._tag === "Failure" && exit._tag === "Success" ? fexit : exit)
  })
}

// ---- start handshake ------------------------------------------------------------

/**
 * Tells whoever waits in {@link awaitStart} how start ended, or keeps the
 * answer for a caller that has not started waiting yet.
 *
 * @internal
 */
export const settleStart = (c: Child, result: Effect.Effect<void, unknown>): void => {
  const s = c[SSide]
  const waiter = s?.waiter
  if (waiter !== undefined) {
    s!.waiter = undefined
    waiter(result)
  } else if (result !== Effect.void || s !== undefined) side(c).startResult = result
}

/** How start ended, if it has; `Effect.void` for a synchronous success. @internal */
export const startResult = (c: Child): Effect.Effect<void, unknown> | undefined =>
  c[SSide]?.startResult ?? (c[SStarted] ? Effect.void : undefined)

/**
 * Waits for `start` of an incarnation spawned for this caller. If the caller
 * is interrupted while `start` runs, the incarnation is stopped; the caller
 * waits for it at most as long as the child's shutdown policy allows (past
 * that the child is abandoned and `onAbandon` reports it).
 *
 * @internal
 */
export const awaitStart = (c: Child, onAbandon: (c: Child) => void): Effect.Effect<void, unknown> =>
  startResult(c) ??
  Effect.callback<void, unknown>((resume) => {
    const known = startResult(c)
    if (known !== undefined) return resume(known)
    side(c).waiter = resume
    return Effect.suspend(() => {
      side(c).waiter = undefined
      return Effect.flatMap(stop(c), (outcome) => {
        if (outcome === "abandoned") onAbandon(c)
        return Effect.void
      })
    })
  })

// ---- stopping ---------------------------------------------------------------------

/** @internal */
export type StopOutcome = "stopped" | "killed" | "abandoned"

/** What {@link stop} returns for a child that stopped on the spot. @internal */
export const stoppedNow: Effect.Effect<StopOutcome> = Effect.succeed("stopped")

const waitExit = (c: Child): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (c[SPhase] === "Exited") return resume(Effect.void)
    const s = side(c)
    const w = () => resume(Effect.void)
    ;(s.exitWaiters ??= []).push(w)
    return Effect.sync(() => {
      const i = s.exitWaiters?.indexOf(w) ?? -1
      if (i >= 0) s.exitWaiters!.splice(i, 1)
    })
  })

/**
 * Asks an incarnation to stop without waiting: interrupts its fiber, or closes
 * the Scope of a detached one. True when it has already exited (its host was
 * told synchronously).
 *
 * @internal
 */
export const interruptUnsafe = (c: Child): boolean => {
  c[SStopping] = true
  const p = c[SPhase]
  if (p === "Exited") return true
  if (p === "Detached") {
    close(c, Exit.interrupt())
    return c[SPhase] === "Exited"
  }
  if (p !== "Finalizing") c[SFiber]?.interruptUnsafe()
  return c[SPhase] === "Exited"
}

/**
 * Stops an incarnation by its shutdown policy: interrupt it, then wait for its
 * finalizers (`Timeout`: at most that long, then abandon it; `Infinity`: as
 * long as it takes; `BrutalKill`: not at all). JavaScript cannot pre-empt a
 * fiber inside an uninterruptible region, so "killed" means "no longer waited
 * for".
 *
 * @internal
 */
export const stop = (c: Child, policy: ShutdownPolicy = c[SSpec].shutdown): Effect.Effect<StopOutcome> => {
  if (interruptUnsafe(c)) return stoppedNow
  return waitByPolicy(waitExit(c), policy)
}

/**
 * Waits for many interrupted incarnations at once, each by its own shutdown
 * policy, without a fiber, a timer or a callback per child: children are
 * grouped by policy in sets; the host calls {@link StopGroups.exited} from its
 * `childExited` while it stops, and one sleep per distinct timeout abandons
 * (and reports through `onAbandon`) those of its group still running when it
 * ends. `BrutalKill` children are not waited for.
 *
 * @internal
 */
export class StopGroups {
  private readonly groups = new Map<number, { readonly set: Set<Child>; resume: (() => void) | undefined }>()

  add(c: Child): void {
    if (c[SPhase] === "Exited") return
    const policy = c[SSpec].shutdown
    if (policy._tag === "BrutalKill") return
    const key = policy._tag === "Infinity" ? Infinity : policy.millis
    let group = this.groups.get(key)
    if (group === undefined) this.groups.set(key, (group = { set: new Set(), resume: undefined }))
    group.set.add(c)
  }

  exited(c: Child): void {
    const policy = c[SSpec].shutdown
    const group = this.groups.get(
      policy._tag === "Infinity" ? Infinity : policy._tag === "Timeout" ? policy.millis : -1
    )
    if (group === undefined || !group.set.delete(c)) return
    if (group.set.size === 0 && group.resume !== undefined) group.resume()
  }

  wait(onAbandon: (c: Child) => void): Effect.Effect<void> {
    if (this.groups.size === 0) return Effect.void
    const waits: Array<Effect.Effect<void>> = []
    for (const [millis, group] of this.groups) {
      const all = Effect.callback<void>((resume) => {
        if (group.set.size === 0) return resume(Effect.void)
        group.resume = () => resume(Effect.void)
        return Effect.sync(() => {
          group.resume = undefined
        })
      })
      waits.push(
        millis === Infinity
          ? all
          : Effect.map(Effect.timeoutOption(all, millis), (o) => {
              if (o._tag === "None") for (const c of group.set) onAbandon(c)
            })
      )
    }
    return Effect.all(waits, { concurrency: "unbounded", discard: true })
  }
}

/** Waits for an end by a shutdown policy. @internal */
export const waitByPolicy = (wait: Effect.Effect<void>, policy: ShutdownPolicy): Effect.Effect<StopOutcome> => {
  switch (policy._tag) {
    case "BrutalKill":
      return Effect.succeed("killed")
    case "Infinity":
      return Effect.as(wait, "stopped")
    case "Timeout":
      return Effect.map(Effect.timeoutOption(wait, policy.millis), (o): StopOutcome =>
        o._tag === "Some" ? "stopped" : "abandoned"
      )
  }
}

/**
 * Stops any fiber by a shutdown policy (see {@link stop}); for tasks that are
 * fibers without a Child.
 *
 * @internal
 */
export const stopFiber = (fiber: Fiber.Fiber<unknown, unknown>, policy: ShutdownPolicy): Effect.Effect<StopOutcome> => {
  if (fiber.pollUnsafe() !== undefined) return stoppedNow
  fiber.interruptUnsafe()
  if (fiber.pollUnsafe() !== undefined) return stoppedNow
  return waitByPolicy(Effect.asVoid(Fiber.await(fiber)), policy)
}

// ---- exits ---------------------------------------------------------------------------

/** The cause of a failed exit, or an empty cause. @internal */
export const exitCause = (exit: Exit.Exit<unknown, unknown>): Cause.Cause<unknown> =>
  exit._tag === "Failure" ? exit.cause : Cause.empty

/** How a child's exit counts for its restart value. @internal */
export type ExitKind = "normal" | "shutdown" | "abnormal"

/** @internal */
export const exitKind = (exit: Exit.Exit<unknown, unknown>): ExitKind =>
  Exit.isSuccess(exit) ? "normal" : Cause.hasInterruptsOnly(exit.cause) ? "shutdown" : "abnormal"

/**
 * The restart decision, as a table (OTP's `restart_child` heads):
 *
 * | restart \ exit | normal | shutdown | abnormal |
 * | permanent      | yes    | yes      | yes      |
 * | transient      | no     | no       | yes      |
 * | temporary      | no     | no       | no       |
 *
 * @internal
 */
export const shouldRestart = (restart: ChildSpec<any, any, any>["restart"], kind: ExitKind): boolean =>
  restart === "permanent" || (restart === "transient" && kind === "abnormal")

/** `child "id" (pid n)` or `child (pid n)`, for logs. @internal */
export const describe = (c: { readonly id: string | undefined; readonly pid: number }): string =>
  c.id === undefined ? `child (pid ${c.pid})` : `child ${JSON.stringify(c.id)} (pid ${c.pid})`
