import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Option, Stream } from "effect"
import { Task, TaskSupervisor } from "effect-otp"

describe("smoke", () => {
  it.live("async/await", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const t = yield* TaskSupervisor.async(sup, Effect.as(Effect.yieldNow, 42))
      assert.strictEqual(yield* Task.await(t), 42)
      const t2 = yield* TaskSupervisor.asyncNolink(sup, Effect.fail("boom"))
      const y = yield* Task.yield(t2)
      assert.deepStrictEqual(y, Option.some(Exit.fail("boom")))
      const out = yield* Stream.runCollect(
        TaskSupervisor.asyncStream(sup, [1, 2, 3, 4], (n) => Effect.as(Effect.sleep(`${5 - n} millis`), n * 2), {
          maxConcurrency: 2
        })
      )
      assert.deepStrictEqual(
        out.map((e) => (Exit.isSuccess(e) ? e.value : undefined)),
        [2, 4, 6, 8]
      )
      const c = yield* TaskSupervisor.countChildren(sup)
      assert.strictEqual(c.active, 0)
    }).pipe(Effect.scoped)
  )
})
