/**
 * A model of a TaskSupervisor's children under random starts, finishes and
 * stops of every kind of task (house-style §4.5): the counts always match the
 * model, `maxChildren` refuses exactly when the model is full, and closing the
 * supervisor leaves no task and no open resource behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Ref, Scheduler, Scope } from "effect"
import * as fc from "fast-check"
import { Task, TaskSupervisor } from "effect-otp"

type Command =
  | { readonly _tag: "start"; readonly kind: "async" | "nolink" | "startChild" }
  | { readonly _tag: "finish"; readonly index: number }
  | { readonly _tag: "stop"; readonly index: number }

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    _tag: fc.constant("start" as const),
    kind: fc.constantFrom("async" as const, "nolink" as const, "startChild" as const)
  }),
  fc.record({ _tag: fc.constant("finish" as const), index: fc.nat() }),
  fc.record({ _tag: fc.constant("stop" as const), index: fc.nat() })
)

interface Live {
  readonly gate: Deferred.Deferred<void>
  readonly stop: Effect.Effect<unknown, unknown>
}

const MAX = 4

const run = (commands: ReadonlyArray<Command>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const sup = yield* Scope.provide(TaskSupervisor.make({ maxChildren: MAX }), scope)
    const open = yield* Ref.make(0)
    const model: Array<Live> = []
    const settle = Effect.gen(function* () {
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
    })
    const expectCount = Effect.gen(function* () {
      yield* settle
      const counts = yield* TaskSupervisor.countChildren(sup)
      assert.strictEqual(counts.active, model.length, "active children")
      assert.strictEqual(yield* Ref.get(open), model.length, "open resources")
    })
    for (const cmd of commands) {
      switch (cmd._tag) {
        case "start": {
          const gate = yield* Deferred.make<void>()
          const body = Effect.acquireUseRelease(
            Ref.update(open, (n) => n + 1),
            () => Deferred.await(gate),
            () => Ref.update(open, (n) => n - 1)
          )
          const exit = yield* Effect.exit(
            cmd.kind === "async"
              ? Effect.map(TaskSupervisor.async(sup, body), (t) => Effect.orDie(Task.shutdown(t)))
              : cmd.kind === "nolink"
                ? Effect.map(TaskSupervisor.asyncNolink(sup, body), (t) => Effect.orDie(Task.shutdown(t)))
                : Effect.map(TaskSupervisor.startChild(sup, body), (c) =>
                    Effect.catch(TaskSupervisor.terminateChild(sup, c), () => Effect.void)
                  )
          )
          if (model.length >= MAX) {
            assert.isTrue(Exit.isFailure(exit), "a start beyond maxChildren is refused")
          } else {
            assert.isTrue(Exit.isSuccess(exit), "a start below maxChildren succeeds")
            if (Exit.isSuccess(exit)) model.push({ gate, stop: exit.value })
          }
          break
        }
        case "finish": {
          if (model.length === 0) break
          const [live] = model.splice(cmd.index % model.length, 1)
          yield* Deferred.succeed(live!.gate, undefined)
          break
        }
        case "stop": {
          if (model.length === 0) break
          const [live] = model.splice(cmd.index % model.length, 1)
          yield* live!.stop
          break
        }
      }
      yield* expectCount
    }
    yield* Scope.close(scope, Exit.void)
    assert.strictEqual(yield* Ref.get(open), 0, "every task released its resources")
    const after = yield* Effect.exit(TaskSupervisor.countChildren(sup))
    assert.isTrue(Exit.isFailure(after), "a stopped supervisor reports SupervisorStopped")
  })

describe("TaskSupervisor model", () => {
  it("random starts, finishes and stops of every kind of task match the model; nothing leaks", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 30 }), (commands) => Effect.runPromise(run(commands))),
      { numRuns: 200 }
    )
  })

  it("the same holds when the scheduler yields every few operations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 30 }), fc.integer({ min: 3, max: 64 }), (commands, ops) =>
        Effect.runPromise(run(commands).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)))
      ),
      { numRuns: 200 }
    )
  })
})
