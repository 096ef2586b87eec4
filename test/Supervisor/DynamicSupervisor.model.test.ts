/**
 * Model-based property test (reliability C.2 #34, technique B.6): random
 * sequences of startChild / terminateChild / child exits / countChildren are
 * run against a model of the expected children. Afterwards the supervisor is
 * closed and every incarnation's finalizer must have run exactly once, with no
 * child left running. Each sequence runs once with Effect's default scheduler
 * and once with the scheduler forced to yield every few operations
 * (house-style §4.5), where interleavings hide.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Logger, Scheduler, Scope } from "effect"
import * as fc from "fast-check"
import { ChildSpec, DynamicSupervisor } from "effect-otp"

type Restart = ChildSpec.Restart
type How = "normal" | "failure" | "defect"
type Command =
  | { readonly _tag: "start"; readonly restart: Restart; readonly failStart: boolean }
  | { readonly _tag: "terminate"; readonly index: number }
  | { readonly _tag: "exit"; readonly index: number; readonly how: How }
  | { readonly _tag: "count" }

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    _tag: fc.constant("start" as const),
    restart: fc.constantFrom<Restart>("permanent", "transient", "temporary"),
    failStart: fc.boolean()
  }),
  fc.record({ _tag: fc.constant("terminate" as const), index: fc.nat(20) }),
  fc.record({
    _tag: fc.constant("exit" as const),
    index: fc.nat(20),
    how: fc.constantFrom<How>("normal", "failure", "defect")
  }),
  fc.constant({ _tag: "count" as const })
)

interface ModelChild {
  readonly name: string
  readonly restart: Restart
}

const MAX_CHILDREN = 6

const survives = (restart: Restart, how: How) =>
  restart === "permanent" || (restart === "transient" && how !== "normal")

const runCommands = (commands: ReadonlyArray<Command>) =>
  Effect.gen(function* () {
    // per incarnation: how many times its finalizer ran
    const released = new Map<string, number>()
    let acquired = 0
    const controls = new Map<string, Deferred.Deferred<void, string>>()
    const model: Array<ModelChild> = []
    let seq = 0

    const spec = (name: string, restart: Restart, failStart: boolean) => {
      let n = 0
      return ChildSpec.make({
        id: name,
        restart,
        start: Effect.gen(function* () {
          const key = `${name}#${++n}`
          yield* Effect.acquireRelease(
            Effect.sync(() => {
              acquired++
              released.set(key, 0)
            }),
            () => Effect.sync(() => released.set(key, released.get(key)! + 1))
          )
          if (failStart) return yield* Effect.fail("no")
          const d = yield* Deferred.make<void, string>()
          controls.set(name, d)
          return d
        }),
        run: (d) => Deferred.await(d)
      })
    }

    const scope = yield* Scope.make()
    const sup = yield* Scope.provide(
      DynamicSupervisor.make({ maxChildren: MAX_CHILDREN, maxRestarts: 1_000_000 }),
      scope
    )
    const settle = Effect.gen(function* () {
      for (let i = 0; i < 30; i++) yield* Effect.yieldNow
    })
    const expectCounts = Effect.gen(function* () {
      yield* settle
      const c = yield* DynamicSupervisor.countChildren(sup)
      assert.deepStrictEqual(c, { specs: model.length, active: model.length, supervisors: 0, workers: model.length })
      const ids = (yield* DynamicSupervisor.whichChildren(sup)).map((i) => i.id).sort()
      assert.deepStrictEqual(ids, model.map((m) => m.name).sort())
    })

    for (const cmd of commands) {
      switch (cmd._tag) {
        case "start": {
          const name = `c${++seq}`
          const result = yield* Effect.result(DynamicSupervisor.startChild(sup, spec(name, cmd.restart, cmd.failStart)))
          if (model.length >= MAX_CHILDREN) {
            assert.isTrue(result._tag === "Failure" && (result.failure as any)._tag === "MaxChildren")
          } else if (cmd.failStart) {
            assert.isTrue(result._tag === "Failure" && result.failure === "no")
          } else {
            assert.strictEqual(result._tag, "Success")
            model.push({ name, restart: cmd.restart })
          }
          break
        }
        case "terminate": {
          if (model.length === 0) break
          const target = model[cmd.index % model.length]!
          const info = (yield* DynamicSupervisor.whichChildren(sup)).find((i) => i.id === target.name)!
          yield* DynamicSupervisor.terminateChild(sup, info)
          model.splice(model.indexOf(target), 1)
          break
        }
        case "exit": {
          if (model.length === 0) break
          const target = model[cmd.index % model.length]!
          const d = controls.get(target.name)!
          if (cmd.how === "normal") yield* Deferred.succeed(d, undefined)
          else if (cmd.how === "failure") yield* Deferred.fail(d, "boom")
          else yield* Deferred.die(d, new Error("defect"))
          if (!survives(target.restart, cmd.how)) {
            model.splice(model.indexOf(target), 1)
          } else {
            // the next command addresses the new incarnation: wait until the restart has
            // completed (its start ran and the supervisor moved the child to its new pid)
            const running = () =>
              DynamicSupervisor.whichChildrenUnsafe(sup)?.some((i) => i.id === target.name && i.child !== "restarting")
            while (controls.get(target.name) === d || !running()) yield* Effect.yieldNow
          }
          break
        }
        case "count":
          yield* expectCounts
      }
    }
    yield* expectCounts
    yield* Scope.close(scope, Exit.void)
    // nothing runs any more, and every finalizer ran exactly once
    assert.strictEqual(released.size, acquired)
    for (const [key, times] of released) assert.strictEqual(times, 1, key)
  })

describe("DynamicSupervisor model", () => {
  // crash reports are expected here; keep them out of the test output
  const logless = <A, E>(self: Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.provideService(self, Logger.CurrentLoggers, new Set()))

  it("random start/terminate/exit sequences match the model; nothing leaks (C.2 #34)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), (commands) => logless(runCommands(commands))),
      { numRuns: 300, timeout: 5_000 }
    )
  })

  it("the same holds when the scheduler yields every few operations (house-style §4.5)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), fc.integer({ min: 3, max: 64 }), (commands, ops) =>
        logless(runCommands(commands).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)))
      ),
      { numRuns: 300, timeout: 5_000 }
    )
  })
})
