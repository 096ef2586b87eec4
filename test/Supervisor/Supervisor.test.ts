/**
 * Supervisor (static children): Elixir's supervisor_test.exs cases marked Y/A
 * in otp-semantics §9.2 (cited as T-SUP #n), the [ran] rows of §2, and
 * reliability scenarios C.1 #1–#24.
 */
import { fiberOf } from "../../src/internal/child.ts"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Metric, Option, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"
import { ChildSpec, Registry, Supervisor } from "effect-otp"
import {
  type Control,
  controllable,
  counts,
  eventually,
  finalizerSleep,
  makeCapturingLogger,
  makeEventLog,
  settle,
  trackedChild
} from "../utils/lifecycle.ts"

/** The running incarnation of child `id` (fails the test if it is not running). */
const running = (sup: Supervisor.Supervisor, id: string) =>
  Effect.map(Supervisor.whichChildren(sup), (cs) => {
    const c = cs.find((c) => c.id === id)
    if (c === undefined || typeof c.child === "string") throw new Error(`child ${id} is not running: ${c?.child}`)
    return c.child as Supervisor.Child<Control>
  })

/** `id` → its incarnation number, or "restarting"/"undefined". */
const snapshot = (sup: Supervisor.Supervisor) =>
  Object.fromEntries(
    (Supervisor.whichChildrenUnsafe(sup) ?? []).map((c) => [
      c.id,
      typeof c.child === "string" ? c.child : (c.child.handle as Control).n
    ])
  )

/** Ends child `id`'s body: "normal" succeeds, "abnormal" fails, "defect" dies. */
const exitChild = (sup: Supervisor.Supervisor, id: string, how: "normal" | "abnormal" | "defect" = "abnormal") =>
  Effect.flatMap(running(sup, id), (c) =>
    how === "normal"
      ? Deferred.succeed(c.handle.exit, undefined)
      : how === "abnormal"
        ? Deferred.fail(c.handle.exit, "boom")
        : Deferred.die(c.handle.exit, new Error("defect"))
  )

const tagOf = (e: unknown) => (e as { readonly _tag?: string })._tag

const ids = (sup: Supervisor.Supervisor) => (Supervisor.whichChildrenUnsafe(sup) ?? []).map((c) => c.id)

describe("make", () => {
  it.effect(
    "starts the children in order with Elixir's defaults; whichChildren lists them most recent first (§2.2)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* Supervisor.make([controllable(log, "a"), controllable(log, "b"), controllable(log, "c")], {
          strategy: "oneForOne"
        })
        assert.deepStrictEqual(log.events, ["start:a#1", "start:b#1", "start:c#1"])
        assert.deepStrictEqual(ids(sup), ["c", "b", "a"])
        assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(3, 3))
        assert.strictEqual(sup.strategy, "oneForOne")
        assert.isTrue(Supervisor.isSupervisor(sup))
      })
  )

  it.effect("each child starts only after the previous one's start finished (§2.1)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const slow = ChildSpec.make({
        id: "slow",
        start: Effect.andThen(Effect.sleep("1 second"), log.add("slow ready"))
      })
      const fiber = yield* Supervisor.make([slow, controllable(log, "next")], { strategy: "oneForOne" }).pipe(
        Effect.forkChild
      )
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(log.events, [])
      yield* TestClock.adjust("1 millis")
      const sup = yield* Fiber.join(fiber)
      assert.deepStrictEqual(log.events, ["slow ready", "start:next#1"])
      assert.deepStrictEqual(ids(sup), ["next", "slow"])
    })
  )

  it.effect(
    "rejects bad options and specs with InvalidOptions naming the field, starting nothing (T-SUP #3, C.1 #18)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const ok = controllable(log, "ok")
        const cases: Array<[ReadonlyArray<ChildSpec.ChildSpec<any, any, any>>, Supervisor.Options, string, unknown]> = [
          [[ok], { strategy: "simpleOneForOne" as any }, "strategy", "simpleOneForOne"],
          [[ok], {} as any, "strategy", undefined],
          [[ok], { strategy: "oneForOne", maxRestarts: -1 }, "maxRestarts", -1],
          [[ok], { strategy: "oneForOne", maxRestarts: Infinity }, "maxRestarts", Infinity],
          [[ok], { strategy: "oneForOne", maxSeconds: 0 }, "maxSeconds", 0],
          [[ok], { strategy: "oneForOne", autoShutdown: "sometimes" as any }, "autoShutdown", "sometimes"],
          [[ok, controllable(log, "ok")], { strategy: "oneForOne" }, "id", "ok"],
          [[ChildSpec.make({ start: Effect.void })], { strategy: "oneForOne" }, "id", undefined],
          [[ChildSpec.make({ id: "x", start: Effect.void, shutdown: -1 })], { strategy: "oneForOne" }, "shutdown", -1],
          [
            [ChildSpec.make({ id: "x", start: Effect.void, restart: "transient", significant: true })],
            { strategy: "oneForOne" },
            "significant",
            true
          ],
          [
            [ChildSpec.make({ id: "x", start: Effect.void, significant: true })],
            { strategy: "oneForOne", autoShutdown: "anySignificant" },
            "significant",
            true
          ]
        ]
        for (const [children, options, field, value] of cases) {
          const error = yield* Effect.flip(Supervisor.make(children, options))
          assert.strictEqual(error._tag, "InvalidOptions")
          assert.strictEqual((error as Supervisor.InvalidOptions).field, field)
          assert.isTrue(Object.is((error as Supervisor.InvalidOptions).value, value))
        }
        assert.deepStrictEqual(log.events, [])
      })
  )

  it.effect(
    "a failing start stops the started children in reverse order and fails make with its error (§2.1, C.1 #17)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const live = yield* Ref.make(0)
        const error = yield* Effect.flip(
          Supervisor.make(
            [
              trackedChild(log, "a", { live }),
              trackedChild(log, "b", { live }),
              trackedChild(log, "c", { live, failStart: () => true }),
              trackedChild(log, "d", { live })
            ],
            { strategy: "oneForOne" }
          )
        )
        assert.strictEqual(error, "start failed: c#1")
        assert.deepStrictEqual(log.events, ["start:a#1", "start:b#1", "start:c#1", "stop:c#1", "stop:b#1", "stop:a#1"])
        assert.strictEqual(yield* Ref.get(live), 0)
      })
  )

  it.effect("a child that exits while later ones start is handled once all have started", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const quick = trackedChild(log, "quick", { run: (n) => (n === 1 ? Effect.fail("early") : Effect.never) })
      const slow = ChildSpec.make({ id: "slow", start: Effect.andThen(Effect.sleep("1 second"), log.add("slow")) })
      const fiber = yield* Supervisor.make([quick, slow], { strategy: "oneForAll" }).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const sup = yield* Fiber.join(fiber)
      yield* eventually(() => log.events.includes("start:quick#2"))
      // the crash came after init: one_for_all stopped and restarted both
      assert.deepStrictEqual(log.events, ["start:quick#1", "stop:quick#1", "slow", "start:quick#2"].slice(0, 4))
      yield* TestClock.adjust("1 second")
      yield* eventually(() => log.events.filter((e) => e === "slow").length === 2)
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(2, 2))
    })
  )
})

describe("shutdown", () => {
  it.effect("closing the Scope stops the children one at a time in reverse start order (C.1 #7, §2.6)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const names = ["c3", "c1", "c5", "c2", "c4"]
      yield* Supervisor.make(
        names.map((n) => controllable(log, n)),
        { strategy: "oneForOne" }
      ).pipe(Scope.provide(scope))
      log.events.length = 0
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(log.events, ["stop:c4#1", "stop:c2#1", "stop:c5#1", "stop:c1#1", "stop:c3#1"])
    })
  )

  it.effect("each child is waited for by its own policy; total time is the sum (C.1 #14, #15, §2.6)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      // a exits at once; b's finalizer ignores shutdown for 10 s (shutdown 300 ms); c is brutally killed
      const stubborn = (id: string, shutdown: ChildSpec.Shutdown) =>
        ChildSpec.make({
          id,
          start: Effect.acquireRelease(log.add(`start:${id}`), () =>
            Effect.andThen(finalizerSleep("10 seconds"), log.add(`released:${id}`))
          ),
          shutdown
        })
      const sup = yield* Supervisor.make([controllable(log, "a"), stubborn("b", 300), stubborn("c", "brutalKill")], {
        strategy: "oneForOne"
      }).pipe(Scope.provide(scope))
      log.events.length = 0
      const closing = yield* Scope.close(scope, Exit.void).pipe(Effect.forkChild)
      yield* settle
      // c not waited for; b waited 300 ms; a not stopped yet
      assert.deepStrictEqual(log.events, [])
      yield* TestClock.adjust("299 millis")
      assert.deepStrictEqual(log.events, [])
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(closing)
      assert.deepStrictEqual(log.events, ["stop:a#1"])
      assert.isUndefined(Supervisor.whichChildrenUnsafe(sup))
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(log.events.slice(1).sort(), ["released:b", "released:c"])
    })
  )

  it.effect('"infinity" waits as long as the child takes (C.1 #15)', () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const slow = ChildSpec.make({
        id: "slow",
        start: Effect.acquireRelease(Effect.void, () => Effect.andThen(finalizerSleep("1 hour"), log.add("released"))),
        shutdown: "infinity"
      })
      yield* Supervisor.make([controllable(log, "first"), slow], { strategy: "oneForOne" }).pipe(Scope.provide(scope))
      const closing = yield* Scope.close(scope, Exit.void).pipe(Effect.forkChild)
      yield* TestClock.adjust("59 minutes")
      assert.isUndefined(closing.pollUnsafe())
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(closing)
      assert.deepStrictEqual(log.events.slice(1), ["released", "stop:first#1"])
    })
  )

  it.effect("children exiting by themselves during shutdown are not restarted and do not hang it (C.1 #16)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const exiting = (id: string, restart: ChildSpec.Restart, body: Effect.Effect<void, string>) =>
        ChildSpec.make({
          id,
          restart,
          start: Effect.acquireRelease(log.add(`start:${id}`), () => log.add(`stop:${id}`)),
          run: () => Effect.andThen(Effect.sleep("50 millis"), body)
        })
      // the last child's shutdown takes 100 ms; meanwhile the others exit by themselves
      const slowStop = ChildSpec.make({
        id: "slowStop",
        start: Effect.acquireRelease(Effect.void, () =>
          Effect.andThen(finalizerSleep("100 millis"), log.add("stop:slowStop"))
        )
      })
      const sup = yield* Supervisor.make(
        [
          exiting("p", "permanent", Effect.fail("crash")),
          exiting("t", "transient", Effect.void),
          exiting("tmp", "temporary", Effect.interrupt),
          slowStop
        ],
        { strategy: "oneForOne" }
      ).pipe(Scope.provide(scope))
      log.events.length = 0
      const closing = yield* Scope.close(scope, Exit.void).pipe(Effect.forkChild)
      yield* settle
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(closing)
      // they ended by themselves while slowStop was being stopped; none was restarted
      assert.sameMembers(log.events.slice(0, 3), ["stop:p", "stop:t", "stop:tmp"])
      assert.deepStrictEqual(log.events.slice(3), ["stop:slowStop"])
      assert.isUndefined(Supervisor.countChildrenUnsafe(sup))
    })
  )

  it.effect("after shutdown every operation fails with SupervisorStopped", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const sup = yield* Supervisor.make([controllable(log, "a")], { strategy: "oneForOne" }).pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)
      for (const op of [
        Supervisor.startChild(sup, controllable(log, "b")),
        Supervisor.terminateChild(sup, "a"),
        Supervisor.restartChild(sup, "a"),
        Supervisor.deleteChild(sup, "a"),
        Supervisor.whichChildren(sup),
        Supervisor.countChildren(sup)
      ]) {
        const error = yield* Effect.flip(op as Effect.Effect<unknown, { readonly _tag: string }>)
        assert.strictEqual(error._tag, "SupervisorStopped")
      }
      yield* Supervisor.await(sup)
    })
  )
})

describe("oneForOne", () => {
  it.effect("a permanent child is restarted after any exit: normal, shutdown, abnormal, defect (C.1 #1)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "p")], { strategy: "oneForOne", maxRestarts: 10 })
      const exits = [
        exitChild(sup, "p", "normal"),
        Effect.flatMap(running(sup, "p"), (c) => Deferred.interrupt(c.handle.exit)),
        exitChild(sup, "p", "abnormal"),
        exitChild(sup, "p", "defect")
      ]
      let n = 1
      for (const exit of exits) {
        yield* exit
        n++
        yield* eventually(() => snapshot(sup)["p"] === n, `incarnation ${n}`)
        assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(1, 1))
      }
    })
  )

  it.effect("a transient child is restarted only after an abnormal exit; its spec is kept otherwise (C.1 #2)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "t", { restart: "transient" })], {
        strategy: "oneForOne"
      })
      yield* exitChild(sup, "t", "normal")
      yield* eventually(() => snapshot(sup)["t"] === "undefined")
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(1, 0))
      // start_child with that id → already_present; restart_child brings it back
      const present = yield* Effect.flip(Supervisor.startChild(sup, controllable(log, "t")))
      assert.strictEqual(tagOf(present), "AlreadyPresent")
      yield* Supervisor.restartChild(sup, "t")
      assert.strictEqual(snapshot(sup)["t"], 2)
      yield* Effect.flatMap(running(sup, "t"), (c) => Deferred.interrupt(c.handle.exit))
      yield* eventually(() => snapshot(sup)["t"] === "undefined")
      yield* Supervisor.restartChild(sup, "t")
      yield* exitChild(sup, "t", "abnormal")
      yield* eventually(() => snapshot(sup)["t"] === 4)
    })
  )

  it.effect("a temporary child is never restarted and its spec is dropped (C.1 #3)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "tmp", { restart: "temporary" })], {
        strategy: "oneForOne"
      })
      yield* exitChild(sup, "tmp", "abnormal")
      yield* eventually(() => ids(sup).length === 0)
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(0, 0))
      // the same spec starts again instead of returning AlreadyPresent
      yield* Supervisor.startChild(sup, controllable(log, "tmp", { restart: "temporary" }))
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(1, 1))
    })
  )

  it.effect("only the crashed child is replaced; its siblings keep their incarnation (C.1 #4)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a"), controllable(log, "b")], { strategy: "oneForOne" })
      const b = yield* running(sup, "b")
      yield* exitChild(sup, "a")
      yield* eventually(() => snapshot(sup)["a"] === 2)
      assert.strictEqual((yield* running(sup, "b")).pid, b.pid)
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(2, 2))
      assert.deepStrictEqual(log.events, ["start:a#1", "start:b#1", "stop:a#1", "start:a#2"])
    })
  )
})

describe("oneForAll", () => {
  it.effect(
    "a crash stops the others in reverse start order, then starts all in start order (C.1 #5, §2.5 [ran])",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* Supervisor.make([controllable(log, "a"), controllable(log, "b"), controllable(log, "c")], {
          strategy: "oneForAll"
        })
        const before = (yield* Supervisor.whichChildren(sup)).map((c) => (c.child as Supervisor.Child<Control>).pid)
        log.events.length = 0
        yield* exitChild(sup, "b")
        yield* eventually(() => log.events.length === 6)
        assert.deepStrictEqual(log.events, ["stop:b#1", "stop:c#1", "stop:a#1", "start:a#2", "start:b#2", "start:c#2"])
        const after = (yield* Supervisor.whichChildren(sup)).map((c) => (c.child as Supervisor.Child<Control>).pid)
        assert.isTrue(after.every((pid) => !before.includes(pid)))
        assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(3, 3))
      })
  )

  it.effect("one crash is one counted restart, whatever the strategy takes with it (§2.5 [ran])", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a"), controllable(log, "b"), controllable(log, "c")], {
        strategy: "oneForAll",
        maxRestarts: 1
      })
      yield* exitChild(sup, "b")
      yield* eventually(() => snapshot(sup)["c"] === 2)
      yield* exitChild(sup, "a")
      const error = yield* Effect.flip(Supervisor.await(sup))
      assert.strictEqual(error._tag, "RestartIntensityExceeded")
      assert.strictEqual(error.child, "a")
    })
  )

  it.effect("a temporary bystander is stopped and removed, not restarted (C.1 #13)", () =>
    Effect.gen(function* () {
      for (const strategy of ["oneForAll", "restForOne"] as const) {
        const log = makeEventLog()
        const sup = yield* Supervisor.make(
          [controllable(log, "c1"), controllable(log, "c2", { restart: "temporary" })],
          { strategy }
        )
        yield* exitChild(sup, "c1", "normal")
        yield* eventually(() => snapshot(sup)["c1"] === 2, strategy)
        assert.deepStrictEqual(log.events, ["start:c1#1", "start:c2#1", "stop:c1#1", "stop:c2#1", "start:c1#2"])
        assert.deepStrictEqual(ids(sup), ["c1"])
        assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(1, 1))
      }
    })
  )

  it.effect("a group restart that fails part-way stops what it started, then retries all (C.1 #12)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make(
        [controllable(log, "c1"), controllable(log, "c2", { failStart: (n) => n === 2 })],
        { strategy: "oneForAll" }
      )
      log.events.length = 0
      yield* exitChild(sup, "c1")
      yield* eventually(() => snapshot(sup)["c2"] === 3)
      assert.deepStrictEqual(log.events, [
        "stop:c1#1",
        "stop:c2#1",
        "start:c1#2",
        "start:c2#2",
        "stop:c2#2", // c2's start failed
        "stop:c1#2", // the retry stops the freshly started c1 first
        "start:c1#3",
        "start:c2#3"
      ])
    })
  )

  it.effect("children terminated by hand are started again by a group restart, as OTP's start_children does", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a"), controllable(log, "b")], { strategy: "oneForAll" })
      yield* Supervisor.terminateChild(sup, "b")
      yield* exitChild(sup, "a")
      yield* eventually(() => snapshot(sup)["b"] === 2)
      assert.strictEqual(snapshot(sup)["a"], 2)
    })
  )
})

describe("restForOne", () => {
  it.effect("a crash stops the later children in reverse order and restarts them in start order (C.1 #6)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const names = ["c3", "c1", "c5", "c2", "c4"]
      const sup = yield* Supervisor.make(
        names.map((n) => controllable(log, n)),
        { strategy: "restForOne" }
      )
      const first = yield* running(sup, "c3")
      const second = yield* running(sup, "c1")
      log.events.length = 0
      yield* exitChild(sup, "c5")
      yield* eventually(() => log.events.length === 6)
      assert.deepStrictEqual(log.events, [
        "stop:c5#1",
        "stop:c4#1",
        "stop:c2#1",
        "start:c5#2",
        "start:c2#2",
        "start:c4#2"
      ])
      assert.strictEqual((yield* running(sup, "c3")).pid, first.pid)
      assert.strictEqual((yield* running(sup, "c1")).pid, second.pid)
    })
  )

  it.effect("a failing restart retries only the failing suffix (C.1 #12, rest_for_one variant)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make(
        [controllable(log, "c0"), controllable(log, "c1"), controllable(log, "c2", { failStart: (n) => n === 2 })],
        { strategy: "restForOne" }
      )
      log.events.length = 0
      yield* exitChild(sup, "c1")
      yield* eventually(() => snapshot(sup)["c2"] === 3)
      assert.deepStrictEqual(log.events, [
        "stop:c1#1",
        "stop:c2#1",
        "start:c1#2",
        "start:c2#2",
        "stop:c2#2",
        "start:c2#3"
      ])
      assert.deepStrictEqual(snapshot(sup), { c0: 1, c1: 2, c2: 3 })
    })
  )
})

describe("restart intensity", () => {
  it.effect(
    "more than maxRestarts crashes in the window: children stopped in reverse order, await fails (C.1 #8)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* Supervisor.make([controllable(log, "a"), controllable(log, "b"), controllable(log, "c")], {
          strategy: "oneForOne",
          maxRestarts: 2,
          maxSeconds: 3600
        })
        for (let i = 1; i <= 2; i++) {
          yield* exitChild(sup, "b")
          yield* eventually(() => snapshot(sup)["b"] === i + 1)
        }
        log.events.length = 0
        yield* exitChild(sup, "b")
        const error = yield* Effect.flip(Supervisor.await(sup))
        assert.strictEqual(error._tag, "RestartIntensityExceeded")
        assert.deepStrictEqual([error.maxRestarts, error.maxSeconds, error.child], [2, 3600, "b"])
        // the crashed child is not restarted; the others stop in reverse start order
        assert.deepStrictEqual(log.events, ["stop:b#3", "stop:c#1", "stop:a#1"])
        assert.isUndefined(Supervisor.countChildrenUnsafe(sup))
        const stopped = yield* Effect.flip(Supervisor.startChild(sup, controllable(log, "d")))
        assert.strictEqual(tagOf(stopped), "SupervisorStopped")
      })
  )

  it.effect("maxRestarts 0: the first crash gives up (§4)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a")], { strategy: "oneForOne", maxRestarts: 0 })
      yield* exitChild(sup, "a")
      const error = yield* Effect.flip(Supervisor.await(sup))
      assert.strictEqual(error._tag, "RestartIntensityExceeded")
    })
  )

  it.effect("crashes paced outside the window never give up (C.1 #9)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a")], {
        strategy: "oneForOne",
        maxRestarts: 1,
        maxSeconds: 1
      })
      for (let i = 1; i <= 4; i++) {
        yield* exitChild(sup, "a")
        yield* eventually(() => snapshot(sup)["a"] === i + 1)
        yield* TestClock.adjust("2100 millis")
      }
      assert.isUndefined(Supervisor.await(sup).pipe(Effect.runFork).pollUnsafe())
      // two crashes inside one second do give up
      yield* exitChild(sup, "a")
      yield* eventually(() => snapshot(sup)["a"] === 6)
      yield* TestClock.adjust("500 millis")
      yield* exitChild(sup, "a")
      const error = yield* Effect.flip(Supervisor.await(sup))
      assert.strictEqual(error._tag, "RestartIntensityExceeded")
    })
  )

  it.effect("a crash storm gives up at the (k+1)-th restart: not all N restart and nothing deadlocks (C.1 #10)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const names = Array.from({ length: 10 }, (_, i) => `w${i}`)
      const sup = yield* Supervisor.make(
        names.map((n) => controllable(log, n)),
        { strategy: "oneForOne", maxRestarts: 3 }
      )
      const handles = yield* Effect.forEach(names, (n) => running(sup, n))
      yield* Effect.forEach(handles, (c) => Deferred.fail(c.handle.exit, "storm"), { discard: true })
      const error = yield* Effect.flip(Supervisor.await(sup))
      assert.strictEqual(error._tag, "RestartIntensityExceeded")
      assert.strictEqual(log.events.filter((e) => e.startsWith("start:") && e.endsWith("#2")).length, 3)
      // every incarnation that started was stopped
      assert.strictEqual(
        log.events.filter((e) => e.startsWith("start:")).length,
        log.events.filter((e) => e.startsWith("stop:")).length
      )
    })
  )

  it.effect(
    "every retry of a failing restart is counted; past the limit the supervisor gives up (C.1 #11, §4 [ran])",
    () =>
      Effect.gen(function* () {
        for (const strategy of ["oneForOne", "oneForAll", "restForOne"] as const) {
          const log = makeEventLog()
          const sup = yield* Supervisor.make(
            [controllable(log, "sibling"), controllable(log, "flaky", { failStart: (n) => n > 1 })],
            { strategy, maxRestarts: 3 }
          )
          yield* exitChild(sup, "flaky")
          const error = yield* Effect.flip(Supervisor.await(sup))
          assert.strictEqual(error._tag, "RestartIntensityExceeded")
          // attempts 2, 3, 4 failed; the 4th restart exceeded the limit
          assert.deepStrictEqual(
            log.events.filter((e) => e.startsWith("start:flaky")),
            ["start:flaky#1", "start:flaky#2", "start:flaky#3", "start:flaky#4"],
            strategy
          )
          // one_for_all restarted the sibling with each attempt; rest_for_one left it (it starts before)
          assert.strictEqual(log.events.at(-1), strategy === "oneForAll" ? "stop:sibling#4" : "stop:sibling#1")
        }
      })
  )
})

describe("startChild", () => {
  it.effect("appends the child: it is listed first and stopped first (T-SUP #12, §2.2)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const sup = yield* Supervisor.make([controllable(log, "a")], { strategy: "oneForOne" }).pipe(Scope.provide(scope))
      const c = yield* Supervisor.startChild(sup, controllable(log, "b"))
      assert.strictEqual(c.id, "b")
      assert.strictEqual(c.handle.n, 1)
      assert.deepStrictEqual(ids(sup), ["b", "a"])
      log.events.length = 0
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(log.events, ["stop:b#1", "stop:a#1"])
    })
  )

  it.effect(
    "an id that is running fails with AlreadyStarted carrying the child; a kept spec with AlreadyPresent (C.1 #23)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* Supervisor.make([controllable(log, "a")], { strategy: "oneForOne" })
        const a = yield* running(sup, "a")
        const started = yield* Effect.flip(Supervisor.startChild(sup, controllable(log, "a")))
        assert.strictEqual(tagOf(started), "AlreadyStarted")
        assert.strictEqual((started as Supervisor.AlreadyStarted<Supervisor.Child<unknown>>).child.pid, a.pid)
        yield* Supervisor.terminateChild(sup, "a")
        const present = yield* Effect.flip(Supervisor.startChild(sup, controllable(log, "a")))
        assert.strictEqual(tagOf(present), "AlreadyPresent")
        assert.deepStrictEqual(log.events, ["start:a#1", "stop:a#1"])
      })
  )

  it.effect("a failing start fails with its own error and stores nothing (C.1 #17)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([], { strategy: "oneForOne" })
      const error = yield* Effect.flip(Supervisor.startChild(sup, trackedChild(log, "x", { failStart: () => true })))
      assert.strictEqual(error, "start failed: x#1")
      assert.deepStrictEqual(log.events, ["start:x#1", "stop:x#1"])
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(0, 0))
      const died = yield* Effect.exit(Supervisor.startChild(sup, ChildSpec.make({ id: "d", start: Effect.die("x") })))
      assert.isTrue(Exit.isFailure(died))
      assert.deepStrictEqual(ids(sup), [])
    })
  )

  it.effect(
    "invalid specs fail with InvalidOptions before anything runs; shutdown 0 and 1 are valid (T-SUP #14, #15)",
    () =>
      Effect.gen(function* () {
        const sup = yield* Supervisor.make([], { strategy: "oneForOne" })
        const noId = yield* Effect.flip(Supervisor.startChild(sup, ChildSpec.make({ start: Effect.void })))
        assert.strictEqual(noId._tag, "InvalidOptions")
        const badShutdown = yield* Effect.flip(
          Supervisor.startChild(sup, ChildSpec.make({ id: "x", start: Effect.void, shutdown: -1 }))
        )
        assert.strictEqual((badShutdown as Supervisor.InvalidOptions).field, "shutdown")
        const significant = yield* Effect.flip(
          Supervisor.startChild(
            sup,
            ChildSpec.make({ id: "s", start: Effect.void, restart: "temporary", significant: true })
          )
        )
        assert.strictEqual((significant as Supervisor.InvalidOptions).field, "significant")
        yield* Supervisor.startChild(sup, ChildSpec.make({ id: "zero", start: Effect.void, shutdown: 0 }))
        yield* Supervisor.startChild(sup, ChildSpec.make({ id: "one", start: Effect.void, shutdown: 1 }))
        assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(2, 2))
      })
  )

  it.effect("the pipeable form works like the data-first one", () =>
    Effect.gen(function* () {
      const sup = yield* Supervisor.make([], { strategy: "oneForOne" })
      yield* sup.pipe(Supervisor.startChild(ChildSpec.make({ id: "p", start: Effect.succeed(1) })))
      yield* sup.pipe(Supervisor.terminateChild("p"))
      yield* sup.pipe(Supervisor.restartChild("p"))
      yield* sup.pipe(Supervisor.terminateChild("p"))
      yield* sup.pipe(Supervisor.deleteChild("p"))
      assert.deepStrictEqual(ids(sup), [])
    })
  )
})

describe("terminateChild, restartChild, deleteChild", () => {
  it.effect("child life cycle (T-SUP #16)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a")], { strategy: "oneForOne" })
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(1, 1))
      const running1 = yield* Effect.flip(Supervisor.deleteChild(sup, "a"))
      assert.strictEqual(running1._tag, "ChildRunning")
      const running2 = yield* Effect.flip(Supervisor.restartChild(sup, "a"))
      assert.strictEqual(running2._tag, "ChildRunning")
      yield* Supervisor.terminateChild(sup, "a")
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(1, 0))
      assert.deepStrictEqual(snapshot(sup), { a: "undefined" })
      // terminating a terminated child is ok (C.1 #23)
      yield* Supervisor.terminateChild(sup, "a")
      const c = yield* Supervisor.restartChild(sup, "a")
      assert.strictEqual((c.handle as Control).n, 2)
      yield* Supervisor.terminateChild(sup, "a")
      yield* Supervisor.deleteChild(sup, "a")
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(0, 0))
      for (const op of [
        Supervisor.terminateChild(sup, "a"),
        Supervisor.restartChild(sup, "a"),
        Supervisor.deleteChild(sup, "a")
      ]) {
        const e = yield* Effect.flip(op as Effect.Effect<unknown, { readonly _tag: string }>)
        assert.strictEqual(e._tag, "ChildNotFound")
      }
      assert.deepStrictEqual(log.events, ["start:a#1", "stop:a#1", "start:a#2", "stop:a#2"])
    })
  )

  it.effect("a terminated child's exit is not a crash: no restart, no intensity count (§2.4)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a"), controllable(log, "b")], {
        strategy: "oneForAll",
        maxRestarts: 0
      })
      yield* Supervisor.terminateChild(sup, "b")
      yield* settle
      assert.deepStrictEqual(snapshot(sup), { a: 1, b: "undefined" })
      yield* Supervisor.restartChild(sup, "b")
      yield* Supervisor.terminateChild(sup, "b")
      yield* settle
      assert.deepStrictEqual(snapshot(sup), { a: 1, b: "undefined" })
    })
  )

  it.effect("a temporary child's spec goes with terminateChild", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "t", { restart: "temporary" })], {
        strategy: "oneForOne"
      })
      yield* Supervisor.terminateChild(sup, "t")
      assert.deepStrictEqual(ids(sup), [])
      const e = yield* Effect.flip(Supervisor.restartChild(sup, "t"))
      assert.strictEqual(e._tag, "ChildNotFound")
    })
  )

  it.effect("restartChild fails with StartFailed carrying the cause and leaves the child stopped", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a", { failStart: (n) => n === 2 })], {
        strategy: "oneForOne"
      })
      yield* Supervisor.terminateChild(sup, "a")
      const e = yield* Effect.flip(Supervisor.restartChild(sup, "a"))
      assert.strictEqual(e._tag, "StartFailed")
      assert.deepStrictEqual(snapshot(sup), { a: "undefined" })
      yield* Supervisor.restartChild(sup, "a")
      assert.deepStrictEqual(snapshot(sup), { a: 3 })
    })
  )

  it.effect("a hanging restart loop stays administrable (C.1 #19)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      // every restart takes 1 s and fails
      let n = 0
      const flaky = ChildSpec.make({
        id: "flaky",
        start: Effect.gen(function* () {
          if (++n > 1) {
            yield* Effect.sleep("1 second")
            return yield* Effect.fail("no")
          }
          return yield* Deferred.make<void, string>()
        }),
        run: (d) => Deferred.await(d)
      })
      const sup = yield* Supervisor.make([controllable(log, "stable"), flaky], {
        strategy: "oneForOne",
        maxRestarts: 1000
      })
      const first = yield* Effect.map(Supervisor.whichChildren(sup), (cs) => cs[0]!.child as Supervisor.Child<any>)
      yield* Deferred.fail(first.handle, "crash")
      yield* settle
      assert.strictEqual(snapshot(sup)["flaky"], "restarting")
      // calls made while a restart attempt runs are answered before the next attempt
      const calls = yield* Effect.all(
        [
          Effect.flip(Supervisor.startChild(sup, ChildSpec.make({ id: "flaky", start: Effect.void }))),
          Effect.flip(Supervisor.restartChild(sup, "flaky")),
          Effect.flip(Supervisor.deleteChild(sup, "flaky"))
        ],
        { concurrency: "unbounded" }
      ).pipe(Effect.forkChild)
      yield* settle
      yield* TestClock.adjust("1 second")
      const [a, b, c] = yield* Fiber.join(calls)
      assert.deepStrictEqual([a._tag, b._tag, c._tag], ["AlreadyPresent", "ChildRestarting", "ChildRestarting"])
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(2, 1))
      // terminateChild cancels the retries
      const terminating = yield* Supervisor.terminateChild(sup, "flaky").pipe(Effect.forkChild)
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(terminating)
      assert.deepStrictEqual(snapshot(sup), { flaky: "undefined", stable: 1 })
      const attempts = n
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(n, attempts)
    })
  )
})

describe("whichChildren and countChildren", () => {
  it.effect("count the specs, the running children and the types (§2.2 [ran])", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make(
        [
          controllable(log, "w"),
          controllable(log, "s", { type: "supervisor" }),
          controllable(log, "t", { restart: "transient" })
        ],
        { strategy: "oneForOne" }
      )
      yield* exitChild(sup, "t", "normal")
      yield* eventually(() => snapshot(sup)["t"] === "undefined")
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), { specs: 3, active: 2, supervisors: 1, workers: 2 })
      const types = (yield* Supervisor.whichChildren(sup)).map((c) => [c.id, c.type])
      assert.deepStrictEqual(types, [
        ["t", "worker"],
        ["s", "supervisor"],
        ["w", "worker"]
      ])
    })
  )

  it.effect("stay correct at 1k and 2k children; start/terminate/delete pairs scale linearly (C.1 #24)", () =>
    Effect.gen(function* () {
      const sup = yield* Supervisor.make([], { strategy: "oneForOne" })
      for (let i = 0; i < 2000; i++) {
        yield* Supervisor.startChild(sup, ChildSpec.make({ id: `c${i}`, start: Effect.void }))
        if (i === 999) assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(1000, 1000))
      }
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(2000, 2000))
      for (let i = 0; i < 5000; i++) {
        yield* Supervisor.startChild(sup, ChildSpec.make({ id: "churn", start: Effect.void }))
        yield* Supervisor.terminateChild(sup, "churn")
        yield* Supervisor.deleteChild(sup, "churn")
      }
      assert.deepStrictEqual(yield* Supervisor.countChildren(sup), counts(2000, 2000))
    })
  )
})

describe("autoShutdown", () => {
  const significant = (log: ReturnType<typeof makeEventLog>, id: string, restart: ChildSpec.Restart) =>
    ChildSpec.make({ ...controllable(log, id, { restart }), significant: true } as any) as ReturnType<
      typeof controllable
    >

  it.effect(
    '"anySignificant": a significant child exiting by itself stops the supervisor, others in reverse order (C.1 #22)',
    () =>
      Effect.gen(function* () {
        for (const [restart, how] of [
          ["temporary", "abnormal"],
          ["temporary", "normal"],
          ["transient", "normal"]
        ] as const) {
          const log = makeEventLog()
          const sup = yield* Supervisor.make(
            [controllable(log, "a"), significant(log, "s", restart), controllable(log, "b")],
            { strategy: "oneForOne", autoShutdown: "anySignificant" }
          )
          log.events.length = 0
          yield* exitChild(sup, "s", how)
          yield* Supervisor.await(sup)
          assert.deepStrictEqual(log.events, ["stop:s#1", "stop:b#1", "stop:a#1"], `${restart} ${how}`)
        }
      })
  )

  it.effect("a transient significant child that crashes is restarted and triggers nothing (C.1 #22)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([significant(log, "s", "transient")], {
        strategy: "oneForOne",
        autoShutdown: "anySignificant"
      })
      yield* exitChild(sup, "s", "abnormal")
      yield* eventually(() => snapshot(sup)["s"] === 2)
    })
  )

  it.effect("exits the supervisor caused never trigger it: terminateChild, bystanders (C.1 #22, §2.7 [ran])", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make([controllable(log, "a"), significant(log, "s", "transient")], {
        strategy: "oneForAll",
        autoShutdown: "anySignificant"
      })
      yield* Supervisor.terminateChild(sup, "s")
      yield* Supervisor.restartChild(sup, "s")
      yield* exitChild(sup, "a")
      yield* eventually(() => snapshot(sup)["s"] === 3)
      assert.isDefined(Supervisor.countChildrenUnsafe(sup))
    })
  )

  it.effect('"allSignificant": only when no significant child is left (C.1 #22, §2.7 [ran])', () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* Supervisor.make(
        [
          controllable(log, "plain"),
          significant(log, "s1", "temporary"),
          significant(log, "s2", "transient"),
          significant(log, "s3", "temporary")
        ],
        { strategy: "oneForOne", autoShutdown: "allSignificant" }
      )
      yield* exitChild(sup, "s1", "abnormal")
      yield* eventually(() => snapshot(sup)["s1"] === undefined)
      yield* Supervisor.terminateChild(sup, "s2")
      yield* settle
      assert.isDefined(Supervisor.countChildrenUnsafe(sup))
      yield* exitChild(sup, "s3", "abnormal")
      yield* Supervisor.await(sup)
      assert.isUndefined(Supervisor.countChildrenUnsafe(sup))
    })
  )
})

describe("interruption and concurrency", () => {
  it.effect("a startChild caller interrupted while the start runs leaves nothing behind", () =>
    Effect.gen(function* () {
      const live = yield* Ref.make(0)
      const log = makeEventLog()
      const sup = yield* Supervisor.make([], { strategy: "oneForOne" })
      const slow = ChildSpec.make({
        id: "slow",
        start: Effect.andThen(
          Effect.acquireRelease(
            Ref.update(live, (n) => n + 1),
            () => Ref.update(live, (n) => n - 1)
          ),
          Effect.sleep("1 hour")
        )
      })
      const caller = yield* Supervisor.startChild(sup, slow).pipe(Effect.forkChild)
      yield* settle
      assert.strictEqual(yield* Ref.get(live), 1)
      yield* Fiber.interrupt(caller)
      assert.strictEqual(yield* Ref.get(live), 0)
      assert.deepStrictEqual(ids(sup), [])
      // the supervisor still serves requests
      yield* Supervisor.startChild(sup, controllable(log, "next"))
      assert.deepStrictEqual(ids(sup), ["next"])
    })
  )

  it.effect(
    "closing the Scope during a group restart stops everything, nothing leaks, callers get SupervisorStopped",
    () =>
      Effect.gen(function* () {
        const live = yield* Ref.make(0)
        const log = makeEventLog()
        const scope = yield* Scope.make()
        let starts = 0
        const slowRestart = ChildSpec.make({
          id: "slow",
          start: Effect.gen(function* () {
            yield* Effect.acquireRelease(
              Ref.update(live, (n) => n + 1),
              () => Ref.update(live, (n) => n - 1)
            )
            if (++starts > 1) yield* Effect.sleep("1 hour")
          })
        })
        const sup = yield* Supervisor.make(
          [trackedChild(log, "a", { live, run: () => Effect.never }), slowRestart, trackedChild(log, "c", { live })],
          { strategy: "oneForAll" }
        ).pipe(Scope.provide(scope))
        assert.strictEqual(yield* Ref.get(live), 3)
        // crash a: the group restart stops c, slow, then hangs starting slow again
        const a = Supervisor.whichChildrenUnsafe(sup)!.at(-1)!.child as Supervisor.Child<number>
        yield* Fiber.interrupt(fiberOf(a as never)!)
        yield* settle
        assert.strictEqual(starts, 2)
        const queued = yield* Supervisor.deleteChild(sup, "c").pipe(Effect.flip, Effect.forkChild)
        yield* settle
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual((yield* Fiber.join(queued))._tag, "SupervisorStopped")
        assert.strictEqual(yield* Ref.get(live), 0)
      })
  )

  it.effect(
    "a child that masks interruption does not hang terminateChild: abandoned after its shutdown, reported (C.1 #20, D1)",
    () =>
      Effect.gen(function* () {
        const logger = makeCapturingLogger()
        yield* logger.provide(
          Effect.gen(function* () {
            const log = makeEventLog()
            const sup = yield* Supervisor.make(
              [
                ChildSpec.make({
                  id: "detached",
                  start: Effect.void,
                  run: () => Effect.uninterruptible(finalizerSleep("1 hour")),
                  shutdown: "100 millis"
                }),
                controllable(log, "other")
              ],
              { strategy: "oneForOne" }
            )
            const terminating = yield* Supervisor.terminateChild(sup, "detached").pipe(Effect.forkChild)
            yield* settle
            yield* TestClock.adjust("100 millis")
            yield* Fiber.join(terminating)
            assert.deepStrictEqual(snapshot(sup), { other: 1, detached: "undefined" })
            yield* Supervisor.startChild(sup, controllable(log, "more"))
          })
        )
        const warn = logger.lines.find((l) => l.level === "Warn")
        assert.include(warn?.message, "abandoned")
      })
  )

  it.effect("a crash is logged once, with its cause; a normal exit is not logged", () =>
    Effect.gen(function* () {
      const logger = makeCapturingLogger()
      yield* logger.provide(
        Effect.gen(function* () {
          const log = makeEventLog()
          const sup = yield* Supervisor.make([controllable(log, "a")], { strategy: "oneForOne" })
          yield* exitChild(sup, "a", "normal")
          yield* eventually(() => snapshot(sup)["a"] === 2)
          yield* exitChild(sup, "a", "abnormal")
          yield* eventually(() => snapshot(sup)["a"] === 3)
          yield* settle
        })
      )
      const errors = logger.lines.filter((l) => l.level === "Error")
      assert.strictEqual(errors.length, 1)
      assert.include(errors[0]!.message, '"a"')
      assert.isTrue(errors[0]!.hasCause)
    })
  )
})

describe("static children of every kind", () => {
  it.effect("a ChildSpec.task child runs once and is removed when done, as Elixir's {Task, fun} (T-SUP #13)", () =>
    Effect.gen(function* () {
      const done = yield* Deferred.make<void>()
      const sup = yield* Supervisor.make([ChildSpec.task(Deferred.succeed(done, undefined), { id: "job" })], {
        strategy: "oneForOne"
      })
      yield* Deferred.await(done)
      yield* eventually(() => ids(sup).length === 0)
    })
  )

  it.effect("a child named through a Registry is found under its name after a restart (T-SUP #8, A)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const names = yield* Registry.make<string, Control>({ keys: "unique" })
      const sup = yield* Supervisor.make([Registry.via(names, "worker", controllable(log, "w"))], {
        strategy: "oneForOne"
      })
      const first = (yield* Registry.whereis(names, "worker")).pipe(Option.getOrThrow)
      yield* Deferred.succeed(first.exit, undefined) // a normal exit of a permanent child
      yield* eventually(() => snapshot(sup)["w"] === 2)
      const second = (yield* Registry.whereis(names, "worker")).pipe(Option.getOrThrow)
      assert.strictEqual(second.n, 2)
    })
  )

  it.effect("a supervisor is named through a Registry, as with name: {:via, ...} (T-SUP #5, #6, #7, A)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const names = yield* Registry.make<string, Supervisor.Supervisor>({ keys: "unique" })
      const spec = Supervisor.childSpec([controllable(log, "w")], { id: "named", strategy: "oneForOne" })
      const root = yield* Supervisor.make([Registry.via(names, "MySup", spec)], { strategy: "oneForOne" })
      const sup = (yield* Registry.whereis(names, "MySup")).pipe(Option.getOrThrow)
      assert.deepStrictEqual(ids(sup), ["w"])
      // a second start under the same name fails with AlreadyStarted, carrying the running supervisor
      const again = yield* Effect.flip(
        Supervisor.startChild(root, { ...Registry.via(names, "MySup", spec), id: "other" } as typeof spec)
      )
      assert.strictEqual(tagOf(again), "AlreadyStarted")
    })
  )

  it.effect("Supervisor.childSpec: type supervisor, shutdown infinity, permanent, id from options (T-SUP #1, #2)", () =>
    Effect.gen(function* () {
      const spec = Supervisor.childSpec([], { id: "inner", strategy: "oneForAll" })
      assert.deepStrictEqual(
        [spec.id, spec.type, spec.restart, spec.shutdown._tag],
        ["inner", "supervisor", "permanent", "Infinity"]
      )
      const named = Supervisor.childSpec([], { name: "byName", strategy: "oneForOne", restart: "transient" })
      assert.deepStrictEqual([named.id, named.restart], ["byName", "transient"])
      // two unnamed supervisors collide on their id
      const error = yield* Effect.flip(
        Supervisor.make(
          [Supervisor.childSpec([], { strategy: "oneForOne" }), Supervisor.childSpec([], { strategy: "oneForOne" })],
          { strategy: "oneForOne" }
        )
      )
      assert.strictEqual(error._tag, "InvalidOptions")
    })
  )
})

describe("metrics", () => {
  it.effect("crashes, restarts, start failures and active children are reported through Effect's Metric", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const name = "static-metrics-test"
      const value = (id: string) =>
        Effect.map(Metric.snapshot, (all) => {
          const m = all.find((m) => m.id === id && m.attributes?.["supervisor"] === name)
          const state = m?.state as { readonly count?: number; readonly value?: number } | undefined
          return state?.count ?? state?.value
        })
      const sup = yield* Supervisor.make(
        [controllable(log, "a"), controllable(log, "b", { failStart: (n) => n === 2 }), controllable(log, "c")],
        { name, strategy: "restForOne", maxRestarts: 10 }
      )
      yield* exitChild(sup, "b")
      yield* eventually(() => log.events.includes("start:c#2"))
      yield* settle
      assert.strictEqual(yield* value("effect_otp_child_crashes_total"), 1)
      // b#2 failed to start; the retry restarted b and c
      assert.strictEqual(yield* value("effect_otp_child_start_failures_total"), 1)
      assert.strictEqual(yield* value("effect_otp_child_restarts_total"), 2)
      assert.strictEqual(yield* value("effect_otp_children_active"), 3)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
