/**
 * One supervision kernel (issue 14): behaviour that used to differ between
 * supervisor kinds, pinned once for all of them; the time, interrupt and
 * bad-input faults of issue 10 that live in the shared lifecycle; and the
 * child's own trace and log context (issue 15 item 2). Each test here failed
 * on the code before the kernel.
 */
import { assert, describe, it } from "@effect/vitest"
import * as util from "node:util"
import {
  Clock,
  Console,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Logger,
  Metric,
  Option,
  Ref,
  Schedule,
  References,
  Scope,
  Tracer
} from "effect"
import { TestClock } from "effect/testing"
import {
  ChildSpec,
  DynamicSupervisor,
  RateLimitedSupervisor,
  RateLimiter,
  Registry,
  Supervisor,
  Task,
  TaskSupervisor
} from "effect-otp"
import * as Inspect from "../../src/internal/inspect.ts"
import { type Control, controllable, eventually, makeEventLog, settle } from "../utils/lifecycle.ts"

const metricValue = (id: string, supervisor: string) =>
  Effect.map(Metric.snapshot, (all) => {
    const m = all.find((m) => m.id === id && m.attributes?.["supervisor"] === supervisor)
    const state = m?.state as { readonly count?: number; readonly value?: number } | undefined
    return state?.count ?? state?.value ?? 0
  })

const anHour = 3_600_000

describe("one report for every supervisor kind", () => {
  it.effect(
    "a TaskSupervisor task that overruns its shutdown is counted in effect_otp_child_shutdown_abandoned_total, as a DynamicSupervisor child is",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const tasks = yield* TaskSupervisor.make({ name: "ts-abandon" }).pipe(Scope.provide(scope))
        const dyn = yield* DynamicSupervisor.make({ name: "ds-abandon" }).pipe(Scope.provide(scope))
        yield* TaskSupervisor.asyncNolink(tasks, Effect.uninterruptible(Effect.never), { shutdown: "100 millis" })
        yield* DynamicSupervisor.startChild(
          dyn,
          ChildSpec.make({
            start: Effect.void,
            run: () => Effect.uninterruptible(Effect.never),
            shutdown: "100 millis"
          })
        )
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        // the scope's finalizers run one after the other: 100 ms for each supervisor
        yield* TestClock.adjust("200 millis")
        yield* Fiber.join(closing)
        assert.strictEqual(yield* metricValue("effect_otp_child_shutdown_abandoned_total", "ts-abandon"), 1)
        assert.strictEqual(yield* metricValue("effect_otp_child_shutdown_abandoned_total", "ds-abandon"), 1)
      }).pipe(
        Effect.provideService(Metric.MetricRegistry, new Map()),
        Effect.provideService(Logger.CurrentLoggers, new Set())
      )
  )
})

describe("one restart policy for every supervisor kind", () => {
  const backoff = DynamicSupervisor.backoff({ min: "1 second", max: "10 seconds" })

  it.effect("a static Supervisor's child waits out restartBackoff before it restarts (it used to crash-loop)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "w")], {
        strategy: "oneForOne",
        maxRestarts: 10,
        restartBackoff: backoff
      })
      const first = Supervisor.whichChildrenUnsafe(sup)![0]!.child as Supervisor.Child<Control>
      yield* Deferred.fail(first.handle.exit, "boom")
      yield* settle
      assert.deepStrictEqual(log.events, ["start:w#1", "stop:w#1"])
      assert.strictEqual(Supervisor.whichChildrenUnsafe(sup)![0]!.child, "restarting")
      yield* TestClock.adjust("999 millis")
      assert.notInclude(log.events, "start:w#2")
      yield* TestClock.adjust("1 millis")
      yield* eventually(() => log.events.includes("start:w#2"), "restarted after the backoff")
    }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )

  it.effect("a transient TaskSupervisor.startChild task waits out restartBackoff between runs", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const sup = yield* TaskSupervisor.make({ maxRestarts: 10, restartBackoff: backoff })
      yield* TaskSupervisor.startChild(
        sup,
        Effect.andThen(
          Ref.update(runs, (n) => n + 1),
          Effect.fail("boom")
        ),
        { restart: "transient" }
      )
      yield* settle
      assert.strictEqual(yield* Ref.get(runs), 1)
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(yield* Ref.get(runs), 1)
      yield* TestClock.adjust("1 millis")
      yield* eventually(() => Effect.runSync(Ref.get(runs)) === 2, "second run after 1 s")
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual(yield* Ref.get(runs), 2)
      yield* TestClock.adjust("1 millis")
      yield* eventually(() => Effect.runSync(Ref.get(runs)) === 3, "third run after 2 s more")
    }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )
})

describe("one inspection protocol for every supervisor kind", () => {
  it.effect(
    "Supervisor.tree takes a TaskSupervisor or a RateLimitedSupervisor as root, and descends into them as children",
    () =>
      Effect.gen(function* () {
        const tasks = yield* TaskSupervisor.make({ name: "jobs" })
        yield* TaskSupervisor.asyncNolink(tasks, Effect.never)
        yield* TaskSupervisor.startChild(tasks, Effect.never)
        const tasksTree = yield* Supervisor.tree(tasks)
        assert.strictEqual(tasksTree.kind, "TaskSupervisor")
        assert.deepStrictEqual(
          tasksTree.children.map((c) => c.kind).sort(),
          ["Task", "Worker"],
          "a light task and a startChild task"
        )
        const limited = yield* RateLimitedSupervisor.make({ name: "spawner", limit: 5, window: "1 second" })
        yield* RateLimitedSupervisor.startChild(limited, ChildSpec.make({ id: "job", start: Effect.void }))
        const limitedTree = yield* Supervisor.tree(limited)
        assert.strictEqual(limitedTree.kind, "RateLimitedSupervisor")
        assert.strictEqual(limitedTree.stats?.["admitted"], 1)
        assert.deepStrictEqual(
          limitedTree.children.map((c) => c.id),
          ["job"]
        )
        const root = yield* Supervisor.make(
          [
            ChildSpec.make({ id: "tasks", start: Effect.succeed(tasks) }),
            ChildSpec.make({ id: "limited", start: Effect.succeed(limited) }),
            ChildSpec.make({ id: "names", start: Registry.make({ keys: "unique" }) })
          ],
          { name: "app", strategy: "oneForOne" }
        )
        const tree = yield* Supervisor.tree(root)
        assert.deepStrictEqual(
          tree.children.map((c) => [c.id, c.kind, c.children.length]),
          [
            ["tasks", "TaskSupervisor", 2],
            ["limited", "RateLimitedSupervisor", 1],
            ["names", "Registry", 0]
          ]
        )
        assert.include(Supervisor.formatTree(tree), "tasks #")
        assert.deepStrictEqual(JSON.parse(JSON.stringify(tree)).children.length, 3)
      }).pipe(Effect.scoped)
  )
})

describe("time is the Clock's monotonic reading", () => {
  it.effect(
    "DynamicSupervisor: two crashes 10 s apart stay apart when the wall clock steps back an hour (3 in 5 s is not exceeded)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* DynamicSupervisor.make({ maxRestarts: 1, maxSeconds: 5 })
        yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
        const crash = Effect.gen(function* () {
          const [info] = yield* DynamicSupervisor.whichChildren(sup)
          yield* Deferred.fail((info!.child as DynamicSupervisor.Child<Control>).handle.exit, "boom")
          yield* settle
        })
        yield* crash
        const clock = yield* Clock.Clock
        yield* TestClock.setTime(clock.currentTimeMillisUnsafe() - anHour)
        yield* TestClock.adjust("10 seconds")
        yield* crash
        assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), {
          specs: 1,
          active: 1,
          supervisors: 0,
          workers: 1
        })
      }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )

  it.effect("Supervisor: two crashes 10 s apart stay apart when the wall clock steps back an hour", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "w")], {
        strategy: "oneForOne",
        maxRestarts: 1,
        maxSeconds: 5
      })
      const crash = Effect.gen(function* () {
        const c = Supervisor.whichChildrenUnsafe(sup)![0]!.child as Supervisor.Child<Control>
        yield* Deferred.fail(c.handle.exit, "boom")
        yield* eventually(() => {
          const now = Supervisor.whichChildrenUnsafe(sup)
          return now === undefined || (typeof now[0]!.child !== "string" && now[0]!.child.pid !== c.pid)
        })
      })
      yield* crash
      const clock = yield* Clock.Clock
      yield* TestClock.setTime(clock.currentTimeMillisUnsafe() - anHour)
      yield* TestClock.adjust("10 seconds")
      yield* crash
      assert.strictEqual((yield* Supervisor.countChildren(sup)).active, 1, "still running: it did not give up")
    }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )

  it.effect(
    "Task.await's and Task.yield's timeouts fire 5 s after they were armed when the wall clock steps back an hour",
    () =>
      Effect.gen(function* () {
        const sup = yield* TaskSupervisor.make()
        const task = yield* TaskSupervisor.asyncNolink(sup, Effect.never)
        const awaiting = yield* Effect.forkChild(Effect.flip(Task.await(task, "5 seconds")))
        const yielding = yield* Effect.forkChild(Task.yield(task, "5 seconds"))
        yield* settle
        const clock = yield* Clock.Clock
        yield* TestClock.setTime(clock.currentTimeMillisUnsafe() - anHour)
        yield* TestClock.adjust("4 seconds")
        // TestClock's own sleeps follow its wall clock (a live Clock sleeps with setTimeout, which is monotonic):
        // a shorter timeout armed now re-arms the supervisor's one timer, which then reads the deadlines
        const short = yield* Effect.forkChild(Effect.flip(Task.await(task, "500 millis")))
        yield* settle
        yield* TestClock.adjust("500 millis")
        assert.strictEqual((yield* Fiber.join(short))._tag, "TaskTimeout")
        assert.isUndefined(awaiting.pollUnsafe())
        yield* TestClock.adjust("500 millis")
        // 5 s of monotonic time since they were armed (the wall-clock deadline would be an hour away)
        assert.strictEqual((yield* Fiber.join(awaiting))._tag, "TaskTimeout")
        assert.isTrue(Option.isNone(yield* Fiber.join(yielding)))
      }).pipe(Effect.scoped)
  )
})

describe("interrupts are bounded by the child's shutdown policy", () => {
  const stuckStart = ChildSpec.make({
    id: "stuck",
    start: Effect.uninterruptible(Effect.sleep("2 seconds")),
    shutdown: "100 millis"
  })

  it.effect(
    "interrupting a startChild caller while start is uninterruptible returns within the shutdown policy; the child is abandoned and reported",
    () =>
      Effect.gen(function* () {
        const sup = yield* DynamicSupervisor.make({ name: "ds-interrupt" })
        const caller = yield* Effect.forkChild(DynamicSupervisor.startChild(sup, stuckStart))
        yield* settle
        const interrupting = yield* Effect.forkChild(Fiber.interrupt(caller))
        yield* TestClock.adjust("100 millis")
        yield* settle
        assert.isDefined(interrupting.pollUnsafe(), "the interrupt returned after 100 ms, not 2 s")
        assert.strictEqual(yield* metricValue("effect_otp_child_shutdown_abandoned_total", "ds-interrupt"), 1)
        yield* TestClock.adjust("2 seconds") // let the stuck start end before the test's scope closes
      }).pipe(
        Effect.scoped,
        Effect.provideService(Metric.MetricRegistry, new Map()),
        Effect.provideService(Logger.CurrentLoggers, new Set())
      )
  )

  it.effect(
    "pending startChild calls end with SupervisorStopped when their supervisor closes (within the shutdown policy)",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const sup = yield* DynamicSupervisor.make().pipe(Scope.provide(scope))
        const caller = yield* Effect.forkChild(Effect.flip(DynamicSupervisor.startChild(sup, stuckStart)))
        yield* settle
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* TestClock.adjust("100 millis")
        yield* settle
        assert.isDefined(closing.pollUnsafe(), "closed after the shutdown policy")
        const error = caller.pollUnsafe()
        assert.isDefined(error, "the caller ended with the supervisor, not 2 s later")
        assert.strictEqual((yield* Fiber.join(caller))._tag, "SupervisorStopped")
        yield* TestClock.adjust("2 seconds")
      }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )
})

describe("bad input", () => {
  it.effect(
    "NaN restartBackoffResetAfter and NaN backoff min/max fail with InvalidOptions naming the field (were silently 0)",
    () =>
      Effect.gen(function* () {
        const field = (options: DynamicSupervisor.Options) =>
          Effect.map(Effect.flip(DynamicSupervisor.make(options)), (e) => [e._tag, e.field])
        assert.deepStrictEqual(yield* field({ restartBackoffResetAfter: Number.NaN }), [
          "InvalidOptions",
          "restartBackoffResetAfter"
        ])
        assert.deepStrictEqual(
          yield* field({ restartBackoff: DynamicSupervisor.backoff({ min: Number.NaN, max: 1000 }) }),
          ["InvalidOptions", "min"]
        )
        assert.deepStrictEqual(
          yield* field({ restartBackoff: DynamicSupervisor.backoff({ min: 10, max: Number.NaN }) }),
          ["InvalidOptions", "max"]
        )
        const e = yield* Effect.flip(
          Supervisor.make([], { strategy: "oneForOne", restartBackoffResetAfter: Number.NaN })
        )
        assert.strictEqual(e._tag === "InvalidOptions" && e.field, "restartBackoffResetAfter")
      }).pipe(Effect.scoped)
  )
})

describe("a child runs in its own trace and log context", () => {
  const capture = () => {
    const spans: Array<Tracer.Span> = []
    const tracer = Tracer.make({
      span: (options) => {
        const span = Tracer.nativeTracer.span(options)
        spans.push(span)
        return span
      }
    })
    const lines: Array<{ message: string; annotations: Record<string, unknown>; spans: Array<string> }> = []
    const logger = Logger.make((o) => {
      lines.push({
        message: String(Array.isArray(o.message) ? o.message[0] : o.message),
        // as loggers read them: own enumerable string keys
        annotations: Object.fromEntries(Object.entries(o.fiber.getRef(References.CurrentLogAnnotations))),
        spans: o.fiber.getRef(References.CurrentLogSpans).map(([label]) => label)
      })
    })
    return { spans, tracer, lines, logger }
  }

  it.effect(
    "outside the caller's span, annotations and log spans; annotated with supervisor, id and pid; its run a root span linked to the startChild span",
    () =>
      Effect.gen(function* () {
        const { lines, logger, spans, tracer } = capture()
        const seen: Array<Tracer.Span> = []
        const spec = ChildSpec.make({
          id: "session:alice",
          start: Effect.andThen(
            Effect.log("child started"),
            Effect.map(Effect.currentSpan, (span) => {
              seen.push(span)
              return span
            })
          ),
          run: () => Effect.never
        })
        const program = Effect.gen(function* () {
          const sup = yield* DynamicSupervisor.make({ name: "sessions" })
          const child = yield* DynamicSupervisor.startChild(sup, spec).pipe(
            Effect.annotateLogs({ request: "POST /sessions/alice" }),
            Effect.withLogSpan("request"),
            Effect.withSpan("POST /sessions/alice")
          )
          const line = lines.find((l) => l.message === "child started")!
          assert.deepStrictEqual(line.annotations, { supervisor: "sessions", pid: child.pid, id: "session:alice" })
          assert.deepStrictEqual(line.spans, [], "no log spans of the caller")
          const run = seen[0]!
          assert.strictEqual(run.name, "DynamicSupervisor.child")
          assert.isTrue(Option.isNone(run.parent), "a root span, not inside the request")
          const startSpan = spans.find((s) => s.name === "DynamicSupervisor.startChild")!
          const request = spans.find((s) => s.name === "POST /sessions/alice")!
          assert.strictEqual(Option.getOrUndefined(startSpan.parent)?.spanId, request.spanId)
          assert.deepStrictEqual(
            run.links.map((l) => l.span.spanId),
            [startSpan.spanId],
            "linked to the span that started it"
          )
          assert.strictEqual(run.attributes.get("supervisor"), "sessions")
          assert.strictEqual(run.attributes.get("id"), "session:alice")
          assert.strictEqual(run.attributes.get("pid"), child.pid)
          assert.strictEqual(run.attributes.get("incarnation"), 1)
          assert.strictEqual(startSpan.attributes.get("pid"), child.pid)
        })
        yield* program.pipe(
          Effect.provideService(Tracer.Tracer, tracer),
          Effect.provideService(Logger.CurrentLoggers, new Set([logger])),
          Effect.scoped
        )
      })
  )

  it.effect(
    "each restart is a span (supervisor, id, previous pid, attempt) and the new incarnation's run is linked to it",
    () =>
      Effect.gen(function* () {
        const { spans, tracer } = capture()
        const log = makeEventLog()
        const program = Effect.gen(function* () {
          const sup = yield* DynamicSupervisor.make({ name: "workers" })
          const first = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
          yield* Deferred.fail(first.handle.exit, "boom")
          yield* eventually(() => log.events.includes("start:w#2"))
          const restart = spans.find((s) => s.name === "DynamicSupervisor.restart")!
          assert.isDefined(restart)
          assert.strictEqual(restart.attributes.get("supervisor"), "workers")
          assert.strictEqual(restart.attributes.get("id"), "w")
          assert.strictEqual(restart.attributes.get("previousPid"), first.pid)
          assert.strictEqual(restart.attributes.get("attempt"), 1)
          const [info] = yield* DynamicSupervisor.whichChildren(sup)
          assert.strictEqual(restart.attributes.get("pid"), info!.pid)
          const runs = spans.filter((s) => s.name === "DynamicSupervisor.child")
          assert.strictEqual(runs.length, 2)
          assert.deepStrictEqual(
            runs[1]!.links.map((l) => [l.span.spanId, l.attributes["effect_otp.link"]]),
            [[restart.spanId, "restarted-by"]]
          )
          assert.strictEqual(runs[1]!.attributes.get("incarnation"), 2)
        })
        yield* program.pipe(
          Effect.provideService(Tracer.Tracer, tracer),
          Effect.provideService(Logger.CurrentLoggers, new Set()),
          Effect.scoped
        )
      })
  )
})

describe("a static Supervisor's child runs in its own context too", () => {
  it.effect(
    "its run is a root span linked to the span the tree was made in, its logs carry supervisor, id and pid only",
    () =>
      Effect.gen(function* () {
        const spans: Array<Tracer.Span> = []
        const tracer = Tracer.make({
          span: (options) => {
            const span = Tracer.nativeTracer.span(options)
            spans.push(span)
            return span
          }
        })
        const lines: Array<Record<string, unknown>> = []
        const logger = Logger.make((o) => {
          lines.push(Object.fromEntries(Object.entries(o.fiber.getRef(References.CurrentLogAnnotations))))
        })
        yield* Effect.gen(function* () {
          const app = yield* Supervisor.make(
            [ChildSpec.make({ id: "config", start: Effect.log("config up"), run: () => Effect.never })],
            { name: "app", strategy: "oneForOne" }
          ).pipe(Effect.annotateLogs({ request: "boot" }), Effect.withSpan("boot"))
          const pid = (Supervisor.whichChildrenUnsafe(app)![0]!.child as Supervisor.Child<void>).pid
          assert.deepStrictEqual(lines, [{ supervisor: "app", pid, id: "config" }])
          const run = spans.find((s) => s.name === "Supervisor.child")!
          const boot = spans.find((s) => s.name === "boot")!
          assert.isTrue(Option.isNone(run.parent))
          assert.deepStrictEqual(
            run.links.map((l) => l.span.spanId),
            [boot.spanId]
          )
          assert.strictEqual(run.attributes.get("pid"), pid)
          assert.strictEqual(run.attributes.get("incarnation"), 1)
        }).pipe(
          Effect.provideService(Tracer.Tracer, tracer),
          Effect.provideService(Logger.CurrentLoggers, new Set([logger])),
          Effect.scoped
        )
      })
  )
})

describe("every stateful module has a childSpec", () => {
  it.effect(
    "RateLimiter, RateLimitedSupervisor, Registry and TaskSupervisor go under a Supervisor without hand wrapping, and show in its tree",
    () =>
      Effect.gen(function* () {
        const app = yield* Supervisor.make(
          [
            RateLimiter.childSpec({ id: "api", limit: 100, window: "1 second" }),
            RateLimitedSupervisor.childSpec({ id: "spawner", limit: 10, window: "1 second" }),
            Registry.childSpec<string, number>({ id: "names", keys: "unique" }),
            TaskSupervisor.childSpec({ id: "tasks" })
          ],
          { name: "app", strategy: "oneForOne" }
        )
        assert.deepStrictEqual(yield* Supervisor.countChildren(app), {
          specs: 4,
          active: 4,
          supervisors: 2,
          workers: 2
        })
        const tree = yield* Supervisor.tree(app)
        assert.deepStrictEqual(
          tree.children.map((c) => [c.id, c.kind]),
          [
            ["api", "RateLimiter"],
            ["spawner", "RateLimitedSupervisor"],
            ["names", "Registry"],
            ["tasks", "TaskSupervisor"]
          ]
        )
        assert.strictEqual(tree.children[0]!.stats?.["admitted"], 0)
      }).pipe(Effect.scoped)
  )
})

const quietly = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Logger.CurrentLoggers, new Set())

describe("a child its owner stops is an Exited with reason shutdown, for every supervisor kind", () => {
  const listen = (sup: unknown) => {
    const seen: Array<string> = []
    const inspector = Inspect.inspectorOf(sup)!
    const off = inspector.subscribe((e) => {
      if (e._tag === "Exited") seen.push(`${e.supervisor}: Exited ${e.id ?? "-"}#${e.pid} ${e.reason}`)
    })
    return { seen, off }
  }
  const forever = (id: string) => ChildSpec.make({ id, start: Effect.void, run: () => Effect.never })

  it.effect("DynamicSupervisor: terminateChild and the supervisor's own shutdown", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sup = yield* DynamicSupervisor.make({ name: "dyn" }).pipe(Scope.provide(scope))
      const { seen } = listen(sup)
      const a = yield* DynamicSupervisor.startChild(sup, forever("a"))
      const b = yield* DynamicSupervisor.startChild(sup, forever("b"))
      yield* DynamicSupervisor.terminateChild(sup, a)
      assert.deepStrictEqual(seen, [`dyn: Exited a#${a.pid} shutdown`])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(seen, [`dyn: Exited a#${a.pid} shutdown`, `dyn: Exited b#${b.pid} shutdown`])
    })
  )

  it.effect("Supervisor: terminateChild, a oneForAll sibling stopped for a restart, and shutdown", () =>
    quietly(
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const log = makeEventLog()
        const sup = yield* Supervisor.make([controllable(log, "a"), forever("b")], {
          name: "static",
          strategy: "oneForAll"
        }).pipe(Scope.provide(scope))
        const { seen } = listen(sup)
        const pidOf = (id: string) =>
          (Supervisor.whichChildrenUnsafe(sup)!.find((c) => c.id === id)!.child as Supervisor.Child<unknown>).pid
        const b1 = pidOf("b")
        const a1 = Supervisor.whichChildrenUnsafe(sup)!.find((c) => c.id === "a")!.child as Supervisor.Child<Control>
        yield* Deferred.fail(a1.handle.exit, "boom")
        yield* eventually(() => log.events.includes("start:a#2"))
        yield* settle
        assert.deepStrictEqual(seen, [`static: Exited a#${a1.pid} crash`, `static: Exited b#${b1} shutdown`])
        const b2 = pidOf("b")
        yield* Supervisor.terminateChild(sup, "b")
        const a2 = pidOf("a")
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(seen.slice(2), [`static: Exited b#${b2} shutdown`, `static: Exited a#${a2} shutdown`])
      })
    )
  )

  it.effect("TaskSupervisor: terminateChild of a startChild task", () =>
    Effect.gen(function* () {
      const tasks = yield* TaskSupervisor.make({ name: "tasks" })
      const { seen } = listen(tasks)
      const t = yield* TaskSupervisor.startChild(tasks, Effect.never)
      yield* TaskSupervisor.terminateChild(tasks, t)
      assert.deepStrictEqual(seen, [`tasks: Exited -#${t.pid} shutdown`])
    }).pipe(Effect.scoped)
  )
})

describe("a supervisor childSpec without a name is named by its id", () => {
  it.effect("DynamicSupervisor, TaskSupervisor, RateLimitedSupervisor and RateLimiter", () =>
    Effect.gen(function* () {
      const app = yield* Supervisor.make(
        [
          DynamicSupervisor.childSpec({ id: "sessions" }),
          TaskSupervisor.childSpec({ id: "jobs" }),
          RateLimitedSupervisor.childSpec({ id: "spawner", limit: 10, window: "1 second" }),
          RateLimiter.childSpec({ id: "api", limit: 10, window: "1 second" }),
          DynamicSupervisor.childSpec({ id: "kept", name: "given" })
        ],
        { name: "app", strategy: "oneForOne" }
      )
      const names = Object.fromEntries(
        Supervisor.whichChildrenUnsafe(app)!.map((c) => [
          c.id,
          Inspect.inspectorOf((c.child as Supervisor.Child<unknown>).handle)!.name
        ])
      )
      assert.deepStrictEqual(names, {
        sessions: "sessions",
        jobs: "jobs",
        spawner: "spawner",
        api: "api",
        kept: "given"
      })
    }).pipe(Effect.scoped)
  )
})

describe("what a logger prints for a line logged inside a child", () => {
  // Effect's defaultLogger hands the annotation record itself to console.log, which formats it
  // with util.inspect: the kernel's child object (its own annotation record) must print as its
  // annotations only, not as a dump of its fields
  it.effect("Logger.defaultLogger through console.log: the annotations supervisor, pid and id, nothing else", () =>
    Effect.gen(function* () {
      const printed: Array<string> = []
      const console = new Proxy({} as Console.Console, {
        get:
          (_, method) =>
          (...args: Array<unknown>) => {
            if (method === "log" || method === "error") printed.push(util.format(...args))
          }
      })
      const pid = yield* Effect.gen(function* () {
        const sup = yield* DynamicSupervisor.make({ name: "sessions" })
        const c = yield* DynamicSupervisor.startChild(
          sup,
          ChildSpec.make({ id: "session", start: Effect.log("session started"), run: () => Effect.never })
        )
        return c.pid
      }).pipe(
        Effect.provideService(Logger.CurrentLoggers, new Set([Logger.defaultLogger])),
        Effect.provideService(Console.Console, console),
        Effect.scoped
      )
      assert.strictEqual(printed.length, 1)
      const line = printed[0]!.replace(/^\[[^\]]*\] INFO \(#\d+\): /, "")
      assert.strictEqual(line, `session started { supervisor: 'sessions', pid: ${pid}, id: 'session' }`)
    })
  )

  it.effect("Logger.consolePretty and Logger.formatJson: the same three annotations", () =>
    Effect.gen(function* () {
      const printed: Array<string> = []
      const console = new Proxy({} as Console.Console, {
        get:
          (_, method) =>
          (...args: Array<unknown>) => {
            if (method === "log" || method === "error") printed.push(util.format(...args))
          }
      })
      const json = Logger.map(Logger.formatJson, (s) => printed.push(s))
      const pid = yield* Effect.gen(function* () {
        const sup = yield* DynamicSupervisor.make({ name: "sessions" })
        const c = yield* DynamicSupervisor.startChild(
          sup,
          ChildSpec.make({ id: "session", start: Effect.log("session started"), run: () => Effect.never })
        )
        return c.pid
      }).pipe(
        Effect.provideService(Logger.CurrentLoggers, new Set([Logger.consolePretty({ colors: false }), json])),
        Effect.provideService(Console.Console, console),
        Effect.scoped
      )
      const text = printed.join("\n")
      assert.notInclude(text, "Symbol(")
      assert.include(text, "supervisor: sessions")
      assert.include(text, `pid: ${pid}`)
      assert.include(text, "id: session")
      const record = JSON.parse(printed.find((l) => l.startsWith("{"))!)
      assert.deepStrictEqual(record.annotations, { supervisor: "sessions", pid, id: "session" })
    })
  )
})

describe("a static Supervisor's spans are a DynamicSupervisor's", () => {
  const capture = () => {
    const spans: Array<Tracer.Span> = []
    const tracer = Tracer.make({
      span: (options) => {
        const span = Tracer.nativeTracer.span(options)
        spans.push(span)
        return span
      }
    })
    return { spans, tracer }
  }
  const pidOf = (sup: Supervisor.Supervisor, id: string) =>
    (Supervisor.whichChildrenUnsafe(sup)!.find((c) => c.id === id)!.child as Supervisor.Child<unknown>).pid

  it.effect(
    "startChild is a span (supervisor, id, pid) in the caller's trace, and the child's run a root span linked to it",
    () =>
      Effect.gen(function* () {
        const { spans, tracer } = capture()
        yield* Effect.gen(function* () {
          const sup = yield* Supervisor.make([], { name: "app", strategy: "oneForOne" })
          const c = yield* Supervisor.startChild(
            sup,
            ChildSpec.make({ id: "cache", start: Effect.void, run: () => Effect.never })
          ).pipe(Effect.withSpan("POST /cache"))
          const request = spans.find((s) => s.name === "POST /cache")!
          const start = spans.find((s) => s.name === "Supervisor.startChild")!
          assert.isDefined(start)
          assert.strictEqual(Option.getOrUndefined(start.parent)?.spanId, request.spanId)
          assert.strictEqual(start.attributes.get("supervisor"), "app")
          assert.strictEqual(start.attributes.get("id"), "cache")
          assert.strictEqual(start.attributes.get("pid"), c.pid)
          const run = spans.find((s) => s.name === "Supervisor.child")!
          assert.isTrue(Option.isNone(run.parent))
          assert.deepStrictEqual(
            run.links.map((l) => [l.span.spanId, l.attributes["effect_otp.link"]]),
            [[start.spanId, "started-by"]]
          )
          assert.strictEqual(run.attributes.get("pid"), c.pid)
        }).pipe(
          Effect.provideService(Tracer.Tracer, tracer),
          Effect.provideService(Logger.CurrentLoggers, new Set()),
          Effect.scoped
        )
      })
  )

  it.effect(
    "each restart is a span (supervisor, id, previous pid, attempt, new pid); the new runs (a oneForAll sibling's too) are root spans linked to it",
    () =>
      Effect.gen(function* () {
        const { spans, tracer } = capture()
        const log = makeEventLog()
        yield* Effect.gen(function* () {
          const sup = yield* Supervisor.make([controllable(log, "w"), controllable(log, "peer")], {
            name: "workers",
            strategy: "oneForAll"
          })
          const first = Supervisor.whichChildrenUnsafe(sup)!.find((c) => c.id === "w")!
            .child as Supervisor.Child<Control>
          assert.deepStrictEqual(
            spans.filter((s) => s.name === "Supervisor.restart"),
            []
          )
          yield* Deferred.fail(first.handle.exit, "boom")
          yield* eventually(() => log.events.includes("start:peer#2"))
          yield* settle
          const restarts = spans.filter((s) => s.name === "Supervisor.restart")
          assert.strictEqual(restarts.length, 1)
          const restart = restarts[0]!
          assert.isTrue(Option.isNone(restart.parent))
          assert.strictEqual(restart.attributes.get("supervisor"), "workers")
          assert.strictEqual(restart.attributes.get("id"), "w")
          assert.strictEqual(restart.attributes.get("previousPid"), first.pid)
          assert.strictEqual(restart.attributes.get("attempt"), 1)
          assert.strictEqual(restart.attributes.get("pid"), pidOf(sup, "w"))
          assert.strictEqual(restart.status._tag, "Ended")
          const runs = spans.filter((s) => s.name === "Supervisor.child")
          assert.strictEqual(runs.length, 4)
          for (const run of runs.slice(2)) {
            assert.isTrue(Option.isNone(run.parent))
            assert.deepStrictEqual(
              run.links.map((l) => [l.span.spanId, l.attributes["effect_otp.link"]]),
              [[restart.spanId, "restarted-by"]]
            )
            assert.strictEqual(run.attributes.get("incarnation"), 2)
            assert.strictEqual(run.attributes.get("attempt"), 1)
          }
          assert.deepStrictEqual(
            runs.slice(2).map((r) => r.attributes.get("pid")),
            [pidOf(sup, "w"), pidOf(sup, "peer")]
          )
        }).pipe(
          Effect.provideService(Tracer.Tracer, tracer),
          Effect.provideService(Logger.CurrentLoggers, new Set()),
          Effect.scoped
        )
      })
  )

  it.effect("a restart cancelled by terminateChild during its backoff ends its span; no span without a tracer", () =>
    Effect.gen(function* () {
      const { spans, tracer } = capture()
      const log = makeEventLog()
      yield* Effect.gen(function* () {
        const sup = yield* Supervisor.make([controllable(log, "w")], {
          name: "slow",
          strategy: "oneForOne",
          restartBackoff: Schedule.spaced("1 second")
        })
        const first = Supervisor.whichChildrenUnsafe(sup)!.find((c) => c.id === "w")!.child as Supervisor.Child<Control>
        yield* Deferred.fail(first.handle.exit, "boom")
        yield* eventually(() => spans.some((s) => s.name === "Supervisor.restart"))
        const restart = spans.find((s) => s.name === "Supervisor.restart")!
        assert.strictEqual(restart.status._tag, "Started")
        yield* Supervisor.terminateChild(sup, "w")
        assert.strictEqual(restart.status._tag, "Ended")
        yield* TestClock.adjust("2 seconds")
        assert.isFalse(log.events.includes("start:w#2"))
      }).pipe(
        Effect.provideService(Tracer.Tracer, tracer),
        Effect.provideService(Logger.CurrentLoggers, new Set()),
        Effect.scoped
      )
      // Effect's native tracer: nothing is built
      const before = spans.length
      yield* Effect.gen(function* () {
        const sup = yield* Supervisor.make([controllable(log, "x")], { name: "plain", strategy: "oneForOne" })
        const x = Supervisor.whichChildrenUnsafe(sup)!.find((c) => c.id === "x")!.child as Supervisor.Child<Control>
        yield* Deferred.fail(x.handle.exit, "boom")
        yield* eventually(() => log.events.includes("start:x#2"))
      }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()), Effect.scoped)
      assert.strictEqual(spans.length, before)
    })
  )
})
