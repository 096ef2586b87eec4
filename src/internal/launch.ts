/**
 * A supervisor provided through a Layer never stays dead. OTP stops the node
 * when a permanent application's top supervisor exits, so that an orchestrator
 * restarts it; a program that kept serving with a supervisor that gave up
 * would answer every later request with `SupervisorStopped`. So when a
 * supervisor built by one of these layers gives up, the fiber that built the
 * layer — the program's main fiber under `Layer.launch`, `Effect.provide` or
 * a Service class's `.launch` — fails with the supervisor's
 * `RestartIntensityExceeded` (its finalizers run; `NodeRuntime.runMain` exits
 * with a non-zero code). The layer's error type says so. "The fiber that
 * built the layer" is the nearest fiber of its lineage still running: a layer
 * built inside `Layer.merge` runs in a fiber forked for it, which has ended
 * by then; merge asks for the build from the program's fiber, and that fiber
 * is remembered per build. Effect keeps no link from such a forked fiber to
 * its parent, so a supervisor layer requested *only* from inside a merge
 * branch (`Layer.mergeAll(A, B.pipe(Layer.provide(Workers.layer)))`), or
 * built where no program fiber is left (a `ManagedRuntime`), cannot end the
 * program: that case is logged at Error level, saying so.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import type { RestartIntensityExceeded } from "../Errors.ts"
import { failFiber, fiberLineage } from "./effectInternals.ts"

const exitCodeOne = Context.make(Runtime.InterruptExitCode, 1)

/**
 * The fibers that asked for a supervisor layer to be built, per build (memo
 * map), each with its lineage: the program is among them. `Layer.merge` builds
 * its layers in fibers it forks without a parent link (ended by the time a
 * supervisor gives up), but it asks for each of them from the program's fiber.
 */
const requesters = new WeakMap<Layer.MemoMap, Set<Fiber.Fiber<unknown, unknown>>>()

const addRequester = (memoMap: Layer.MemoMap, fiber: Fiber.Fiber<unknown, unknown>): void => {
  let set = requesters.get(memoMap)
  if (set === undefined) requesters.set(memoMap, (set = new Set()))
  for (const f of fiberLineage(fiber)) set.add(f)
}

/**
 * `Layer.effect(tag)(make)`, plus a watcher in the layer's Scope that fails
 * the program when the supervisor gives up (`awaitStop` fails): the nearest
 * running fiber among the one that built the layer (and its lineage) and those
 * that asked for it.
 *
 * @internal
 */
export const supervisorLayer = <I, S, E, R>(
  tag: Context.Key<I, S>,
  make: Effect.Effect<S, E, R>,
  awaitStop: (sup: S) => Effect.Effect<unknown, RestartIntensityExceeded>
): Layer.Layer<I, E | RestartIntensityExceeded, Exclude<R, Scope.Scope>> => {
  const memoized = Layer.fromBuildMemo((memoMap, scope) =>
    Effect.withFiber((builder) => {
      const lineage = fiberLineage(builder)
      return Effect.map(
        Effect.tap(Scope.provide(make, scope), (sup) =>
          Effect.forkIn(
            Effect.catch(awaitStop(sup), (error) => {
              const program = lineage.find(isRunning) ?? Array.from(requesters.get(memoMap) ?? []).find(isRunning)
              if (program !== undefined) return Effect.sync(() => failFiber(program, error, exitCodeOne))
              return Effect.logError(
                "the supervisor gave up and the program that built its layer cannot be reached to end it " +
                  "(the layer was built only from inside a Layer.merge branch, in a fiber Effect forks without a " +
                  "parent link): provide the supervisor's layer at the top of the layer graph, or run Service.launch"
              )
            }),
            scope,
            { startImmediately: true }
          )
        ),
        (sup) => Context.make(tag, sup)
      )
    })
  ) as Layer.Layer<I, E, Exclude<R, Scope.Scope>>
  // not memoized itself: it runs in the fiber that asks for the build, then builds the memoized layer
  return Layer.fromBuild((memoMap, scope) => {
    const caller = Fiber.getCurrent()
    if (caller !== undefined) addRequester(memoMap, caller)
    return Layer.buildWithMemoMap(memoized, memoMap, scope)
  })
}

const isRunning = (fiber: Fiber.Fiber<unknown, unknown>): boolean => fiber.pollUnsafe() === undefined

/**
 * A Service class's `.launch`: starts the supervisor and runs until it stops
 * by itself — failing with `RestartIntensityExceeded` if it gave up — or until
 * interrupted (SIGINT under `runMain`), then stops it.
 *
 * @internal
 */
export const launchUntilStopped = <S, E, R>(
  make: Effect.Effect<S, E, R>,
  awaitStop: (sup: S) => Effect.Effect<unknown, RestartIntensityExceeded>
): Effect.Effect<void, E | RestartIntensityExceeded, Exclude<R, Scope.Scope>> =>
  Effect.scoped(Effect.flatMap(make, (sup) => Effect.asVoid(awaitStop(sup))))
