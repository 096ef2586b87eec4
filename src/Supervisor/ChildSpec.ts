/**
 * What a supervised child is: how it starts, what keeps it alive, when it is
 * restarted and how it is stopped.
 *
 * A child is **one Effect fiber with its own `Scope`**. `start` runs first, in
 * that Scope (like a GenServer's `init`): whatever it acquires is released when
 * this incarnation of the child ends, and its success value is the child's
 * *handle*, what callers talk to. `run` is the body that keeps the child alive;
 * without one the child lives, holding what `start` acquired, until it is
 * stopped. The child's exit is the body's exit: success is a *normal* exit,
 * interruption is a *shutdown*, a failure or a defect is *abnormal*.
 *
 * The three restart values are OTP's: `"permanent"` children are always
 * restarted, `"transient"` ones only after an abnormal exit, `"temporary"` ones
 * never. A restart is a new incarnation, with a new Scope and a new handle.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { InvalidOptions } from "../Errors.ts"
import { decodeShutdown } from "./internal/shutdown.ts"

/**
 * When a child is restarted after it exits: `"permanent"` always,
 * `"transient"` only after an abnormal exit (a failure or a defect),
 * `"temporary"` never.
 *
 * @category models
 * @since 0.1.0
 */
export type Restart = "permanent" | "transient" | "temporary"

/**
 * How long stopping a child waits for its finalizers: a duration (then the
 * child is abandoned and reported), `"brutalKill"` (interrupt and do not wait)
 * or `"infinity"` (wait as long as it takes; the default for supervisors).
 *
 * @category models
 * @since 0.1.0
 */
export type Shutdown = Duration.Input | "brutalKill" | "infinity"

/**
 * Whether the child is a worker or a supervisor (which changes only the
 * default shutdown and how it is counted).
 *
 * @category models
 * @since 0.1.0
 */
export type ChildType = "worker" | "supervisor"

/**
 * A validated shutdown policy: wait `millis` ms, do not wait, or wait forever.
 *
 * @category models
 * @since 0.1.0
 */
export type ShutdownPolicy =
  | { readonly _tag: "Timeout"; readonly millis: number }
  | { readonly _tag: "BrutalKill" }
  | { readonly _tag: "Infinity" }

const TypeId = "~effect-otp/ChildSpec"

/**
 * A child specification. `A` is the handle `start` produces, `E` the error
 * `start` can fail with (which `startChild` fails with), `R` what `start` and
 * `run` need besides their Scope.
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildSpec<in out A, out E = never, out R = never> {
  readonly [TypeId]: typeof TypeId
  readonly id: string | undefined
  readonly start: Effect.Effect<A, E, R | Scope.Scope>
  readonly run: ((handle: A) => Effect.Effect<unknown, unknown, R | Scope.Scope>) | undefined
  readonly restart: Restart
  readonly shutdown: ShutdownPolicy
  readonly type: ChildType
  readonly significant: boolean
  /** Set when a field was invalid: `startChild` fails with it before anything runs. */
  readonly invalid: InvalidOptions | undefined
}

/**
 * The options of {@link make}.
 *
 * `run`'s parameter is inferred from `start` when `start` is a value, a
 * pipe (`Queue.unbounded<string>().pipe(Effect.tap(...))`) or an
 * `Effect.gen`. Written inline as a data-first dual call
 * (`Effect.tap(Queue.unbounded<string>(), ...)`, `Effect.as(x, y)`),
 * TypeScript checks `start` only after it has fixed `run`'s parameter, which
 * is then `unknown` (a type error in `run`, never `any`): pipe it, or
 * annotate the parameter (`run: (inbox: Queue.Queue<string>) => ...`).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<A, E, R, E2 = never, R2 = never> {
  /** A label for logs, metrics and `whichChildren`; dynamic supervisors do not require it to be unique. */
  readonly id?: string | undefined
  /** Runs first, in the child's own Scope; its value is the child's handle. */
  readonly start: Effect.Effect<A, E, R>
  /** The body that keeps the child alive. Absent: the child lives until it is stopped. */
  readonly run?: ((handle: A) => Effect.Effect<unknown, E2, R2>) | undefined
  /** @default "permanent" */
  readonly restart?: Restart | undefined
  /** @default "5 seconds" for workers, "infinity" for supervisors */
  readonly shutdown?: Shutdown | undefined
  /** @default "worker" */
  readonly type?: ChildType | undefined
  /**
   * Only for static `Supervisor`s with `autoShutdown`: when a significant
   * child exits by itself, the supervisor may shut down. Must not be set on a
   * permanent child.
   *
   * @default false
   */
  readonly significant?: boolean | undefined
}

const invalid = (field: string, value: unknown, expected: string) =>
  new InvalidOptions({ module: "ChildSpec", field, value, expected })

/**
 * Describes a child: its `start` (init, in its own Scope), its `run` body, and
 * its restart, shutdown and type.
 *
 * **When to use**
 *
 * Use to describe any supervised child: a worker that holds resources, a loop,
 * a child supervisor. For one-off work use {@link task}.
 *
 * **Details**
 *
 * Invalid fields (an unknown restart value, a negative shutdown) do not throw:
 * the spec carries an `InvalidOptions` error, and `startChild` fails with it
 * before running anything, as Elixir validates a child spec in the caller.
 *
 * The types come from the arguments only (the result is `NoInfer`), so a spec
 * written inline in a list, `Supervisor.make([ChildSpec.make({...}), ...])`,
 * keeps its requirements instead of taking `any` from the list's type.
 *
 * **Example** (A counter worker)
 *
 * ```ts
 * import { Effect, Ref } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * const counter = (initial: number) =>
 *   ChildSpec.make({ id: "counter", start: Ref.make(initial) })
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* DynamicSupervisor.make()
 *   const child = yield* DynamicSupervisor.startChild(sup, counter(41))
 *   yield* Ref.update(child.handle, (n) => n + 1)
 *   return yield* Ref.get(child.handle)
 * })
 * // => 42
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <A, E = never, R = never, E2 = never, R2 = never>(
  options: Options<A, E, R, E2, R2>
): NoInfer<ChildSpec<A, E, Exclude<R | R2, Scope.Scope>>> => {
  const type = options.type ?? "worker"
  const restart = options.restart ?? "permanent"
  let error: InvalidOptions | undefined
  if (type !== "worker" && type !== "supervisor") error = invalid("type", type, '"worker" or "supervisor"')
  if (restart !== "permanent" && restart !== "transient" && restart !== "temporary") {
    error ??= invalid("restart", restart, '"permanent", "transient" or "temporary"')
  }
  if (!Effect.isEffect(options.start)) error ??= invalid("start", options.start, "an Effect")
  if (options.run !== undefined && typeof options.run !== "function") {
    error ??= invalid("run", options.run, "a function from the handle to an Effect")
  }
  const significant = options.significant ?? false
  if (typeof significant !== "boolean") error ??= invalid("significant", significant, "a boolean")
  else if (significant && restart === "permanent") {
    error ??= invalid("significant", significant, "false for a permanent child (OTP's bad_combination)")
  }
  const shutdown = decodeShutdown(options.shutdown, type)
  if (shutdown instanceof InvalidOptions) error ??= shutdown
  return {
    [TypeId]: TypeId,
    id: options.id,
    start: options.start as any,
    run: options.run as any,
    restart,
    shutdown: shutdown instanceof InvalidOptions ? { _tag: "BrutalKill" } : shutdown,
    type,
    significant,
    invalid: error
  }
}

/**
 * A child that runs one effect and is done: restart `"temporary"` unless told
 * otherwise, no handle.
 *
 * **When to use**
 *
 * Use for fire-and-forget work under a supervisor (Elixir's `{Task, fun}`
 * child). Pass `restart: "transient"` to retry it until it succeeds.
 *
 * **Example** (A one-off job)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor } from "effect-otp"
 *
 * const program = Effect.gen(function*() {
 *   const sup = yield* DynamicSupervisor.make()
 *   yield* DynamicSupervisor.startChild(sup, ChildSpec.task(Effect.log("job done")))
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const task = <E, R>(
  effect: Effect.Effect<unknown, E, R>,
  options?: {
    readonly id?: string | undefined
    readonly restart?: Restart | undefined
    readonly shutdown?: Shutdown | undefined
    readonly significant?: boolean | undefined
  }
): ChildSpec<void, never, Exclude<R, Scope.Scope>> =>
  make({
    id: options?.id,
    start: Effect.void,
    run: () => effect,
    restart: options?.restart ?? "temporary",
    shutdown: options?.shutdown,
    significant: options?.significant
  })

/**
 * Returns true if the value is a {@link ChildSpec}.
 *
 * @category guards
 * @since 0.1.0
 */
export const isChildSpec = (u: unknown): u is ChildSpec<unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u
