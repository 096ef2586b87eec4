/**
 * TaskSupervisor.asyncStream / asyncStreamNolink — Elixir's async_stream
 * cases (T-TASK #83–#114, run for maxConcurrency 4, 2 and 8; T-TSUP #24–#44),
 * reliability C.5 #62/#63, early halt, timeouts on TestClock, the bounded
 * reorder buffer, and a property against Effect.forEach.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Ref, Scheduler, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { TaskSupervisor } from "effect-otp"

type Sup = TaskSupervisor.TaskSupervisor

const live = (sup: Sup) => Effect.map(TaskSupervisor.countChildren(sup), (c) => c.active)

/** sleeps n × 10 ms, then returns n */
const sleepy = (n: number) => Effect.as(Effect.sleep(n * 10), n)

/** an Exit as a short label: "ok:v", "exit:error" */
const label = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return `ok:${String(exit.value)}`
  const error = Cause.squash(exit.cause)
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const tagged = error as { _tag: string; input?: unknown; cause?: Cause.Cause<unknown> }
    if (tagged._tag === "TaskExited") {
      return `exit:${String(tagged.input)}:${label(Exit.failCause(tagged.cause!))}`.replace(/:exit:/, ":")
    }
    return `exit:${tagged._tag}`
  }
  return `exit:${String(error)}`
}

/** Runs a stream to the end in a fiber while time advances by `time`. */
const collect = <A, E>(stream: Stream.Stream<A, E>, time: number = 10_000) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Stream.runCollect(stream))
    yield* TestClock.adjust(time)
    return yield* Fiber.await(fiber)
  })

/**
 * As `collect`, but advances the clock 1 ms at a time, letting the stream's
 * fibers run in between: under a scheduler that yields every few operations a
 * single `adjust` may pass before a task has even started its sleep.
 */
const collectPatiently = <A, E>(
  stream: Stream.Stream<A, E>,
  limit: number = 5_000
): Effect.Effect<Exit.Exit<Array<A>, E | string>> =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Stream.runCollect(stream))
    for (let t = 0; t < limit && fiber.pollUnsafe() === undefined; t++) {
      yield* Effect.yieldNow
      yield* TestClock.adjust(1)
    }
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) return exit
    yield* Fiber.interrupt(fiber)
    return Exit.fail(`the stream did not end within ${limit} ms`)
  })

const labels = <E>(exit: Exit.Exit<ReadonlyArray<Exit.Exit<unknown, unknown>>, E>) =>
  Exit.isSuccess(exit) ? exit.value.map(label) : [`failed:${label(exit as Exit.Exit<never, unknown>)}`]

describe.each([4, 2, 8])("TaskSupervisor.asyncStream with maxConcurrency %i", (maxConcurrency) => {
  it.effect("streams an enumerable (T-TASK #94, T-TSUP #24)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(TaskSupervisor.asyncStream(sup, [1, 2, 3, 4], sleepy, { maxConcurrency }))
      assert.deepStrictEqual(labels(exit), ["ok:1", "ok:2", "ok:3", "ok:4"])
      // T-TASK #96: nothing is left behind
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("emits in input order with the slowest first (T-TASK #97, T-TSUP #27, reliability C.5 #63)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(TaskSupervisor.asyncStream(sup, [4, 3, 2, 1], sleepy, { maxConcurrency }))
      assert.deepStrictEqual(labels(exit), ["ok:4", "ok:3", "ok:2", "ok:1"])
    }).pipe(Effect.scoped)
  )

  it.effect("a task failure fails the stream and stops the others (T-TASK #98, T-TSUP #28)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(
        TaskSupervisor.asyncStream(sup, [1, 2, 3, 4], (n) => (n === 2 ? Effect.fail(`boom ${n}`) : sleepy(n * 100)), {
          maxConcurrency
        })
      )
      assert.deepStrictEqual(exit, Exit.fail("boom 2"))
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("asyncStreamNolink emits failures as items (T-TSUP #41)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(
        TaskSupervisor.asyncStreamNolink(sup, [1, 2, 3, 4], (n) => Effect.andThen(sleepy(n), Effect.fail(n)), {
          maxConcurrency
        })
      )
      assert.deepStrictEqual(labels(exit), ["exit:1", "exit:2", "exit:3", "exit:4"])
    }).pipe(Effect.scoped)
  )

  it.effect(
    "halting early stops the unused tasks and leaves none running (T-TASK #99, #100, reliability C.5 #62)",
    () =>
      Effect.gen(function* () {
        const sup = yield* TaskSupervisor.make()
        const running = yield* Ref.make(0)
        const task = (n: number) =>
          n === 1
            ? Effect.succeed(n)
            : Effect.acquireUseRelease(
                Ref.update(running, (k) => k + 1),
                () => Effect.never,
                () => Ref.update(running, (k) => k - 1)
              )
        const exit = yield* collect(
          Stream.take(TaskSupervisor.asyncStream(sup, [1, 2, 3, 4, 5, 6, 7, 8], task, { maxConcurrency }), 1)
        )
        assert.deepStrictEqual(labels(exit), ["ok:1"])
        assert.strictEqual(yield* live(sup), 0)
        assert.strictEqual(yield* Ref.get(running), 0)
      }).pipe(Effect.scoped)
  )

  it.effect("is zippable with itself (T-TASK #101, #103)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const s = TaskSupervisor.asyncStream(sup, [4, 3, 2, 1], sleepy, { maxConcurrency })
      const exit = yield* collect(Stream.zip(s, s))
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) {
        assert.deepStrictEqual(
          exit.value.map(([a, b]) => [label(a), label(b)]),
          [4, 3, 2, 1].map((n) => [`ok:${n}`, `ok:${n}`])
        )
      }
    }).pipe(Effect.scoped)
  )

  it.effect("with inner halt on an infinite input (T-TASK #104, #106)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const input = Stream.take(
        Stream.iterate(8, (n) => n - 1),
        4
      )
      const exit = yield* collect(TaskSupervisor.asyncStream(sup, input, sleepy, { maxConcurrency }))
      assert.deepStrictEqual(labels(exit), ["ok:8", "ok:7", "ok:6", "ok:5"])
    }).pipe(Effect.scoped)
  )

  it.effect(
    "with outer halt on an infinite input, running the input's and the output's finalizers (T-TASK #107, #109–#111)",
    () =>
      Effect.gen(function* () {
        const sup = yield* TaskSupervisor.make()
        const finalized = yield* Ref.make<Array<string>>([])
        const input = Stream.iterate(8, (n) => n - 1).pipe(
          Stream.ensuring(Ref.update(finalized, (xs) => [...xs, "input"]))
        )
        const output = TaskSupervisor.asyncStream(sup, input, (n) => sleepy(Math.max(n, 0)), { maxConcurrency }).pipe(
          Stream.ensuring(Ref.update(finalized, (xs) => [...xs, "output"])),
          Stream.take(4)
        )
        const exit = yield* collect(output)
        assert.deepStrictEqual(labels(exit), ["ok:8", "ok:7", "ok:6", "ok:5"])
        assert.sameMembers(yield* Ref.get(finalized), ["input", "output"])
        assert.strictEqual(yield* live(sup), 0)
      }).pipe(Effect.scoped)
  )

  it.effect("killTask emits the timed-out tasks' TaskTimeout in their slots and goes on (T-TASK #112)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(
        TaskSupervisor.asyncStream(sup, [10, 1, 10, 1], sleepy, { maxConcurrency, timeout: 50, onTimeout: "killTask" })
      )
      assert.deepStrictEqual(labels(exit), ["exit:TaskTimeout", "ok:1", "exit:TaskTimeout", "ok:1"])
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("with a timeout and zipInputOnExit, a timed-out item carries its input (T-TASK #113, T-TSUP #34)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(
        TaskSupervisor.asyncStream(sup, [1, 10], sleepy, {
          maxConcurrency,
          timeout: 50,
          onTimeout: "killTask",
          zipInputOnExit: true
        })
      )
      assert.deepStrictEqual(labels(exit), ["ok:1", "exit:10:TaskTimeout"])
    }).pipe(Effect.scoped)
  )

  it.effect("nolink with zipInputOnExit and an outer halt on failure (T-TASK #114, T-TSUP #35)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(
        Stream.take(
          TaskSupervisor.asyncStreamNolink(
            sup,
            Stream.iterate(1, (n) => n + 1),
            (n) => Effect.fail(n),
            {
              maxConcurrency,
              zipInputOnExit: true
            }
          ),
          4
        )
      )
      assert.deepStrictEqual(labels(exit), ["exit:1:1", "exit:2:2", "exit:3:3", "exit:4:4"])
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.asyncStream timeouts", () => {
  it.effect(
    "onTimeout exit (the default) fails the stream with TaskTimeout and leaves nothing behind (T-TASK #83)",
    () =>
      Effect.gen(function* () {
        const sup = yield* TaskSupervisor.make()
        const exit = yield* collect(TaskSupervisor.asyncStream(sup, [1, 2], () => Effect.never, { timeout: 0 }))
        assert.deepStrictEqual(labels(exit), ["failed:exit:TaskTimeout"])
        assert.strictEqual(yield* live(sup), 0)
      }).pipe(Effect.scoped)
  )

  it.effect("the default timeout is 5 s per task", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const fiber = yield* Effect.forkChild(Stream.runCollect(TaskSupervisor.asyncStream(sup, [1], () => Effect.never)))
      yield* TestClock.adjust("4999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(labels(exit), ["failed:exit:TaskTimeout"])
    }).pipe(Effect.scoped)
  )

  it.effect("the timeout is measured from each task's start, not the stream's", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      // 4 × 300 ms one at a time, timeout 350 ms: all fine although the run takes 1200 ms
      const exit = yield* collect(
        TaskSupervisor.asyncStream(sup, [30, 30, 30, 30], sleepy, { maxConcurrency: 1, timeout: 350 }),
        2000
      )
      assert.deepStrictEqual(labels(exit), ["ok:30", "ok:30", "ok:30", "ok:30"])
    }).pipe(Effect.scoped)
  )

  it.effect("infinite timeout (T-TASK #86)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(TaskSupervisor.asyncStream(sup, [1, 2], sleepy, { timeout: "infinity" }))
      assert.deepStrictEqual(labels(exit), ["ok:1", "ok:2"])
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.asyncStream ordered: false", () => {
  it.effect("emits in input order with maxConcurrency 1 and in completion order otherwise (T-TASK #84)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const one = yield* collect(
        TaskSupervisor.asyncStream(sup, [4, 3, 2, 1], sleepy, { maxConcurrency: 1, ordered: false })
      )
      assert.deepStrictEqual(labels(one), ["ok:4", "ok:3", "ok:2", "ok:1"])
      const four = yield* collect(
        TaskSupervisor.asyncStream(sup, [4, 3, 2, 1], sleepy, { maxConcurrency: 4, ordered: false })
      )
      assert.deepStrictEqual(labels(four), ["ok:1", "ok:2", "ok:3", "ok:4"])
    }).pipe(Effect.scoped)
  )

  it.effect("with killTask (T-TASK #85)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const exit = yield* collect(
        TaskSupervisor.asyncStream(sup, [10, 1, 10, 1], sleepy, {
          maxConcurrency: 4,
          ordered: false,
          timeout: 50,
          onTimeout: "killTask"
        })
      )
      assert.deepStrictEqual(labels(exit), ["ok:1", "ok:1", "exit:TaskTimeout", "exit:TaskTimeout"])
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.asyncStream buffering", () => {
  it.effect("with ordered output a slow head stops new starts once exactly maxBuffered results wait", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const started = yield* Ref.make(0)
      const items = Array.from({ length: 100 }, (_, i) => i)
      const stream = TaskSupervisor.asyncStream(
        sup,
        items,
        (n) =>
          Effect.andThen(
            Ref.update(started, (k) => k + 1),
            n === 0 ? Effect.sleep("1 second") : Effect.succeed(n)
          ),
        { maxConcurrency: 2, maxBuffered: 3, timeout: "infinity" }
      )
      const fiber = yield* Effect.forkChild(Stream.runCollect(stream))
      yield* TestClock.adjust("500 millis")
      // the head runs and exactly maxBuffered = 3 results wait behind it (the 2nd slot ran 3 tasks)
      assert.strictEqual(yield* Ref.get(started), 4)
      yield* TestClock.adjust("500 millis")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isSuccess(exit) && exit.value.length === 100)
      // Elixir would have started all 100 while the head ran
    }).pipe(Effect.scoped)
  )

  it.effect("a concurrency slot frees when a task ends, not when its result is emitted", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const started = yield* Ref.make(0)
      const stream = TaskSupervisor.asyncStream(
        sup,
        [50, 1, 1, 1, 1, 1],
        (n) =>
          Effect.andThen(
            Ref.update(started, (k) => k + 1),
            sleepy(n)
          ),
        { maxConcurrency: 2 }
      )
      const fiber = yield* Effect.forkChild(Stream.runCollect(stream))
      yield* TestClock.adjust("60 millis")
      assert.strictEqual(yield* Ref.get(started), 6)
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(labels(yield* Fiber.await(fiber)), ["ok:50", "ok:1", "ok:1", "ok:1", "ok:1", "ok:1"])
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.asyncStream supervision", () => {
  it.effect("its tasks are children of the supervisor while they run", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(TaskSupervisor.asyncStream(sup, [1, 2, 3, 4, 5], sleepy, { maxConcurrency: 3 }))
      )
      yield* Effect.yieldNow
      assert.strictEqual(yield* live(sup), 3)
      assert.strictEqual((yield* TaskSupervisor.children(sup)).length, 3)
      yield* TestClock.adjust("1 second")
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect(
    "reaching maxChildren stops the stream cleanly with MaxChildren (T-TSUP #31, #44, reliability C.5 #62)",
    () =>
      Effect.gen(function* () {
        const sup = yield* TaskSupervisor.make({ maxChildren: 2 })
        const exit = yield* collect(
          TaskSupervisor.asyncStreamNolink(sup, [1, 2, 3, 4], () => Effect.never, { maxConcurrency: 4 })
        )
        assert.deepStrictEqual(labels(exit), ["failed:exit:MaxChildren"])
        assert.strictEqual(yield* live(sup), 0)
      }).pipe(Effect.scoped)
  )

  it.effect("the supervisor's shutdown stops a running stream with SupervisorStopped", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(TaskSupervisor.make(), scope)
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(TaskSupervisor.asyncStream(sup, [1, 2, 3], () => Effect.never))
      )
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(labels(exit), ["failed:exit:SupervisorStopped"])
    })
  )

  it.effect("an input failure stops the tasks and fails the stream with it", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const input = Stream.concat(Stream.make(1, 2), Stream.fail("bad input"))
      const exit = yield* collect(TaskSupervisor.asyncStream(sup, input, () => Effect.never, { maxConcurrency: 4 }))
      assert.deepStrictEqual(labels(exit), ["failed:exit:bad input"])
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("a stream built in one fiber runs in another, and each run is independent (T-TASK #92, T-TSUP #33)", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const stream = TaskSupervisor.asyncStream(sup, [1, 2, 3], sleepy, { maxConcurrency: 2 })
      const first = yield* Effect.forkChild(Stream.runCollect(stream))
      const second = yield* Effect.forkChild(Stream.runCollect(stream))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(labels(yield* Fiber.await(first)), ["ok:1", "ok:2", "ok:3"])
      assert.deepStrictEqual(labels(yield* Fiber.await(second)), ["ok:1", "ok:2", "ok:3"])
    }).pipe(Effect.scoped)
  )

  it.effect("a task failure fails the stream at once even while the input is slow to produce", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const input = Stream.concat(Stream.make(1), Stream.never)
      const linked = yield* collect(
        TaskSupervisor.asyncStream(sup, input, () => Effect.andThen(Effect.sleep(10), Effect.fail("boom")), {
          maxConcurrency: 4
        }),
        100
      )
      assert.deepStrictEqual(labels(linked), ["failed:exit:boom"])
      const timedOut = yield* collect(
        TaskSupervisor.asyncStreamNolink(sup, input, () => Effect.never, { maxConcurrency: 4, timeout: 50 }),
        100
      )
      assert.deepStrictEqual(labels(timedOut), ["failed:exit:TaskTimeout"])
      assert.strictEqual(yield* live(sup), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("is pipeable over the items", () =>
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
})

describe("TaskSupervisor.asyncStream wake-ups", () => {
  it.effect(
    "a pull that yields on its way to waiting does not miss the end of a task (found by the property below)",
    () =>
      Effect.gen(function* () {
        // under some MaxOpsBeforeYield (the property found 11) the consumer yields between deciding to wait
        // and registering its wake-up, and the only task ends in that gap
        for (let ops = 3; ops <= 40; ops++) {
          const result = yield* Effect.gen(function* () {
            const sup = yield* TaskSupervisor.make()
            const open = yield* Ref.make(0)
            const task = () =>
              Effect.acquireUseRelease(
                Ref.update(open, (n) => n + 1),
                () => Effect.andThen(Effect.sleep(0), Effect.succeed("done")),
                () => Ref.update(open, (n) => n - 1)
              )
            const stream = Stream.take(
              TaskSupervisor.asyncStreamNolink(sup, [1], task, { maxConcurrency: 1, ordered: false, maxBuffered: 2 }),
              1
            )
            return labels(yield* collectPatiently(stream, 100))
          }).pipe(
            Effect.scoped,
            Effect.provide(TestClock.layer()),
            Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)
          )
          assert.deepStrictEqual(result, ["ok:done"], `MaxOpsBeforeYield ${ops}`)
        }
      })
  )

  it.effect("timeouts fire whatever the scheduler's yield frequency", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      for (let ops = 3; ops <= 16; ops++) {
        const exit = yield* collectPatiently(
          TaskSupervisor.asyncStreamNolink(sup, [1, 2, 3], (n) => (n === 1 ? Effect.void : Effect.never), {
            maxConcurrency: 1,
            timeout: 100,
            onTimeout: "killTask"
          }).pipe(Stream.provideService(Scheduler.MaxOpsBeforeYield, ops)),
          1000
        )
        assert.deepStrictEqual(labels(exit), ["ok:undefined", "exit:TaskTimeout", "exit:TaskTimeout"])
      }
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.asyncStream options", () => {
  const invalid = (options: TaskSupervisor.AsyncStreamOptions, field: string) =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const error = yield* Effect.flip(Stream.runCollect(TaskSupervisor.asyncStream(sup, [1], Effect.succeed, options)))
      assert.strictEqual(error._tag, "InvalidOptions")
      assert.strictEqual(error._tag === "InvalidOptions" && error.field, field)
    }).pipe(Effect.scoped)

  it.effect("rejects maxConcurrency 0 (T-TASK #87)", () => invalid({ maxConcurrency: 0 }, "maxConcurrency"))
  it.effect("rejects an unknown onTimeout (T-TASK #88)", () => invalid({ onTimeout: "bad" as any }, "onTimeout"))
  it.effect("rejects a negative timeout (T-TASK #89)", () => invalid({ timeout: -1 }, "timeout"))
  it.effect("rejects shutdown infinity (T-TSUP #36)", () => invalid({ shutdown: "infinity" as any }, "shutdown"))
  it.effect("rejects a negative maxBuffered", () => invalid({ maxBuffered: -1 }, "maxBuffered"))
  it.effect("rejects maxConcurrency >= 2^32 with InvalidOptions, not a RangeError later (issue 10)", () =>
    invalid({ maxConcurrency: 2 ** 32 }, "maxConcurrency")
  )
  it.effect("rejects maxBuffered >= 2^32 - 1 (its ring has maxBuffered + 1 slots) with InvalidOptions (issue 10)", () =>
    Effect.andThen(
      invalid({ maxBuffered: 2 ** 32 }, "maxBuffered"),
      invalid({ maxBuffered: 2 ** 32 - 1 }, "maxBuffered")
    )
  )
  it.effect("accepts the largest bounds and runs", () =>
    Effect.gen(function* () {
      const sup = yield* TaskSupervisor.make()
      const out = yield* Stream.runCollect(
        TaskSupervisor.asyncStream(sup, [1, 2], Effect.succeed, {
          maxConcurrency: 2 ** 32 - 1,
          maxBuffered: 2 ** 32 - 2
        })
      )
      assert.deepStrictEqual(
        out.map((e) => (Exit.isSuccess(e) ? e.value : undefined)),
        [1, 2]
      )
    }).pipe(Effect.scoped)
  )
})

describe("TaskSupervisor.asyncStream property", () => {
  const item = fc.record({ duration: fc.integer({ min: 0, max: 30 }), fails: fc.boolean() })

  it.effect(
    "random durations and failures give the results of Effect.forEach, in order, with nothing left running",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(item, { maxLength: 30 }),
            fc.integer({ min: 1, max: 8 }),
            fc.integer({ min: 0, max: 8 }),
            (items, maxConcurrency, maxBuffered) =>
              Effect.runPromise(
                Effect.gen(function* () {
                  const f = (x: { duration: number; fails: boolean }, i: number) =>
                    Effect.andThen(Effect.sleep(x.duration), x.fails ? Effect.fail(`failed ${i}`) : Effect.succeed(i))
                  const expected = yield* Effect.forEach(items, (x, i) => Effect.exit(f(x, i)), {
                    concurrency: maxConcurrency
                  }).pipe(
                    Effect.forkChild,
                    Effect.tap(() => TestClock.adjust(10_000)),
                    Effect.flatMap(Fiber.join)
                  )
                  const sup = yield* TaskSupervisor.make()
                  const indexed = items.map((x, i) => [x, i] as const)
                  const exit = yield* collect(
                    TaskSupervisor.asyncStreamNolink(sup, indexed, ([x, i]) => f(x, i), { maxConcurrency, maxBuffered })
                  )
                  assert.deepStrictEqual(labels(exit), expected.map(label))
                  assert.strictEqual(yield* live(sup), 0)
                }).pipe(Effect.scoped, Effect.provide(TestClock.layer()))
              )
          ),
          { numRuns: 150 }
        )
      )
  )

  it.effect(
    "halting after a random number of items, under random scheduler yields, emits a prefix and leaves nothing running (house-style §4.5)",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(item, { maxLength: 25 }),
            fc.integer({ min: 1, max: 6 }),
            fc.integer({ min: 0, max: 25 }),
            fc.integer({ min: 3, max: 64 }),
            fc.boolean(),
            (items, maxConcurrency, take, ops, ordered) =>
              Effect.runPromise(
                Effect.gen(function* () {
                  const sup = yield* TaskSupervisor.make()
                  const open = yield* Ref.make(0)
                  const f = (x: { duration: number; fails: boolean }, i: number) =>
                    Effect.acquireUseRelease(
                      Ref.update(open, (n) => n + 1),
                      () =>
                        Effect.andThen(
                          Effect.sleep(x.duration),
                          x.fails ? Effect.fail(`failed ${i}`) : Effect.succeed(i)
                        ),
                      () => Ref.update(open, (n) => n - 1)
                    )
                  const indexed = items.map((x, i) => [x, i] as const)
                  const exit = yield* collectPatiently(
                    Stream.take(
                      TaskSupervisor.asyncStreamNolink(sup, indexed, ([x, i]) => f(x, i), {
                        maxConcurrency,
                        ordered,
                        maxBuffered: 2
                      }),
                      take
                    )
                  )
                  const got = labels(exit)
                  assert.strictEqual(got.length, Math.min(take, items.length))
                  if (ordered) {
                    const expected = indexed.map(([x, i]) => (x.fails ? `exit:failed ${i}` : `ok:${i}`))
                    assert.deepStrictEqual(got, expected.slice(0, got.length))
                  }
                  assert.strictEqual(yield* live(sup), 0)
                  assert.strictEqual(yield* Ref.get(open), 0)
                }).pipe(
                  Effect.scoped,
                  Effect.provide(TestClock.layer()),
                  Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)
                )
              )
          ),
          { numRuns: 150 }
        )
      )
  )
})
