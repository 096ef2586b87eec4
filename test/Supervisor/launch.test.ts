/**
 * A supervisor provided as a Layer never stays dead (issue 15 item 1): when it
 * gives up, the program that built the layer ends with its
 * `RestartIntensityExceeded`, as OTP stops the node when a permanent
 * application's top supervisor exits.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer } from "effect"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { ChildSpec, DynamicSupervisor, RateLimitedSupervisor, Supervisor, TaskSupervisor } from "effect-otp"

/** A permanent child that fails as soon as it runs: four crashes exceed the default 3 in 5 s. */
const crasher = (finalized: { n: number }) =>
  ChildSpec.make({
    id: "crasher",
    start: Effect.addFinalizer(() => Effect.sync(() => void finalized.n++)),
    run: () => Effect.fail("boom")
  })

/** Runs a program in a fiber of its own, as a main program runs (the give-up fails the fiber that built the layer). */
const runAsMain = <A, E>(program: Effect.Effect<A, E>) => Effect.flatMap(Effect.forkChild(program), Fiber.await)

const failureTag = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Cause.squash(exit.cause) as { readonly _tag?: string }
  return error?._tag
}

class Workers extends DynamicSupervisor.Service<Workers>()("test/launch/Workers") {}

describe("a supervisor provided through a Layer", () => {
  it.effect(
    "DynamicSupervisor.Service: the program provided with its layer fails with RestartIntensityExceeded when it gives up",
    () =>
      Effect.gen(function* () {
        const finalized = { n: 0 }
        const program = Effect.gen(function* () {
          const sup = yield* Workers
          yield* DynamicSupervisor.startChild(sup, crasher(finalized))
          return yield* Effect.never
        }).pipe(Effect.provide(Workers.layer))
        const exit = yield* runAsMain(program)
        assert.strictEqual(failureTag(exit), "RestartIntensityExceeded")
        // the first start and three restarts, each released
        assert.strictEqual(finalized.n, 4)
      })
  )

  it.effect("DynamicSupervisor.layer(tag, options): same, and a program that ends first is not failed afterwards", () =>
    Effect.gen(function* () {
      class Tag extends Context.Service<Tag, DynamicSupervisor.DynamicSupervisor>()("test/launch/Tag") {}
      const finalized = { n: 0 }
      const gaveUp = yield* runAsMain(
        Effect.gen(function* () {
          yield* DynamicSupervisor.startChild(yield* Tag, crasher(finalized))
          return yield* Effect.never
        }).pipe(Effect.provide(DynamicSupervisor.layer(Tag, { maxRestarts: 1 })))
      )
      assert.strictEqual(failureTag(gaveUp), "RestartIntensityExceeded")
      const quiet = yield* runAsMain(
        Effect.map(Effect.service(Tag), () => "done").pipe(Effect.provide(DynamicSupervisor.layer(Tag)))
      )
      assert.deepStrictEqual(quiet, Exit.succeed("done"))
    })
  )

  it.effect("Layer.launch of a layer that contains the supervisor ends with RestartIntensityExceeded", () =>
    Effect.gen(function* () {
      const finalized = { n: 0 }
      const crashOnStart = Layer.effectDiscard(
        Effect.flatMap(Effect.service(Workers), (sup) => DynamicSupervisor.startChild(sup, crasher(finalized)))
      )
      const app = Layer.provide(crashOnStart, Workers.layer)
      const exit = yield* runAsMain(Layer.launch(Layer.merge(app, Workers.layer)))
      assert.strictEqual(failureTag(exit), "RestartIntensityExceeded")
    })
  )

  it.effect("Supervisor.Service: layer and launch both end with RestartIntensityExceeded", () =>
    Effect.gen(function* () {
      const finalized = { n: 0 }
      class App extends Supervisor.Service<App>()("test/launch/App", [crasher(finalized)], {
        strategy: "oneForOne"
      }) {}
      const viaLayer = yield* runAsMain(Effect.provide(Effect.never, App.layer))
      assert.strictEqual(failureTag(viaLayer), "RestartIntensityExceeded")
      const viaLaunch = yield* runAsMain(App.launch)
      assert.strictEqual(failureTag(viaLaunch), "RestartIntensityExceeded")
    })
  )

  it.effect("TaskSupervisor.Service: a transient startChild task that crash-loops ends the program", () =>
    Effect.gen(function* () {
      class Tasks extends TaskSupervisor.Service<Tasks>()("test/launch/Tasks") {}
      const exit = yield* runAsMain(
        Effect.gen(function* () {
          yield* TaskSupervisor.startChild(yield* Tasks, Effect.fail("boom"), { restart: "transient" })
          return yield* Effect.never
        }).pipe(Effect.provide(Tasks.layer))
      )
      assert.strictEqual(failureTag(exit), "RestartIntensityExceeded")
      // with nothing crashing, launch runs until interrupted
      const launched = yield* Effect.forkChild(Tasks.launch)
      yield* Effect.yieldNow
      assert.isUndefined(launched.pollUnsafe())
      yield* Fiber.interrupt(launched)
    })
  )

  it.effect("RateLimitedSupervisor.Service: the program ends with RestartIntensityExceeded when it gives up", () =>
    Effect.gen(function* () {
      const finalized = { n: 0 }
      class Spawner extends RateLimitedSupervisor.Service<Spawner>()("test/launch/Spawner", {
        limit: 1000,
        window: "1 second",
        limitRestarts: false
      }) {}
      const exit = yield* runAsMain(
        Effect.gen(function* () {
          yield* RateLimitedSupervisor.startChild(yield* Spawner, crasher(finalized))
          return yield* Effect.never
        }).pipe(Effect.provide(Spawner.layer))
      )
      assert.strictEqual(failureTag(exit), "RestartIntensityExceeded")
    })
  )

  it.effect(
    "DynamicSupervisor.Service.launch runs until interrupted (a supervisor that does not give up never ends it)",
    () =>
      Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(Workers.launch)
        yield* Effect.yieldNow
        assert.isUndefined(fiber.pollUnsafe())
        yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.hasInterrupts(exit))
      })
  )
})

describe("under NodeRuntime.runMain", () => {
  it("a program whose supervisor gives up exits non-zero and logs the give-up", () => {
    const here = fileURLToPath(new URL("../..", import.meta.url))
    for (const mode of ["layer-launch", "provide", "service-launch"]) {
      const r = spawnSync(process.execPath, ["--import", "tsx", "test/fixtures/give-up.ts", mode], {
        cwd: here,
        encoding: "utf8",
        timeout: 20_000
      })
      const out = r.stdout + r.stderr
      assert.strictEqual(r.status, 1, `${mode}: ${out}`)
      assert.include(out, "the supervisor gave up", mode)
      assert.include(out, "started crasher", mode)
      assert.notInclude(out, "program went on", mode)
    }
  }, 60_000)
})
