/**
 * Task: await, yield, yieldMany, shutdown, ignore — Elixir's task_test.exs
 * cases marked Y/A (§9.7) and reliability C.5.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Ref, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { Task, TaskSupervisor } from "effect-otp"
import type { InvalidOptions } from "../../src/Errors.ts"

type TaskTimeout = Task.TaskTimeout

const live = (sup: TaskSupervisor.TaskSupervisor) => Effect.map(TaskSupervisor.countChildren(sup), (c) => c.active)

/** A task that runs until released, then returns `value`. */
const gated = <A>(value: A) =>
  Effect.map(Deferred.make<void>(), (gate) => ({
    gate,
    effect: Effect.as(Deferred.await(gate), value)
  }))

describe("Task.await", () => {
  it.effect("returns the task's value", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.async(sup, Effect.as(Effect.sleep("10 millis"), 42))
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(yield* Task.await(task), 42)
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("fails with the task's error (T-TASK #22, reliability C.5 #58)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.async(sup, Effect.fail("oops"))
      const exit = yield* Effect.exit(Task.await(task))
      assert.deepStrictEqual(exit, Exit.fail("oops"))
    }).pipe(Effect.scoped)
  )

  it.effect("fails with the task's defect (T-TASK #21, #25)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.async(sup, Effect.die("unknown"))
      const exit = yield* Effect.exit(Task.await(task))
      assert.isTrue(Exit.hasDies(exit))
    }).pipe(Effect.scoped)
  )

  it.effect("times out with TaskTimeout after 5 s by default, and the task keeps running (T-TASK #19)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const { gate, effect } = yield* gated("late")
      const task = yield* TaskSupervisor.async(sup, effect)
      const waiting = yield* Effect.forkChild(Effect.flip(Task.await(task)))
      yield* TestClock.adjust("4999 millis")
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(waiting)
      assert.strictEqual(error._tag, "TaskTimeout")
      assert.strictEqual((error as TaskTimeout).timeout, 5000)
      assert.strictEqual(yield* live(sup), 1)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Task.await(task), "late")
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect(
    "await(task, 0) times out at once and leaves nothing behind when the task ends (T-TSUP #20, reliability C.5 #59)",
    () =>
      Effect.gen(function* () {
        const sup = yield* TaskSupervisor.make()
        const task = yield* TaskSupervisor.async(sup, Effect.as(Effect.sleep("1 second"), "done"))
        const error = yield* Effect.flip(Task.await(task, 0))
        assert.strictEqual(error._tag, "TaskTimeout")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* live(sup), 0)
        assert.deepStrictEqual(yield* Task.yield(task, 0), Option.some(Exit.succeed("done")))
      }).pipe(Effect.scoped)
  )

  it.effect("a caller that lets the timeout fail it stops the async task with it", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const caller = yield* Effect.forkChild(
        Effect.flatMap(TaskSupervisor.async(sup, Effect.never), (task) => Task.await(task, "1 second"))
      )
      yield* Effect.yieldNow
      assert.strictEqual(yield* live(sup), 1)
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(caller)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("an interrupted task makes await fail with its interruption", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      yield* Task.shutdown(task)
      const exit = yield* Effect.exit(Task.await(task))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
    }).pipe(Effect.scoped)
  )

  it.effect("timeouts of different lengths each fire at their own deadline (one shared timer)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      const long = yield* Effect.forkChild(Effect.flip(Task.await(task, "1 second")))
      const short = yield* Effect.forkChild(Effect.flip(Task.await(task, "100 millis")))
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(((yield* Fiber.join(short)) as TaskTimeout).timeout, 100)
      assert.isUndefined(long.pollUnsafe())
      yield* TestClock.adjust("900 millis")
      assert.strictEqual(((yield* Fiber.join(long)) as TaskTimeout).timeout, 1000)
    }).pipe(Effect.scoped)
  )

  it.effect("an await that was answered leaves no timeout armed", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const { gate, effect } = yield* gated(1)
      const task = yield* TaskSupervisor.asyncNolink(sup, effect)
      const waiting = yield* Effect.forkChild(Task.await(task))
      yield* Effect.yieldNow
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(waiting), 1)
      // the timeout entry was cancelled: moving past its deadline fires nothing
      const other = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      const second = yield* Effect.forkChild(Effect.flip(Task.await(other, "10 seconds")))
      yield* TestClock.adjust("5 seconds")
      assert.isUndefined(second.pollUnsafe())
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* Fiber.join(second))._tag, "TaskTimeout")
    }).pipe(Effect.scoped)
  )

  it.effect("is pipeable", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const value = yield* sup.pipe(TaskSupervisor.async(Effect.succeed(7)), Effect.flatMap(Task.await()))
      assert.strictEqual(value, 7)
    }).pipe(Effect.scoped)
  )

  it.effect(
    "an invalid timeout fails with InvalidOptions naming it, checked first: the same bad call fails whether or not the task has finished",
    () =>
      Effect.gen(function* () {
        const sup = yield* TaskSupervisor.make()
        const running = yield* TaskSupervisor.async(sup, Effect.never)
        const finished = yield* TaskSupervisor.async(sup, Effect.succeed(1))
        yield* Effect.yieldNow
        for (const task of [running, finished]) {
          for (const bad of [-1, Number.NaN, "soon" as never]) {
            const e1 = yield* Effect.flip(Task.await(task, bad))
            assert.strictEqual(e1._tag, "InvalidOptions")
            assert.strictEqual((e1 as InvalidOptions).field, "timeout")
            assert.strictEqual((yield* Effect.flip(Task.yield(task, bad)))._tag, "InvalidOptions")
            assert.strictEqual((yield* Effect.flip(Task.awaitMany([task], bad)))._tag, "InvalidOptions")
            assert.strictEqual((yield* Effect.flip(Task.yieldMany([task], { timeout: bad })))._tag, "InvalidOptions")
            assert.strictEqual((yield* Effect.flip(Task.shutdown(task, bad)))._tag, "InvalidOptions")
          }
        }
      }).pipe(Effect.scoped)
  )
})

describe("Task.awaitMany", () => {
  it.effect("returns the replies in input order, whatever order they come in (T-TASK #29, #30)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const tasks = yield* Effect.forEach([30, 10, 20], (ms) =>
        TaskSupervisor.async(sup, Effect.as(Effect.sleep(ms), ms))
      )
      const fiber = yield* Effect.forkChild(Task.awaitMany(tasks))
      yield* TestClock.adjust("30 millis")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [30, 10, 20])
    }).pipe(Effect.scoped)
  )

  it.effect("returns an empty list at once (T-TASK #31)", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* Task.awaitMany([]), [])
    })
  )

  it.effect("fails with TaskTimeout when the batch runs out of time (T-TASK #34)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const fast = yield* TaskSupervisor.async(sup, Effect.succeed(1))
      const slow = yield* TaskSupervisor.async(sup, Effect.never)
      const fiber = yield* Effect.forkChild(Effect.flip(Task.awaitMany([fast, slow], "1 second")))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "TaskTimeout")
    }).pipe(Effect.scoped)
  )

  it.effect("fails at once with the first failure, without waiting for the others (T-TASK #36, #37, #39)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const slow = yield* TaskSupervisor.async(sup, Effect.never)
      const failing = yield* TaskSupervisor.async(sup, Effect.andThen(Effect.sleep("10 millis"), Effect.fail("oops")))
      const fiber = yield* Effect.forkChild(Task.awaitMany([slow, failing]))
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail("oops"))
    }).pipe(Effect.scoped)
  )
})

describe("Task.awaitMany and Task.yieldMany under scheduler yields", () => {
  it.effect("a task that ends while the caller yields on its way to waiting is not missed", () =>
    Effect.gen(function* () {
      for (let ops = 3; ops <= 30; ops++) {
        const result = yield* Effect.gen(function* () {
          const sup = yield* TaskSupervisor.make()
          const tasks = yield* Effect.forEach([0, 1, 2], (n) =>
            TaskSupervisor.asyncNolink(sup, Effect.as(Effect.yieldNow, n))
          )
          const values = yield* Task.awaitMany(tasks, "infinity")
          const exits = yield* Task.yieldMany(tasks, { timeout: "infinity" })
          return [values, exits.map(Option.isSome)]
        }).pipe(Effect.scoped, Effect.provideService(Scheduler.MaxOpsBeforeYield, ops))
        assert.deepStrictEqual(result, [
          [0, 1, 2],
          [true, true, true]
        ])
      }
    })
  )
})

describe("Task.yield", () => {
  it.effect("returns None on timeout and can be called again (T-TASK #44)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.async(sup, Effect.as(Effect.sleep("2 seconds"), 1))
      const first = yield* Effect.forkChild(Task.yield(task, "1 second"))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(first), Option.none())
      const second = yield* Effect.forkChild(Task.yield(task, "5 seconds"))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(second), Option.some(Exit.succeed(1)))
    }).pipe(Effect.scoped)
  )

  it.effect("returns a failure as a value without failing the caller (reliability C.5 #58)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.fail("abnormal"))
      assert.deepStrictEqual(yield* Task.yield(task), Option.some(Exit.fail("abnormal")))
    }).pipe(Effect.scoped)
  )
})

describe("Task.yieldMany", () => {
  it.effect("returns results from multiple tasks in input order (T-TASK #55)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const a = yield* TaskSupervisor.asyncNolink(sup, Effect.as(Effect.sleep("20 millis"), "a"))
      const b = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      const c = yield* TaskSupervisor.asyncNolink(sup, Effect.andThen(Effect.sleep("10 millis"), Effect.fail("c")))
      const fiber = yield* Effect.forkChild(Task.yieldMany([a, b, c], { timeout: "100 millis" }))
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [
        Option.some(Exit.succeed("a")),
        Option.none(),
        Option.some(Exit.fail("c"))
      ])
    }).pipe(Effect.scoped)
  )

  it.effect("returns None on timeout by default and leaves the task running (T-TASK #49)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      const fiber = yield* Effect.forkChild(Task.yieldMany([task]))
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [Option.none()])
      assert.strictEqual(yield* live(sup), 1)
    }).pipe(Effect.scoped)
  )

  it.effect("stops the unfinished tasks on timeout with onTimeout killTask (T-TASK #50)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      const fiber = yield* Effect.forkChild(Task.yieldMany([task], { timeout: "10 millis", onTimeout: "killTask" }))
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [Option.none()])
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("releases the unfinished tasks from their owner with onTimeout ignore (T-TASK #51)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const { gate, effect } = yield* gated(1)
      const started = yield* Deferred.make<Task.Task<number>>()
      const caller = yield* Effect.forkChild(
        Effect.gen(function* () {
          const task = yield* TaskSupervisor.async(sup, effect)
          yield* Deferred.succeed(started, task)
          yield* Task.yieldMany([task], { timeout: "10 millis", onTimeout: "ignore" })
          return yield* Effect.fail("the caller fails")
        })
      )
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(yield* Fiber.await(caller), Exit.fail("the caller fails"))
      // let every observer of the caller's exit run (this fiber was resumed by the first of them)
      yield* Effect.yieldNow
      const task = yield* Deferred.await(started)
      // the caller failed, and the ignored task runs on
      assert.strictEqual(yield* live(sup), 1)
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Task.yield(task), Option.some(Exit.succeed(1)))
    }).pipe(Effect.scoped)
  )

  it.effect("returns as soon as limit tasks have finished, without applying onTimeout (T-TASK #56, #58)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const fast = yield* TaskSupervisor.asyncNolink(sup, Effect.as(Effect.sleep("10 millis"), "fast"))
      const slow = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      const fiber = yield* Effect.forkChild(
        Task.yieldMany([fast, slow], { limit: 1, timeout: "1 second", onTimeout: "killTask" })
      )
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [Option.some(Exit.succeed("fast")), Option.none()])
      assert.strictEqual(yield* live(sup), 1)
    }).pipe(Effect.scoped)
  )

  it.effect("does not hang when limit exceeds the number of tasks (T-TASK #57, #59)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const a = yield* TaskSupervisor.asyncNolink(sup, Effect.as(Effect.sleep("10 millis"), 1))
      const fiber = yield* Effect.forkChild(Task.yieldMany([a], { limit: 5, timeout: "infinity" }))
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [Option.some(Exit.succeed(1))])
    }).pipe(Effect.scoped)
  )
})

describe("Task.shutdown", () => {
  it.effect("returns None when it stops a running task (T-TASK #63)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      assert.deepStrictEqual(yield* Task.shutdown(task), Option.none())
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("returns the result of a task that already finished (T-TASK #60, #61, #69)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const ok = yield* TaskSupervisor.asyncNolink(sup, Effect.succeed("done"))
      const failed = yield* TaskSupervisor.asyncNolink(sup, Effect.fail("abnormal"))
      assert.deepStrictEqual(yield* Task.shutdown(ok), Option.some(Exit.succeed("done")))
      assert.deepStrictEqual(yield* Task.shutdown(failed, "brutalKill"), Option.some(Exit.fail("abnormal")))
    }).pipe(Effect.scoped)
  )

  it.effect("waits for the task's finalizers up to the timeout", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const cleaned = yield* Ref.make(false)
      const task = yield* TaskSupervisor.asyncNolink(
        sup,
        Effect.onInterrupt(Effect.never, () => Effect.andThen(Effect.sleep("1 second"), Ref.set(cleaned, true)))
      )
      const stopping = yield* Effect.forkChild(Task.shutdown(task, "2 seconds"))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(stopping), Option.none())
      assert.isTrue(yield* Ref.get(cleaned))
    }).pipe(Effect.scoped)
  )

  it.effect("returns TaskKilled when the task does not stop within the timeout (T-TASK #81)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(
        sup,
        Effect.onInterrupt(Effect.never, () => Effect.sleep("1 minute"))
      )
      const stopping = yield* Effect.forkChild(Task.shutdown(task, "1 millis"))
      yield* TestClock.adjust("1 millis")
      const result = yield* Fiber.join(stopping)
      assert.isTrue(Option.isSome(result) && Exit.isFailure(result.value))
      const error = Option.isSome(result) && Exit.isFailure(result.value) ? Cause.squash(result.value.cause) : undefined
      assert.strictEqual((error as Task.TaskKilled)._tag, "TaskKilled")
      // abandoned, not forgotten: it is still counted until it really ends
      assert.strictEqual(yield* live(sup), 1)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("with brutalKill returns None at once, even for a task with a long finalizer (T-TASK #71)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(
        sup,
        Effect.onInterrupt(Effect.never, () => Effect.sleep("1 minute"))
      )
      assert.deepStrictEqual(yield* Task.shutdown(task, "brutalKill"), Option.none())
      // the task's finalizer still runs on its own fiber; let it end so the supervisor's Scope can close
      yield* TestClock.adjust("1 minute")
    }).pipe(Effect.scoped)
  )

  it.effect("returns the exit of a task that ends another way while stopping (T-TASK #64)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(
        sup,
        Effect.uninterruptible(Effect.andThen(Effect.sleep("10 millis"), Effect.fail("abnormal")))
      )
      const stopping = yield* Effect.forkChild(Task.shutdown(task))
      yield* TestClock.adjust("10 millis")
      const result = yield* Fiber.join(stopping)
      // the cause also records the interruption that did not take
      assert.isTrue(Option.isSome(result) && Exit.isFailure(result.value))
      const error = Option.isSome(result) && Exit.isFailure(result.value) ? Cause.squash(result.value.cause) : undefined
      assert.strictEqual(error, "abnormal")
    }).pipe(Effect.scoped)
  )
})

describe("Task.ignore", () => {
  it.effect("returns the result of a task that finished in time (T-TASK #12, #14, #17)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const ok = yield* TaskSupervisor.async(sup, Effect.succeed("ok"))
      const failed = yield* TaskSupervisor.asyncNolink(sup, Effect.fail("oops"))
      assert.deepStrictEqual(yield* Task.ignore(ok), Option.some(Exit.succeed("ok")))
      assert.deepStrictEqual(yield* Task.ignore(failed), Option.some(Exit.fail("oops")))
    }).pipe(Effect.scoped)
  )

  it.effect("returns None for a running task and lets it outlive its owner (T-TASK #13, #15)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const { gate, effect } = yield* gated("late")
      const released = yield* Deferred.make<readonly [Task.Task<string>, Option.Option<Exit.Exit<string>>]>()
      const caller = yield* Effect.forkChild(
        Effect.gen(function* () {
          const task = yield* TaskSupervisor.async(sup, effect)
          yield* Deferred.succeed(released, [task, yield* Task.ignore(task)] as const)
          return yield* Effect.fail("the caller fails")
        })
      )
      assert.deepStrictEqual(yield* Fiber.await(caller), Exit.fail("the caller fails"))
      // let every observer of the caller's exit run (this fiber was resumed by the first of them)
      yield* Effect.yieldNow
      const [task, result] = yield* Deferred.await(released)
      assert.deepStrictEqual(result, Option.none())
      assert.strictEqual(yield* live(sup), 1)
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Task.yield(task), Option.some(Exit.succeed("late")))
    }).pipe(Effect.scoped)
  )
})
