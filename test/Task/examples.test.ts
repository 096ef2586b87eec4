/**
 * The JSDoc examples of the Task modules, run as written (house-style §4.4: examples are executed).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Option, Stream } from "effect"
import { DynamicSupervisor, Task, TaskSupervisor } from "effect-otp"

describe("Task module examples", () => {
  it.effect("Task.await: awaiting an async task", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.async(sup, Effect.succeed(21 * 2))
      assert.strictEqual(yield* Task.await(task), 42)
    }).pipe(Effect.scoped)
  )

  it.effect("Task.awaitMany: three lookups", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const tasks = yield* Effect.forEach([1, 3, 9], (n) => TaskSupervisor.async(sup, Effect.succeed(n)))
      assert.deepStrictEqual(yield* Task.awaitMany(tasks), [1, 3, 9])
    }).pipe(Effect.scoped)
  )

  it.effect("TaskSupervisor.childSpec: a task supervisor under a dynamic supervisor", () =>
    Effect.gen(function* () {
      const root = yield* DynamicSupervisor.make()
      const child = yield* DynamicSupervisor.startChild(root, TaskSupervisor.childSpec({ name: "tasks" }))
      const task = yield* TaskSupervisor.async(child.handle, Effect.succeed("hi"))
      assert.strictEqual(yield* Task.await(task), "hi")
    }).pipe(Effect.scoped)
  )

  it.effect("TaskSupervisor.asyncNolink: a task that fails without harming the caller", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.fail("boom"))
      assert.deepStrictEqual(yield* Task.yield(task), Option.some(Exit.fail("boom")))
    }).pipe(Effect.scoped)
  )

  it.effect("TaskSupervisor.asyncStream: a supervised parallel map", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const values = yield* Stream.range(1, 5).pipe(
        TaskSupervisor.asyncStream(sup, (n: number) => Effect.succeed(n * n), { maxConcurrency: 2 }),
        Stream.mapEffect((exit) => exit),
        Stream.runCollect
      )
      assert.deepStrictEqual(values, [1, 4, 9, 16, 25])
    }).pipe(Effect.scoped)
  )

  it.effect("TaskSupervisor.asyncStreamNolink: reporting failures as values", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exits = yield* Stream.runCollect(
        TaskSupervisor.asyncStreamNolink(sup, [1, 2, 3], (n) => (n === 2 ? Effect.fail("two") : Effect.succeed(n)))
      )
      assert.deepStrictEqual(exits, [Exit.succeed(1), Exit.fail("two"), Exit.succeed(3)])
    }).pipe(Effect.scoped)
  )
})
