/**
 * Every place the library leans on the *shape* of Effect's runtime rather than
 * its public API, in one file. Each reliance has a test in
 * test/internal/effectInternals.test.ts named after it, which fails when an
 * Effect upgrade changes that shape; fix it here and nowhere else.
 *
 * 1. FiberImpl keeps the fibers it forked in `_children` (no public reader):
 *    {@link hasForkedChildren}.
 * 2. A Scope is a plain object with two type-id keys, `strategy`, `parent` and
 *    a mutable `state` that Effect's Scope functions read and write directly:
 *    {@link installScope} makes a class's instances Scopes (a child is its own
 *    Scope, which saves an object and a field per child).
 * 3. A metric exposes its series' hooks through an internal `hook(context)`
 *    method: {@link metricHooks}; `Metric.registerUnsafe` with a plain-number
 *    state is then public API.
 * 4. Loggers read log annotations with `Object.entries` (own enumerable string
 *    keys): a child is its own annotation record ({@link installScope}'s class
 *    keeps its other fields under symbols). Effect's `defaultLogger` alone
 *    passes the record itself to `console.log`, whose `util.inspect` would
 *    print every symbol field too: {@link installAnnotationRecord} makes such
 *    a record inspect as its annotations only.
 * 5. The default Clock is a class of its own whose monotonic reading is
 *    `process.hrtime`: {@link monotonicMillis} reads `performance.now()` (the
 *    same source, no BigInt) when that class is in use.
 * 6. A fiber's next interruptible point fails with `FiberImpl._interruptedCause`:
 *    {@link failFiber} seeds it to end another fiber with a failure (a
 *    supervisor provided through a Layer that gives up ends the program); a
 *    forked fiber knows the fiber that forked it in `FiberImpl._parent` while
 *    it runs: {@link fiberLineage}.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"

// ---- 1. forked children ------------------------------------------------------

/** Whether the fiber still has fibers it forked running (`FiberImpl._children`). @internal */
export const hasForkedChildren = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  const children = (fiber as unknown as { readonly _children?: ReadonlySet<unknown> })._children
  return children !== undefined && children.size > 0
}

// ---- 2. objects that are Scopes ------------------------------------------------

const probe = Scope.makeUnsafe() as unknown as Record<string, unknown>

/** The string keys Effect's Scope carries as type ids (read from a real Scope). @internal */
export const scopeTypeIds: ReadonlyArray<string> = Object.keys(probe).filter((k) => k.startsWith("~effect/Scope"))

/** A Scope's state when it has no finalizers (the value Effect itself uses). @internal */
export const scopeEmptyState: unknown = probe.state

/**
 * Makes every instance of `cls` a `Scope.Closeable` (sequential finalizers, no
 * parent): the type ids, `strategy` and `parent` go on the prototype, and
 * `state` is an accessor over the symbol `stateKey` so it is no own
 * enumerable string key (see reliance 4). Instances must set
 * `this[stateKey] = scopeEmptyState` in their constructor.
 *
 * @internal
 */
export const installScope = (cls: { prototype: object }, stateKey: symbol): void => {
  const proto = cls.prototype as Record<PropertyKey, unknown>
  for (const key of scopeTypeIds) proto[key] = key
  proto.strategy = "sequential"
  proto.parent = undefined
  Object.defineProperty(proto, "state", {
    get(this: Record<symbol, unknown>) {
      return this[stateKey]
    },
    set(this: Record<symbol, unknown>, value: unknown) {
      this[stateKey] = value
    },
    enumerable: false,
    configurable: true
  })
}

// ---- 4. objects that are log annotation records ---------------------------------

/** Node's (and Bun's) hook for how `util.inspect`, so `console.log`, shows a value. */
const inspectCustom = Symbol.for("nodejs.util.inspect.custom")

/**
 * Makes every instance of `cls` print as its log annotations: Effect's
 * `defaultLogger` appends the annotation record itself to `console.log`'s
 * arguments, and Node formats it with `util.inspect`, which shows symbol
 * keys and would dump the whole object. With this, `util.inspect` shows a
 * plain object of its own enumerable string keys (what every other logger
 * reads with `Object.entries`). One prototype method: nothing per instance.
 *
 * @internal
 */
export const installAnnotationRecord = (cls: { prototype: object }): void => {
  Object.defineProperty(cls.prototype, inspectCustom, {
    value(this: object) {
      return Object.fromEntries(Object.entries(this))
    },
    enumerable: false,
    configurable: true,
    writable: true
  })
}

/**
 * Installs `finalizer` as the only finalizer of a fresh (still empty) Scope,
 * synchronously, by writing the `Open` state Effect's own `addFinalizer`
 * writes (`Scope.addFinalizerExit` is an Effect; the Registry must install its
 * cleanup in the same turn as the entry, so no entry ever exists without it).
 *
 * @internal
 */
export const openWithFinalizer = (
  scope: Scope.Closeable,
  key: unknown,
  finalizer: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<unknown>
): void => {
  ;(scope as unknown as { state: unknown }).state = {
    _tag: "Open",
    finalizerKey: key,
    finalizer,
    finalizers: undefined
  }
}

// ---- 3. metric series hooks -----------------------------------------------------

/** The hooks of a metric's series in a context, or undefined if the metric does not expose them. @internal */
export const metricHooks = (
  metric: Metric.Metric<any, any>,
  context: Context.Context<never>
): Metric.Metric.Hooks<any, any> | undefined => {
  const hook = (metric as unknown as { hook?: (context: Context.Context<never>) => Metric.Metric.Hooks<any, any> }).hook
  return typeof hook === "function" ? hook.call(metric, context) : undefined
}

// ---- 5. the monotonic clock -------------------------------------------------------

const DefaultClock = (Context.get(Context.empty(), Clock.Clock) as object).constructor
const performanceNow: (() => number) | undefined =
  typeof globalThis.performance?.now === "function" ? () => globalThis.performance.now() : undefined

/**
 * Whether `clock` is Effect's default Clock (a class of its own, reliance 5):
 * its sleeps are `setTimeout`s and its monotonic reading is `process.hrtime`.
 *
 * @internal
 */
export const isDefaultClock = (clock: Clock.Clock): boolean => clock.constructor === DefaultClock

/**
 * A reader of the Clock's monotonic time in milliseconds, for deadlines and
 * windows (a wall-clock step changes nothing). On the default Clock it is
 * `performance.now()`; on any other (TestClock) `monotonicTimeNanosUnsafe`.
 *
 * @internal
 */
export const monotonicMillis = (clock: Clock.Clock): (() => number) =>
  clock.constructor === DefaultClock && performanceNow !== undefined
    ? performanceNow
    : () => Number(clock.monotonicTimeNanosUnsafe()) / 1e6

// ---- 6. failing another fiber ---------------------------------------------------------

/**
 * Ends `fiber` with `error` as its failure, at its next interruptible point,
 * as if it had failed there itself: the fiber's finalizers run and its exit
 * is a failure whose cause holds `error` (and the interruption that delivered
 * it). Effect has no public way to fail another fiber, only to interrupt it:
 * `FiberImpl._interruptedCause` is the cause its next interruptible point
 * fails with, so it is seeded with the failure before `interruptUnsafe`
 * adds the interruption. Without that field, the fiber is interrupted with
 * the given annotations only (a `Runtime.InterruptExitCode` still gives
 * `runMain` a non-zero exit code).
 *
 * @internal
 */
export const failFiber = (
  fiber: Fiber.Fiber<unknown, unknown>,
  error: unknown,
  annotations: Context.Context<never>
): void => {
  const impl = fiber as unknown as { _interruptedCause?: unknown; pollUnsafe(): unknown }
  if (impl.pollUnsafe() !== undefined) return
  if ("_interruptedCause" in impl && impl._interruptedCause === undefined) {
    impl._interruptedCause = Cause.fail(error)
  }
  fiber.interruptUnsafe(undefined, annotations)
}

/**
 * The fiber and the fibers it was forked from, nearest first, read while it
 * runs (`FiberImpl._parent` is cleared when a fiber exits). A layer built by
 * `Layer.merge` runs in a fiber forked from the program's; the program is its
 * nearest ancestor still running when the supervisor gives up.
 *
 * @internal
 */
export const fiberLineage = (fiber: Fiber.Fiber<unknown, unknown>): ReadonlyArray<Fiber.Fiber<unknown, unknown>> => {
  const lineage: Array<Fiber.Fiber<unknown, unknown>> = []
  let current: Fiber.Fiber<unknown, unknown> | undefined = fiber
  while (current !== undefined && lineage.length < 64) {
    lineage.push(current)
    current = (current as unknown as { readonly _parent?: Fiber.Fiber<unknown, unknown> })._parent
  }
  return lineage
}
