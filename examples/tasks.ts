/**
 * A supervised parallel map: 1,000 inputs through `TaskSupervisor.asyncStream`,
 * 8 at a time, each task bounded by a timeout — Elixir's
 * `Task.Supervisor.async_stream_nolink(MyApp.TaskSupervisor, inputs, &work/1,
 * max_concurrency: 8, timeout: 500, on_timeout: :kill_task, zip_input_on_exit: true)`.
 *
 * One input hangs: its task is stopped at its timeout and reported, and the
 * map goes on. One input fails: its failure is reported with its input. The
 * rest complete, in input order, and when the stream ends the supervisor has
 * no children left.
 *
 * Run with `npm run example:tasks`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Data, Effect, Exit, Fiber, Stream } from "effect"
import { TaskSupervisor } from "../src/index.ts"

class InvalidInput extends Data.TaggedError("InvalidInput")<{ readonly input: number }> {}

class Tasks extends TaskSupervisor.Service<Tasks>()("MyApp/TaskSupervisor") {}

const SLOW = 500
const BAD = 777

/** the work per input: a few milliseconds, except for two inputs */
const work = (n: number): Effect.Effect<number, InvalidInput> => {
  if (n === SLOW) return Effect.as(Effect.never, n) // hangs: stopped at its timeout
  if (n === BAD) return Effect.fail(new InvalidInput({ input: n }))
  return Effect.as(Effect.sleep(1 + (n % 4)), n * 2)
}

/** why an item did not produce a value */
const reason = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause) as { _tag?: string; timeout?: number }
  return error._tag === "TaskTimeout"
    ? `timed out after ${error.timeout} ms: its task was stopped`
    : `failed with ${error._tag ?? String(error)}`
}

const program = Effect.gen(function* () {
  const sup = yield* Tasks
  const inputs = Array.from({ length: 1000 }, (_, i) => i + 1)
  yield* Effect.log(`1. the task supervisor starts with ${(yield* TaskSupervisor.countChildren(sup)).active} children`)
  yield* Effect.log(`2. mapping ${inputs.length} inputs, 8 tasks at a time, 300 ms allowed per task`)

  // look at the supervisor while the map runs
  const peek = yield* Effect.forkChild(
    Effect.andThen(Effect.sleep("100 millis"), TaskSupervisor.countChildren(sup)).pipe(
      Effect.flatMap((c) => Effect.log(`   (100 ms in: ${c.active} tasks running under the supervisor)`))
    )
  )

  const started = Date.now()
  let ok = 0
  let sum = 0
  yield* TaskSupervisor.asyncStreamNolink(sup, inputs, work, {
    maxConcurrency: 8,
    timeout: "300 millis",
    onTimeout: "killTask",
    zipInputOnExit: true
  }).pipe(
    Stream.runForEach((exit) => {
      if (Exit.isSuccess(exit)) {
        ok++
        sum += exit.value
        return Effect.void
      }
      const failure = Cause.squash(exit.cause) as { input: number; cause: Cause.Cause<unknown> }
      return Effect.log(`   input ${failure.input} ${reason(failure.cause)}`)
    })
  )
  yield* Fiber.join(peek)

  yield* Effect.log(`3. done in ${Date.now() - started} ms: ${ok} values (sum ${sum}), 2 inputs reported`)
  yield* Effect.log(`4. children left under the supervisor: ${(yield* TaskSupervisor.countChildren(sup)).active}`)
})

program.pipe(Effect.provide(Tasks.layer), NodeRuntime.runMain)
