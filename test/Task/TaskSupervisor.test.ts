/**
 * TaskSupervisor: make, async, asyncNolink, startChild, terminateChild,
 * children/countChildren and shutdown — Elixir's task/supervisor_test.exs
 * cases marked Y/A (§9.6) and reliability C.5.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Logger,
  Metric,
  Option,
  Ref,
  References,
  Scheduler,
  Scope,
  Stream
} from "effect"
import { TestClock } from "effect/testing"
import { DynamicSupervisor, Task, TaskSupervisor } from "effect-otp"

const live = (sup: TaskSupervisor.TaskSupervisor) => Effect.map(TaskSupervisor.countChildren(sup), (c) => c.active)

/** A task body whose interruption takes `cleanup` to finish, counting finished cleanups in `done`. */
const slowToStop = (done: Ref.Ref<number>, cleanup: Duration.Input) =>
  Effect.onInterrupt(Effect.never, () =>
    Effect.andThen(
      Effect.sleep(cleanup),
      Ref.update(done, (n) => n + 1)
    )
  )

describe("TaskSupervisor.make", () => {
  it.effect("starts with no children (T-TSUP #4)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      assert.deepStrictEqual(yield* TaskSupervisor.children(sup), [])
      assert.deepStrictEqual(yield* TaskSupervisor.countChildren(sup), {
        specs: 0,
        active: 0,
        supervisors: 0,
        workers: 0
      })
    }).pipe(Effect.scoped)
  )

  it.effect("rejects bad options with InvalidOptions naming the field", () =>
    Effect.gen(function* () {
      const e1 = yield* Effect.flip(TaskSupervisor.make({ maxChildren: -1 }))
      assert.strictEqual(e1.field, "maxChildren")
      assert.strictEqual(e1.value, -1)
      const e2 = yield* Effect.flip(TaskSupervisor.make({ maxSeconds: 0 }))
      assert.strictEqual(e2.field, "maxSeconds")
      const e3 = yield* Effect.flip(TaskSupervisor.make({ maxRestarts: 1.5 }))
      assert.strictEqual(e3.field, "maxRestarts")
    }).pipe(Effect.scoped)
  )

  it.effect("closing its Scope stops every task by its shutdown policy, concurrently", () =>
    Effect.gen(function* () {
      const done = yield* Ref.make(0)
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(TaskSupervisor.make(), scope)
      yield* TaskSupervisor.asyncNolink(sup, slowToStop(done, "1 second"))
      yield* TaskSupervisor.asyncNolink(sup, slowToStop(done, "1 second"))
      yield* TaskSupervisor.startChild(sup, slowToStop(done, "1 second"))
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      assert.strictEqual(yield* Ref.get(done), 3)
      const error = yield* Effect.flip(TaskSupervisor.async(sup, Effect.void))
      assert.strictEqual(error._tag, "SupervisorStopped")
    })
  )

  it.effect(
    "a task with shutdown brutalKill is not waited for when the supervisor stops (T-TSUP #6, #11, reliability C.5 #60)",
    () =>
      Effect.gen(function* () {
        const done = yield* Ref.make(0)
        const scope = yield* Scope.make()
        const sup = yield* Scope.provide(TaskSupervisor.make(), scope)
        yield* TaskSupervisor.async(sup, slowToStop(done, "1 minute"), { shutdown: "brutalKill" })
        yield* TaskSupervisor.asyncNolink(sup, slowToStop(done, "1 minute"), { shutdown: "brutalKill" })
        // completes without any time passing
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(yield* Ref.get(done), 0)
      })
  )

  it.effect("a Service class provides a named supervisor through its layer", () =>
    Effect.gen(function* () {
      class Tasks extends TaskSupervisor.Service<Tasks>()("test/Tasks", { maxChildren: 1 }) {}
      const value = yield* Effect.gen(function* () {
        const sup = yield* Tasks
        assert.strictEqual(sup.name, "test/Tasks")
        return yield* Task.await(yield* TaskSupervisor.async(sup, Effect.succeed(3)))
      }).pipe(Effect.provide(Tasks.layer))
      assert.strictEqual(value, 3)
    })
  )
})

describe("TaskSupervisor.async", () => {
  it.effect("starts a task under the supervisor, owned by the caller (T-TSUP #5)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const gate = yield* Deferred.make<void>()
      const task = yield* TaskSupervisor.async(sup, Effect.as(Deferred.await(gate), "reply"))
      assert.deepStrictEqual(yield* TaskSupervisor.children(sup), [task.pid])
      assert.strictEqual(task.owner, (yield* Effect.fiber).id)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Task.await(task), "reply")
      assert.deepStrictEqual(yield* TaskSupervisor.children(sup), [])
    }).pipe(Effect.scoped)
  )

  it.effect("the caller's failure stops its tasks", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const caller = yield* Effect.forkChild(
        Effect.andThen(
          TaskSupervisor.async(sup, Effect.never),
          Effect.andThen(Effect.sleep("1 second"), Effect.fail("caller failed"))
        )
      )
      yield* Effect.yieldNow
      assert.strictEqual(yield* live(sup), 1)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.await(caller), Exit.fail("caller failed"))
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("the caller's interruption stops its tasks", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const caller = yield* Effect.forkChild(Effect.andThen(TaskSupervisor.async(sup, Effect.never), Effect.never))
      yield* Effect.yieldNow
      assert.strictEqual(yield* live(sup), 1)
      yield* Fiber.interrupt(caller)
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("a caller that ends normally leaves its unfinished task to the supervisor", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const gate = yield* Deferred.make<void>()
      const task = yield* Fiber.join(
        yield* Effect.forkChild(TaskSupervisor.async(sup, Effect.as(Deferred.await(gate), "done")))
      )
      assert.strictEqual(yield* live(sup), 1)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Task.await(task), "done")
    }).pipe(Effect.scoped)
  )

  it.effect("tasks started from concurrent helper fibers run on after the helpers return", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const tasks = yield* Effect.forEach(
        [1, 2, 3],
        (n) => TaskSupervisor.async(sup, Effect.as(Effect.sleep("10 millis"), n)),
        { concurrency: "unbounded" }
      )
      const fiber = yield* Effect.forkChild(Task.awaitMany(tasks))
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [1, 2, 3])
    }).pipe(Effect.scoped)
  )

  it.effect("fails with MaxChildren when full, and the supervisor stays healthy (T-TSUP #7, reliability C.5 #61)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make({ maxChildren: 1 })
      const first = yield* TaskSupervisor.async(sup, Effect.never)
      const error = yield* Effect.flip(TaskSupervisor.async(sup, Effect.void))
      assert.strictEqual(error._tag, "MaxChildren")
      yield* Task.shutdown(first)
      const again = yield* TaskSupervisor.async(sup, Effect.succeed("ok"))
      assert.strictEqual(yield* Task.await(again), "ok")
    }).pipe(Effect.scoped)
  )

  it.effect("the task runs with the caller's context (reliability C.5 #64)", () =>
    Effect.gen(function* () {
      class Greeting extends Context.Service<Greeting, string>()("test/Greeting") {}
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.async(
        sup,
        Effect.gen(function* () {
          return yield* Greeting
        })
      ).pipe(Effect.provideService(Greeting, "hello"))
      assert.strictEqual(yield* Task.await(task), "hello")
    }).pipe(Effect.scoped)
  )

  it.effect("the task logs with the caller's log annotations (reliability C.5 #64)", () =>
    Effect.gen(function* () {
      const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
      const logger = Logger.make((o) => {
        lines.push({
          message: o.message,
          annotations: { ...(o.fiber.getRef(References.CurrentLogAnnotations) as object) }
        })
      })
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.async(sup, Effect.log("from the task")).pipe(
        Effect.annotateLogs({ request: "r-42" }),
        Effect.provideService(Logger.CurrentLoggers, new Set([logger]))
      )
      yield* Task.await(task)
      const line = lines.find((l) => String(l.message).includes("from the task"))
      assert.strictEqual(line?.annotations["request"], "r-42")
    }).pipe(Effect.scoped)
  )

  it.effect("each task has its own Scope, released when the task ends", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const released = yield* Ref.make(false)
      const task = yield* TaskSupervisor.async(
        sup,
        Effect.andThen(
          Effect.addFinalizer(() => Ref.set(released, true)),
          Effect.succeed(1)
        )
      )
      assert.strictEqual(yield* Task.await(task), 1)
      assert.isTrue(yield* Ref.get(released))
    }).pipe(Effect.scoped)
  )

  it.effect("rejects an invalid shutdown with InvalidOptions", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const error = yield* Effect.flip(TaskSupervisor.async(sup, Effect.void, { shutdown: -5 }))
      assert.strictEqual(error._tag === "InvalidOptions" && error.field, "shutdown")
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.asyncNolink", () => {
  it.effect("the caller's end does not stop the task (T-TSUP #10)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const gate = yield* Deferred.make<void>()
      const caller = yield* Effect.forkChild(TaskSupervisor.asyncNolink(sup, Effect.as(Deferred.await(gate), "done")))
      const task = yield* Fiber.join(caller)
      assert.isUndefined(task.owner)
      assert.strictEqual(yield* live(sup), 1)
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Task.yield(task), Option.some(Exit.succeed("done")))
    }).pipe(Effect.scoped)
  )

  it.effect("a failure does not take the caller down (reliability C.5 #58)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.andThen(Effect.sleep("1 millis"), Effect.die("crash")))
      yield* TestClock.adjust("1 millis")
      const result = yield* Task.yield(task)
      assert.isTrue(Option.isSome(result) && Exit.hasDies(result.value))
    }).pipe(Effect.scoped)
  )

  it.effect("fails with MaxChildren when full (T-TSUP #12)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make({ maxChildren: 1 })
      yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      const error = yield* Effect.flip(TaskSupervisor.asyncNolink(sup, Effect.void))
      assert.strictEqual(error._tag, "MaxChildren")
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.startChild", () => {
  it.effect("runs the task unowned (T-TSUP #14)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const ran = yield* Deferred.make<string>()
      yield* Effect.forkChild(TaskSupervisor.startChild(sup, Deferred.succeed(ran, "ran")))
      assert.strictEqual(yield* Deferred.await(ran), "ran")
    }).pipe(Effect.scoped)
  )

  it.effect("a permanent task is re-run from scratch after it ends (T-TSUP #17)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const runs = yield* Ref.make(0)
      yield* TaskSupervisor.startChild(
        sup,
        Effect.andThen(
          Ref.update(runs, (n) => n + 1),
          Effect.sleep("1 second")
        ),
        {
          restart: "permanent"
        }
      )
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      assert.isAtLeast(yield* Ref.get(runs), 2)
      assert.strictEqual(yield* live(sup), 1)
    }).pipe(Effect.scoped)
  )

  it.effect("a transient task is re-run after a failure", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const runs = yield* Ref.make(0)
      yield* TaskSupervisor.startChild(
        sup,
        Effect.flatMap(
          Ref.updateAndGet(runs, (n) => n + 1),
          (n) => (n < 3 ? Effect.fail("not yet") : Effect.void)
        ),
        { restart: "transient" }
      )
      for (let i = 0; i < 20 && (yield* Ref.get(runs)) < 3; i++) yield* Effect.yieldNow
      assert.strictEqual(yield* Ref.get(runs), 3)
    }).pipe(Effect.scoped)
  )

  it.effect("counts against maxChildren together with async tasks", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make({ maxChildren: 2 })
      yield* TaskSupervisor.async(sup, Effect.never)
      yield* TaskSupervisor.startChild(sup, Effect.never)
      assert.strictEqual((yield* Effect.flip(TaskSupervisor.startChild(sup, Effect.never)))._tag, "MaxChildren")
      assert.strictEqual((yield* Effect.flip(TaskSupervisor.async(sup, Effect.never)))._tag, "MaxChildren")
      assert.strictEqual(yield* live(sup), 2)
    }).pipe(Effect.scoped)
  )

  it.effect("concurrent starts of every kind never exceed maxChildren, whatever the scheduler's yield frequency", () =>
    Effect.gen(function* () {
      for (let ops = 3; ops <= 24; ops++) {
        const result = yield* Effect.gen(function* () {
          const sup = yield* TaskSupervisor.make({ maxChildren: 3 })
          const exits = yield* Effect.forEach(
            Array.from({ length: 12 }, (_, i) => i),
            (i) =>
              Effect.exit<unknown, unknown, never>(
                i % 2 === 0 ? TaskSupervisor.startChild(sup, Effect.never) : TaskSupervisor.async(sup, Effect.never)
              ),
            { concurrency: "unbounded" }
          )
          return [exits.filter(Exit.isSuccess).length, yield* live(sup)]
        }).pipe(Effect.scoped, Effect.provideService(Scheduler.MaxOpsBeforeYield, ops))
        assert.deepStrictEqual(result, [3, 3], `MaxOpsBeforeYield ${ops}`)
      }
    })
  )

  it.effect("rejects shutdown infinity, as Elixir does for tasks", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const error = yield* Effect.flip(TaskSupervisor.startChild(sup, Effect.void, { shutdown: "infinity" as any }))
      assert.strictEqual(error._tag, "InvalidOptions")
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.terminateChild", () => {
  it.effect("stops a task, then reports ChildNotFound (T-TSUP #19)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      yield* TaskSupervisor.terminateChild(sup, task)
      assert.deepStrictEqual(yield* TaskSupervisor.children(sup), [])
      const error = yield* Effect.flip(TaskSupervisor.terminateChild(sup, task))
      assert.strictEqual(error._tag, "ChildNotFound")
    }).pipe(Effect.scoped)
  )

  it.effect("stops a startChild task", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const child = yield* TaskSupervisor.startChild(sup, Effect.never)
      assert.strictEqual(yield* live(sup), 1)
      yield* TaskSupervisor.terminateChild(sup, child)
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.whichChildren", () => {
  it.effect("lists startChild children and running tasks, all workers", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const child = yield* TaskSupervisor.startChild(sup, Effect.never)
      const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      const all = yield* TaskSupervisor.whichChildren(sup)
      assert.deepStrictEqual(
        all.map((c) => [c.pid, c.type]),
        [
          [child.pid, "worker"],
          [task.pid, "worker"]
        ]
      )
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.childSpec", () => {
  it.effect("runs a task supervisor as a child of another supervisor (T-TSUP #1)", () =>
    Effect.gen(function* () {
      const root = yield* DynamicSupervisor.make()
      const child = yield* DynamicSupervisor.startChild(root, TaskSupervisor.childSpec({ name: "tasks" }))
      assert.strictEqual(child.type, "supervisor")
      const task = yield* TaskSupervisor.async(child.handle, Effect.succeed("hi"))
      assert.strictEqual(yield* Task.await(task), "hi")
      const stuck = yield* TaskSupervisor.asyncNolink(child.handle, Effect.never)
      // terminating the child stops its tasks
      yield* DynamicSupervisor.terminateChild(root, child)
      assert.isDefined(stuck.fiber.pollUnsafe())
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.await", () => {
  it.effect(
    "fails with RestartIntensityExceeded when restarted tasks exceed the intensity, after stopping every task",
    () =>
      Effect.gen(function* () {
        const sup = yield* TaskSupervisor.make({ maxRestarts: 1 })
        const bystander = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
        const waiting = yield* Effect.forkChild(TaskSupervisor.await(sup))
        yield* TaskSupervisor.startChild(sup, Effect.fail("crash"), { restart: "transient" })
        const exit = yield* Fiber.await(waiting)
        assert.isTrue(Exit.isFailure(exit))
        const error = yield* Effect.flip(Fiber.join(waiting))
        assert.strictEqual(error._tag, "RestartIntensityExceeded")
        assert.isDefined(bystander.fiber.pollUnsafe())
        const refused = yield* Effect.flip(TaskSupervisor.async(sup, Effect.void))
        assert.strictEqual(refused._tag, "SupervisorStopped")
      }).pipe(Effect.scoped, Effect.provideService(Logger.CurrentLoggers, new Set()))
  )

  it.effect("succeeds when its Scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(TaskSupervisor.make(), scope)
      const waiting = yield* Effect.forkChild(TaskSupervisor.await(sup))
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* Fiber.await(waiting), Exit.void)
    })
  )
})

describe("TaskSupervisor metrics", () => {
  it.effect("the effect_otp_tasks_active gauge follows the running tasks", () =>
    Effect.gen(function* () {
      const name = "tasks-gauge-test"
      // the gauge is brought up to date at the end of each tick
      const value = Effect.andThen(
        Effect.yieldNow,
        Effect.map(Metric.snapshot, (all) => {
          const m = all.find((m) => m.id === "effect_otp_tasks_active" && m.attributes?.["supervisor"] === name)
          return (m?.state as { readonly value?: number } | undefined)?.value
        })
      )
      const sup = yield* TaskSupervisor.make({ name })
      const a = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      yield* TaskSupervisor.asyncNolink(sup, Effect.never)
      assert.strictEqual(yield* value, 2)
      yield* Task.shutdown(a)
      assert.strictEqual(yield* value, 1)
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(TaskSupervisor.asyncStream(sup, [1, 2, 3], () => Effect.never, { maxConcurrency: 3 }))
      )
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      assert.strictEqual(yield* value, 4)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* value, 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
