/**
 * DynamicSupervisor: Elixir's dynamic_supervisor_test.exs cases marked Y/A in
 * otp-semantics §9.1 (cited as T-DS #n) and reliability scenarios C.2 / C.3.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Metric, Random, Ref, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { ChildSpec, DynamicSupervisor } from "effect-otp"
import { backoffDelay } from "../../src/internal/backoff.ts"
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

const tagOf = (e: unknown): string | undefined => (e as { readonly _tag?: string })._tag

/** The handle of the first child currently running (after a restart it is the new incarnation's). */
const runningHandle = <X>(sup: DynamicSupervisor.DynamicSupervisor<X>) =>
  Effect.map(DynamicSupervisor.whichChildren(sup), (cs) => {
    const c = cs.find((c) => c.child !== "restarting")
    return c === undefined || c.child === "restarting" ? undefined : (c.child.handle as Control)
  })

describe("make", () => {
  it.effect("starts with no children and Elixir's defaults (T-DS #4)", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make()
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(0, 0))
      assert.deepStrictEqual(yield* DynamicSupervisor.whichChildren(sup), [])
    })
  )

  it.effect("rejects bad options with InvalidOptions naming the field and the value (T-DS #5)", () =>
    Effect.gen(function* () {
      const cases: Array<[DynamicSupervisor.Options<never>, string, unknown]> = [
        [{ maxChildren: -1 }, "maxChildren", -1],
        [{ maxChildren: 1.5 }, "maxChildren", 1.5],
        [{ maxChildren: Number.NaN }, "maxChildren", Number.NaN],
        [{ maxRestarts: -1 }, "maxRestarts", -1],
        [{ maxRestarts: 2.5 }, "maxRestarts", 2.5],
        [{ maxSeconds: 0 }, "maxSeconds", 0],
        [{ maxSeconds: -5 }, "maxSeconds", -5],
        [{ maxSeconds: Number.NaN }, "maxSeconds", Number.NaN],
        [{ maxSeconds: Infinity }, "maxSeconds", Infinity],
        [{ restartBackoff: 5 as any }, "restartBackoff", 5]
      ]
      for (const [options, field, value] of cases) {
        const error = yield* Effect.flip(DynamicSupervisor.make(options))
        assert.strictEqual(error._tag, "InvalidOptions")
        assert.strictEqual(error.field, field)
        assert.isTrue(Object.is(error.value, value))
        assert.include(error.message, field)
      }
    })
  )

  it.effect("accepts maxChildren 0, maxRestarts 0, fractional maxSeconds and Infinity maxChildren", () =>
    Effect.gen(function* () {
      yield* DynamicSupervisor.make({ maxChildren: 0, maxRestarts: 0, maxSeconds: 0.5 })
      yield* DynamicSupervisor.make({ maxChildren: Infinity })
    })
  )
})

describe("startChild", () => {
  it.effect("returns after start finished, with the handle start produced (T-DS #12, #16)", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make()
      const child = yield* DynamicSupervisor.startChild(
        sup,
        ChildSpec.make({ id: "slow", start: Effect.as(Effect.sleep("1 second"), "ready") })
      ).pipe(Effect.forkChild)
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(child.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const c = yield* Fiber.join(child)
      assert.strictEqual(c.handle, "ready")
      assert.strictEqual(c.id, "slow")
      assert.strictEqual(c.type, "worker")
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(1, 1))
    })
  )

  it.effect("ids are labels, not keys: two children with the same id both start (C.2 #35)", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make()
      const spec = ChildSpec.make({ id: "same", start: Effect.void })
      const a = yield* DynamicSupervisor.startChild(sup, spec)
      const b = yield* DynamicSupervisor.startChild(sup, spec)
      assert.notStrictEqual(a.pid, b.pid)
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(2, 2))
    })
  )

  it.effect(
    "a failing start fails startChild with its error, releases what it acquired and stores nothing (T-DS #16, C.2 #26)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* DynamicSupervisor.make()
        const error = yield* Effect.flip(
          DynamicSupervisor.startChild(sup, trackedChild(log, "w", { failStart: () => true }))
        )
        assert.strictEqual(error, "start failed: w#1")
        assert.deepStrictEqual(log.events, ["start:w#1", "stop:w#1"])
        assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(0, 0))
      })
  )

  it.effect("a start that dies or is interrupted reports its cause (T-DS #17)", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make()
      const died = yield* Effect.exit(
        DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.die(new Error("oops")) }))
      )
      assert.isTrue(Exit.isFailure(died) && died.cause.reasons.some((r) => r._tag === "Die"))
      const interrupted = yield* Effect.exit(
        DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.interrupt }))
      )
      assert.isTrue(Exit.hasInterrupts(interrupted))
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(0, 0))
    })
  )

  it.effect("passes extraArguments to a spec factory (T-DS #14)", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make({ extraArguments: { region: "eu" } })
      const child = yield* DynamicSupervisor.startChild(sup, (extra: { region: string }) =>
        ChildSpec.make({ start: Effect.succeed(`worker in ${extra.region}`) })
      )
      assert.strictEqual(child.handle, "worker in eu")
    })
  )

  it.effect("fails with MaxChildren at the limit and runs nothing (T-DS #18, C.2 #25)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const none = yield* DynamicSupervisor.make({ maxChildren: 0 })
      const e0 = yield* Effect.flip(DynamicSupervisor.startChild(none, trackedChild(log, "w")))
      assert.strictEqual(tagOf(e0), "MaxChildren")
      assert.deepStrictEqual(log.events, [])

      const one = yield* DynamicSupervisor.make({ maxChildren: 1 })
      yield* DynamicSupervisor.startChild(one, trackedChild(log, "a"))
      const e1 = yield* Effect.flip(DynamicSupervisor.startChild(one, trackedChild(log, "b")))
      assert.strictEqual(tagOf(e1), "MaxChildren")
      assert.deepStrictEqual(log.events, ["start:a#1"])
    })
  )

  it.effect("starts in flight count toward maxChildren, so concurrent starts cannot overshoot", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make({ maxChildren: 2 })
      const slow = ChildSpec.make({ start: Effect.sleep("1 second") })
      const results = yield* Effect.forEach(
        [1, 2, 3, 4],
        () => Effect.result(DynamicSupervisor.startChild(sup, slow)),
        {
          concurrency: "unbounded"
        }
      ).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const rs = yield* Fiber.join(results)
      assert.strictEqual(rs.filter((r) => r._tag === "Success").length, 2)
      assert.strictEqual(rs.filter((r) => r._tag === "Failure" && r.failure._tag === "MaxChildren").length, 2)
    })
  )

  it.effect("a child restarting after a failed restart still counts toward maxChildren (T-DS #23)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ maxChildren: 1, maxRestarts: 100 })
      const child = yield* DynamicSupervisor.startChild(sup, controllable(log, "w", { failStart: (n) => n > 1 }))
      yield* Deferred.fail(child.handle.exit, "boom")
      yield* eventually(() => log.events.includes("start:w#2"))
      const c = yield* DynamicSupervisor.countChildren(sup)
      assert.strictEqual(c.specs, 1)
      assert.strictEqual(c.active, 0)
      const e = yield* Effect.flip(DynamicSupervisor.startChild(sup, controllable(log, "other")))
      assert.strictEqual(tagOf(e), "MaxChildren")
    })
  )

  it.effect("a restarted child still counts toward maxChildren (T-DS #24)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ maxChildren: 1 })
      const child = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      yield* Deferred.fail(child.handle.exit, "boom")
      yield* eventually(() => log.events.includes("start:w#2"))
      const e = yield* Effect.flip(DynamicSupervisor.startChild(sup, controllable(log, "other")))
      assert.strictEqual(tagOf(e), "MaxChildren")
    })
  )

  it.effect("an invalid spec fails with InvalidOptions before anything runs (T-DS #15, #30)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make()
      const bad: Array<ChildSpec.ChildSpec<any, any>> = [
        trackedChild(log, "neg", { shutdown: -1 }),
        trackedChild(log, "nan", { shutdown: Number.NaN }),
        trackedChild(log, "restart", { restart: "sometimes" as any }),
        ChildSpec.make({ start: Effect.void, type: "manager" as any })
      ]
      for (const spec of bad) {
        const e = yield* Effect.flip(DynamicSupervisor.startChild(sup, spec))
        assert.strictEqual(tagOf(e), "InvalidOptions")
      }
      const neg = yield* Effect.flip(DynamicSupervisor.startChild(sup, trackedChild(log, "neg", { shutdown: -1 })))
      assert.strictEqual((neg as any).field, "shutdown")
      assert.strictEqual((neg as any).value, -1)
      assert.deepStrictEqual(log.events, [])
    })
  )

  it.effect("shutdown 0 and 1 ms are valid (T-DS #29)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(sup, trackedChild(log, "zero", { shutdown: 0 }))
      yield* DynamicSupervisor.startChild(sup, trackedChild(log, "one", { shutdown: 1 }))
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(2, 2))
    })
  )

  it.effect("a caller interrupted while start runs leaves nothing behind", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make()
      const spec = ChildSpec.make({
        start: Effect.andThen(
          Effect.acquireRelease(log.add("acquired"), () => log.add("released")),
          Effect.sleep("1 hour")
        )
      })
      const caller = yield* Effect.forkChild(DynamicSupervisor.startChild(sup, spec))
      yield* eventually(() => log.events.includes("acquired"))
      yield* Fiber.interrupt(caller)
      assert.deepStrictEqual(log.events, ["acquired", "released"])
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(0, 0))
    })
  )

  it.effect("fibers forked by start with forkChild belong to the child, not to the caller", () =>
    Effect.gen(function* () {
      const ticks = yield* Ref.make(0)
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(
        sup,
        ChildSpec.make({
          start: Effect.forkChild(
            Effect.forever(
              Effect.andThen(
                Effect.sleep("1 second"),
                Ref.update(ticks, (n) => n + 1)
              )
            )
          )
        })
      )
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual(yield* Ref.get(ticks), 3)
    })
  )

  it.effect("the seed's three forms all start: a spec, a temporary spec, a one-off task", () =>
    Effect.gen(function* () {
      const done = yield* Deferred.make<string>()
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ id: "worker", start: Effect.succeed("w") }))
      yield* DynamicSupervisor.startChild(
        sup,
        ChildSpec.make({ id: "temp", start: Effect.succeed("t"), restart: "temporary" })
      )
      yield* DynamicSupervisor.startChild(sup, ChildSpec.task(Deferred.succeed(done, "task ran")))
      assert.strictEqual(yield* Deferred.await(done), "task ran")
      yield* eventually(() => DynamicSupervisor.countChildrenUnsafe(sup)?.specs === 2)
    })
  )

  it.effect("fails with SupervisorStopped once the supervisor's Scope closed", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
      yield* Scope.close(scope, Exit.void)
      const e = yield* Effect.flip(DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.void })))
      assert.strictEqual(e._tag, "SupervisorStopped")
      assert.strictEqual((yield* Effect.flip(DynamicSupervisor.countChildren(sup)))._tag, "SupervisorStopped")
    })
  )
})

describe("restart values", () => {
  const exitWith = (how: "normal" | "failure" | "defect" | "interrupt") => (c: Control) =>
    how === "normal"
      ? Deferred.succeed(c.exit, undefined)
      : how === "failure"
        ? Deferred.fail(c.exit, "whatever")
        : how === "defect"
          ? Deferred.die(c.exit, new Error("defect"))
          : Deferred.interrupt(c.exit)

  const restartedAfter = (restart: ChildSpec.Restart, how: "normal" | "failure" | "defect" | "interrupt") =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make()
      const child = yield* DynamicSupervisor.startChild(sup, controllable(log, "w", { restart }))
      yield* exitWith(how)(child.handle)
      yield* eventually(() => log.events.includes("stop:w#1"))
      yield* settle
      return { restarted: log.events.includes("start:w#2"), counts: yield* DynamicSupervisor.countChildren(sup) }
    })

  it.effect("temporary child is not restarted regardless of reason (T-DS #19, C.2 #27)", () =>
    Effect.gen(function* () {
      for (const how of ["normal", "failure", "defect", "interrupt"] as const) {
        const r = yield* restartedAfter("temporary", how)
        assert.isFalse(r.restarted, how)
        assert.deepStrictEqual(r.counts, counts(0, 0))
      }
    })
  )

  it.effect("transient child is restarted only after a failure or defect (T-DS #20, C.2 #27)", () =>
    Effect.gen(function* () {
      for (const how of ["normal", "interrupt"] as const) {
        const r = yield* restartedAfter("transient", how)
        assert.isFalse(r.restarted, how)
        assert.deepStrictEqual(r.counts, counts(0, 0))
      }
      for (const how of ["failure", "defect"] as const) {
        const r = yield* restartedAfter("transient", how)
        assert.isTrue(r.restarted, how)
        assert.deepStrictEqual(r.counts, counts(1, 1))
      }
    })
  )

  it.effect("permanent child is restarted regardless of reason (T-DS #21, C.2 #27)", () =>
    Effect.gen(function* () {
      for (const how of ["normal", "failure", "defect", "interrupt"] as const) {
        const r = yield* restartedAfter("permanent", how)
        assert.isTrue(r.restarted, how)
        assert.deepStrictEqual(r.counts, counts(1, 1))
      }
    })
  )

  it.effect("a restart is a new incarnation: new pid, new handle, the old one released first", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make()
      const first = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      yield* Deferred.fail(first.handle.exit, "boom")
      yield* eventually(() => log.events.includes("start:w#2"))
      assert.deepStrictEqual(log.events, ["start:w#1", "stop:w#1", "start:w#2"])
      const [info] = yield* DynamicSupervisor.whichChildren(sup)
      assert.isDefined(info)
      assert.notStrictEqual(info!.pid, first.pid)
      assert.strictEqual((info!.child as DynamicSupervisor.Child<Control>).handle.n, 2)
    })
  )

  it.effect("extraArguments are applied again on restart (T-DS #25, C.2 #33)", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const sup = yield* DynamicSupervisor.make({ extraArguments: "extra" })
      const child = yield* DynamicSupervisor.startChild(sup, (extra: string) =>
        ChildSpec.make({
          start: Effect.gen(function* () {
            seen.push(extra)
            return yield* Deferred.make<void, string>()
          }),
          run: (d) => Deferred.await(d)
        })
      )
      yield* Deferred.fail(child.handle, "boom")
      yield* eventually(() => seen.length === 2)
      assert.deepStrictEqual(seen, ["extra", "extra"])
    })
  )

  it.effect("a crash is logged once with its cause; normal exits are not logged", () =>
    Effect.gen(function* () {
      const logger = makeCapturingLogger()
      yield* logger.provide(
        Effect.gen(function* () {
          const log = makeEventLog()
          const sup = yield* DynamicSupervisor.make()
          const a = yield* DynamicSupervisor.startChild(sup, controllable(log, "crashy", { restart: "temporary" }))
          const b = yield* DynamicSupervisor.startChild(sup, controllable(log, "calm", { restart: "temporary" }))
          yield* Deferred.fail(a.handle.exit, "boom")
          yield* Deferred.succeed(b.handle.exit, undefined)
          yield* eventually(() => logger.lines.length > 0)
          yield* settle
        })
      )
      const errors = logger.lines.filter((l) => l.level === "Error")
      assert.strictEqual(errors.length, 1)
      assert.include(errors[0]!.message, "crashy")
      assert.isTrue(errors[0]!.hasCause)
    })
  )
})

describe("restarts that fail", () => {
  it.effect(
    "a failed restart leaves the child restarting and is retried until it succeeds (T-DS #22, #26, C.2 #28)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* DynamicSupervisor.make({ maxRestarts: 10 })
        const child = yield* DynamicSupervisor.startChild(
          sup,
          controllable(log, "w", { failStart: (n) => n === 2 || n === 3 })
        )
        yield* Deferred.fail(child.handle.exit, "boom")
        yield* eventually(() => log.events.includes("start:w#4"))
        assert.deepStrictEqual(log.events, [
          "start:w#1",
          "stop:w#1",
          "start:w#2",
          "stop:w#2",
          "start:w#3",
          "stop:w#3",
          "start:w#4"
        ])
        yield* eventually(() => DynamicSupervisor.countChildrenUnsafe(sup)?.active === 1)
        assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(1, 1))
      })
  )

  it.effect(
    "a child stuck restarting is counted under workers but not active, and listed as restarting (T-DS #22)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* DynamicSupervisor.make({
          maxRestarts: 1000,
          restartBackoff: Schedule.spaced("1 second")
        })
        yield* DynamicSupervisor.startChild(sup, controllable(log, "ok"))
        const child = yield* DynamicSupervisor.startChild(sup, controllable(log, "w", { failStart: (n) => n > 1 }))
        yield* Deferred.fail(child.handle.exit, "boom")
        yield* TestClock.adjust("1 second")
        yield* eventually(() => log.events.includes("stop:w#2"))
        assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(2, 1))
        const infos = yield* DynamicSupervisor.whichChildren(sup)
        assert.deepStrictEqual(
          infos.map((i) => [i.id, i.child === "restarting" ? "restarting" : "running"]),
          [
            ["ok", "running"],
            ["w", "restarting"]
          ]
        )
      })
  )
})

describe("restart intensity", () => {
  it.effect(
    "maxRestarts 1: the second crash in the window stops the supervisor with RestartIntensityExceeded (T-DS #27)",
    () =>
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* DynamicSupervisor.make({ maxRestarts: 1, maxSeconds: 5 })
        const other = yield* DynamicSupervisor.startChild(sup, controllable(log, "bystander"))
        const c1 = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
        const waiting = yield* Effect.forkChild(Effect.flip(DynamicSupervisor.await(sup)))
        yield* Deferred.fail(c1.handle.exit, "boom")
        yield* eventually(() => log.events.includes("start:w#2"))
        const c2 = yield* runningHandle(sup)
        const w2 = (yield* DynamicSupervisor.whichChildren(sup)).find((i) => i.id === "w")!
        assert.strictEqual((w2.child as DynamicSupervisor.Child<Control>).handle.n, 2)
        assert.isDefined(c2)
        yield* Deferred.fail((w2.child as DynamicSupervisor.Child<Control>).handle.exit, "boom")
        const error = yield* Fiber.join(waiting)
        assert.strictEqual(error._tag, "RestartIntensityExceeded")
        assert.strictEqual(error.maxRestarts, 1)
        assert.isFalse(log.events.includes("start:w#3"))
        assert.isTrue(log.events.includes(`stop:bystander#${other.handle.n}`))
        const later = yield* Effect.flip(DynamicSupervisor.startChild(sup, controllable(log, "late")))
        assert.strictEqual(tagOf(later), "SupervisorStopped")
      })
  )

  it.effect("maxRestarts 0: the first crash stops the supervisor", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ maxRestarts: 0 })
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      yield* Deferred.fail(c.handle.exit, "boom")
      const error = yield* Effect.flip(DynamicSupervisor.await(sup))
      assert.strictEqual(error._tag, "RestartIntensityExceeded")
      assert.deepStrictEqual(log.events, ["start:w#1", "stop:w#1"])
    })
  )

  it.effect("restarts that keep failing count toward the intensity (T-DS #28, C.2 #29)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ maxRestarts: 10 })
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w", { failStart: (n) => n > 1 }))
      yield* Deferred.fail(c.handle.exit, "boom")
      const error = yield* Effect.flip(DynamicSupervisor.await(sup))
      assert.strictEqual(error._tag, "RestartIntensityExceeded")
      // the first crash and 10 failed retries were allowed; the 11th retry was not attempted
      assert.strictEqual(log.events.filter((e) => e.startsWith("start:")).length, 11)
    })
  )

  it.effect("the window slides: with 2 in 1 s, crashes at 0, 0.9, 1.0 s pass and one at 1.1 s gives up (D2)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ maxRestarts: 2, maxSeconds: 1 })
      yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      const crash = Effect.gen(function* () {
        const h = yield* runningHandle(sup)
        yield* Deferred.fail(h!.exit, "boom")
        yield* settle
      })
      yield* crash // t = 0
      yield* TestClock.adjust("900 millis")
      yield* crash // t = 0.9
      yield* TestClock.adjust("100 millis")
      yield* crash // t = 1.0: the restart at 0 is exactly 1 s old, still in the window → 3 > 2
      const error = yield* Effect.flip(DynamicSupervisor.await(sup))
      assert.strictEqual(error._tag, "RestartIntensityExceeded")
    })
  )

  it.effect("crashes further apart than the window never add up", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ maxRestarts: 1, maxSeconds: 1 })
      yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      for (let i = 0; i < 5; i++) {
        const h = yield* runningHandle(sup)
        yield* Deferred.fail(h!.exit, "boom")
        yield* eventually(() => log.events.includes(`start:w#${i + 2}`))
        yield* TestClock.adjust("1001 millis")
      }
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(1, 1))
    })
  )

  it.effect("a DynamicSupervisor child that gives up is restarted by its parent (escalation)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const parent = yield* DynamicSupervisor.make({ name: "parent" })
      const inner = yield* DynamicSupervisor.startChild(
        parent,
        DynamicSupervisor.childSpec({ name: "inner", maxRestarts: 0 })
      )
      assert.strictEqual(inner.type, "supervisor")
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(parent), counts(1, 1, 0, 1))
      const c = yield* DynamicSupervisor.startChild(inner.handle, controllable(log, "leaf"))
      yield* Deferred.fail(c.handle.exit, "boom")
      yield* eventually(() => {
        const infos = Effect.runSync(DynamicSupervisor.whichChildren(parent))
        return infos.length === 1 && infos[0]!.child !== "restarting" && infos[0]!.pid !== inner.pid
      })
      const [restarted] = yield* DynamicSupervisor.whichChildren(parent)
      const fresh = (restarted!.child as DynamicSupervisor.Child<DynamicSupervisor.DynamicSupervisor<never>>).handle
      assert.notStrictEqual(fresh, inner.handle)
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(fresh), counts(0, 0))
    })
  )
})

describe("restartBackoff", () => {
  it.effect("delays each restart by the schedule: not at min - 1 ms, at min; then 2·min (C.3 #37)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({
        maxRestarts: 100,
        restartBackoff: Schedule.exponential("1 second"),
        restartBackoffResetAfter: "1 minute"
      })
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      yield* Deferred.fail(c.handle.exit, "boom")
      yield* settle
      yield* TestClock.adjust("999 millis")
      yield* settle
      assert.isFalse(log.events.includes("start:w#2"))
      yield* TestClock.adjust("1 millis")
      yield* eventually(() => log.events.includes("start:w#2"))
      const h2 = yield* runningHandle(sup)
      yield* Deferred.fail(h2!.exit, "boom")
      yield* settle
      yield* TestClock.adjust("1999 millis")
      yield* settle
      assert.isFalse(log.events.includes("start:w#3"))
      yield* TestClock.adjust("1 millis")
      yield* eventually(() => log.events.includes("start:w#3"))
    })
  )

  it.effect("a child that stayed up for the reset period starts its backoff afresh (C.3 #38)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({
        maxRestarts: 100,
        restartBackoff: Schedule.exponential("1 second"),
        restartBackoffResetAfter: "10 seconds"
      })
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      yield* Deferred.fail(c.handle.exit, "boom")
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* eventually(() => log.events.includes("start:w#2"))
      yield* TestClock.adjust("10 seconds") // stable
      const h2 = yield* runningHandle(sup)
      yield* Deferred.fail(h2!.exit, "boom")
      yield* settle
      yield* TestClock.adjust("1 second") // min again, not 2 s
      yield* eventually(() => log.events.includes("start:w#3"))
    })
  )

  it.effect("a backoff schedule that ends makes the supervisor give up (C.3 #39)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({
        maxRestarts: 100,
        restartBackoff: Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 2 }))
      })
      yield* DynamicSupervisor.startChild(sup, controllable(log, "w", { failStart: (n) => n > 1 }))
      const h = yield* runningHandle(sup)
      const waiting = yield* Effect.forkChild(Effect.flip(DynamicSupervisor.await(sup)))
      yield* Deferred.fail(h!.exit, "boom")
      for (let i = 0; i < 5; i++) {
        yield* settle
        yield* TestClock.adjust("100 millis")
      }
      const error = yield* Fiber.join(waiting)
      assert.strictEqual(error.reason, "backoff")
      assert.strictEqual(log.events.filter((e) => e.startsWith("start:w")).length, 3)
    })
  )

  it.effect("terminateChild cancels a pending backoff restart", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ restartBackoff: Schedule.spaced("1 second") })
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      yield* Deferred.fail(c.handle.exit, "boom")
      yield* eventually(() => log.events.includes("stop:w#1"))
      yield* DynamicSupervisor.terminateChild(sup, c)
      yield* TestClock.adjust("5 seconds")
      yield* settle
      assert.isFalse(log.events.includes("start:w#2"))
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(0, 0))
    })
  )
})

describe("terminateChild", () => {
  for (const shutdown of ["brutalKill", 5000, "infinity"] as const) {
    it.effect(
      `stops the child (shutdown ${shutdown}), never restarts it, then ChildNotFound (T-DS #39, #40, C.2 #32)`,
      () =>
        Effect.gen(function* () {
          const log = makeEventLog()
          const sup = yield* DynamicSupervisor.make()
          const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w", { restart: "permanent", shutdown }))
          yield* DynamicSupervisor.terminateChild(sup, c)
          yield* eventually(() => log.events.includes("stop:w#1"))
          yield* settle
          assert.deepStrictEqual(log.events, ["start:w#1", "stop:w#1"])
          assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(0, 0))
          const e = yield* Effect.flip(DynamicSupervisor.terminateChild(sup, c))
          assert.strictEqual(e._tag, "ChildNotFound")
        })
    )
  }

  it.effect("terminates a restarting child through its last incarnation (T-DS #41)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ maxRestarts: 1000, restartBackoff: Schedule.spaced("1 second") })
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w", { failStart: (n) => n > 1 }))
      yield* Deferred.fail(c.handle.exit, "boom")
      yield* TestClock.adjust("1 second")
      yield* eventually(() => log.events.includes("stop:w#2"))
      yield* DynamicSupervisor.terminateChild(sup, c)
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(0, 0))
      assert.strictEqual((yield* Effect.flip(DynamicSupervisor.terminateChild(sup, c)))._tag, "ChildNotFound")
    })
  )

  it.effect("an incarnation that was restarted is not found", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make()
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      yield* Deferred.fail(c.handle.exit, "boom")
      yield* eventually(() => log.events.includes("start:w#2"))
      const e = yield* Effect.flip(DynamicSupervisor.terminateChild(sup, c))
      assert.strictEqual(e._tag, "ChildNotFound")
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(1, 1))
    })
  )

  it.effect("a child whose finalizer overruns its shutdown is abandoned after that long, and reported", () =>
    Effect.gen(function* () {
      const logger = makeCapturingLogger()
      yield* logger.provide(
        Effect.gen(function* () {
          const sup = yield* DynamicSupervisor.make()
          const c = yield* DynamicSupervisor.startChild(
            sup,
            ChildSpec.make({
              id: "stuck",
              start: Effect.addFinalizer(() => finalizerSleep("1 hour")),
              shutdown: "100 millis"
            })
          )
          const stopping = yield* Effect.forkChild(DynamicSupervisor.terminateChild(sup, c))
          yield* TestClock.adjust("99 millis")
          assert.isUndefined(stopping.pollUnsafe())
          yield* TestClock.adjust("1 millis")
          yield* Fiber.join(stopping)
          yield* eventually(() => logger.lines.some((l) => l.level === "Warn"))
        })
      )
      assert.include(logger.lines.find((l) => l.level === "Warn")!.message, "abandoned")
    })
  )
})

describe("shutdown", () => {
  it.effect("closing the Scope stops every child concurrently, each by its own policy (T-DS #31–#38, C.2 #30)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
      const slowStop = (name: string, ms: number, shutdown: ChildSpec.Shutdown) =>
        ChildSpec.make({
          id: name,
          start: Effect.addFinalizer(() =>
            Effect.andThen(log.add(`stopping:${name}`), Effect.andThen(finalizerSleep(ms), log.add(`stopped:${name}`)))
          ),
          shutdown
        })
      yield* DynamicSupervisor.startChild(sup, slowStop("infinity", 200, "infinity"))
      yield* DynamicSupervisor.startChild(sup, slowStop("timeout", 300, "1 second"))
      yield* DynamicSupervisor.startChild(sup, slowStop("stuck", 10_000, "1 millis"))
      yield* DynamicSupervisor.startChild(sup, slowStop("brutal", 10_000, "brutalKill"))
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* settle
      // every child was asked to stop before any of them finished
      assert.deepStrictEqual(log.events.slice(0, 4).sort(), [
        "stopping:brutal",
        "stopping:infinity",
        "stopping:stuck",
        "stopping:timeout"
      ])
      yield* TestClock.adjust("299 millis")
      assert.isUndefined(closing.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(closing) // total ≈ the longest wait, not the sum
      assert.deepStrictEqual(log.events.slice(4), ["stopped:infinity", "stopped:timeout"])
    })
  )

  it.effect("no child is restarted while its supervisor shuts down", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
      for (const name of ["a", "b", "c"]) yield* DynamicSupervisor.startChild(sup, controllable(log, name))
      yield* Scope.close(scope, Exit.void)
      yield* settle
      assert.deepStrictEqual(log.events.filter((e) => e.startsWith("start:")).length, 3)
      assert.deepStrictEqual(log.events.filter((e) => e.startsWith("stop:")).length, 3)
      yield* DynamicSupervisor.await(sup)
    })
  )

  it.effect("a child still in start when the supervisor stops is stopped and its caller told SupervisorStopped", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
      const caller = yield* Effect.forkChild(
        DynamicSupervisor.startChild(
          sup,
          ChildSpec.make({
            start: Effect.andThen(
              Effect.acquireRelease(log.add("acq"), () => log.add("rel")),
              Effect.never
            )
          })
        )
      )
      yield* eventually(() => log.events.includes("acq"))
      yield* Scope.close(scope, Exit.void)
      const e = yield* Effect.flip(Fiber.join(caller))
      assert.strictEqual(e._tag, "SupervisorStopped")
      assert.deepStrictEqual(log.events, ["acq", "rel"])
    })
  )
})

describe("countChildren and whichChildren", () => {
  it.effect("count workers and supervisors separately (T-DS #1)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(sup, controllable(log, "w1"))
      yield* DynamicSupervisor.startChild(sup, controllable(log, "w2"))
      yield* DynamicSupervisor.startChild(sup, DynamicSupervisor.childSpec({ name: "nested" }))
      assert.deepStrictEqual(yield* DynamicSupervisor.countChildren(sup), counts(3, 3, 2, 1))
      const infos = yield* DynamicSupervisor.whichChildren(sup)
      assert.deepStrictEqual(
        infos.map((i) => [i.id, i.type]),
        [
          ["w1", "worker"],
          ["w2", "worker"],
          ["nested", "supervisor"]
        ]
      )
    })
  )
})

describe("metrics", () => {
  it.effect("crashes, restarts, start failures and active children are reported through Effect's Metric", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const name = "metrics-test"
      const sup = yield* DynamicSupervisor.make({ name, maxRestarts: 10 })
      const attrs = { supervisor: name }
      const value = (id: string) =>
        Effect.map(Metric.snapshot, (all) => {
          const m = all.find((m) => m.id === id && m.attributes?.["supervisor"] === attrs.supervisor)
          const state = m?.state as { readonly count?: number; readonly value?: number } | undefined
          return state?.count ?? state?.value
        })
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "w", { failStart: (n) => n === 2 }))
      yield* Effect.flip(DynamicSupervisor.startChild(sup, trackedChild(log, "bad", { failStart: () => true })))
      yield* Deferred.fail(c.handle.exit, "boom")
      yield* eventually(() => log.events.includes("start:w#3"))
      yield* settle
      assert.strictEqual(yield* value("effect_otp_child_crashes_total"), 1)
      assert.strictEqual(yield* value("effect_otp_child_restarts_total"), 1)
      assert.strictEqual(yield* value("effect_otp_child_start_failures_total"), 2)
      assert.strictEqual(yield* value("effect_otp_children_active"), 1)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})

describe("Service and layer", () => {
  class Workers extends DynamicSupervisor.Service<Workers>()("test/Workers", { maxChildren: 1 }) {}

  it.effect("a Service class provides a named supervisor as a Layer; releasing the layer stops its children", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      yield* Effect.gen(function* () {
        const sup = yield* Workers
        assert.strictEqual(sup.name, "test/Workers")
        yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
        const e = yield* Effect.flip(DynamicSupervisor.startChild(sup, controllable(log, "x")))
        assert.strictEqual(tagOf(e), "MaxChildren")
      }).pipe(Effect.provide(Workers.layer))
      assert.deepStrictEqual(log.events, ["start:w#1", "stop:w#1"])
    })
  )

  it.effect("layer(tag, options) fails to build with InvalidOptions on bad options", () =>
    Effect.gen(function* () {
      class Bad extends Context.Service<Bad, DynamicSupervisor.DynamicSupervisor<never>>()("test/Bad") {}
      const e = yield* Effect.flip(Effect.provide(Effect.void, DynamicSupervisor.layer(Bad, { maxSeconds: 0 })))
      assert.strictEqual(e._tag, "InvalidOptions")
      assert.strictEqual(e._tag === "InvalidOptions" ? e.field : undefined, "maxSeconds")
    })
  )
})

describe("whichChildren restart counts", () => {
  it.effect("each entry carries how many times that child was restarted", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ maxRestarts: 10 })
      yield* DynamicSupervisor.startChild(sup, controllable(log, "calm"))
      const c = yield* DynamicSupervisor.startChild(sup, controllable(log, "flaky"))
      yield* Deferred.fail(c.handle.exit, "boom")
      yield* eventually(() => log.events.includes("start:flaky#2"))
      const h = (yield* DynamicSupervisor.whichChildren(sup)).find((i) => i.id === "flaky")!
      yield* Deferred.fail((h.child as DynamicSupervisor.Child<Control>).handle.exit, "boom")
      yield* eventually(() => log.events.includes("start:flaky#3"))
      const infos = yield* DynamicSupervisor.whichChildren(sup)
      assert.deepStrictEqual(
        infos.map((i) => [i.id, i.restarts]),
        [
          ["calm", 0],
          ["flaky", 2]
        ]
      )
    })
  )
})

describe("shutdown with failing finalizers", () => {
  it.effect("a child whose finalizer fails during shutdown does not stop the others from stopping (C.2 #31)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
      yield* DynamicSupervisor.startChild(
        sup,
        ChildSpec.make({ id: "bad", start: Effect.addFinalizer(() => Effect.die(new Error("finalizer failed"))) })
      )
      yield* DynamicSupervisor.startChild(sup, controllable(log, "good"))
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(log.events, ["start:good#1", "stop:good#1"])
      yield* DynamicSupervisor.await(sup)
    })
  )
})

describe("backoff", () => {
  it("delay table: min·factor^(n-1) capped at max, no overflow (C.3 #36)", () => {
    const m = 60_000
    const table: Array<[number, number, number, number, number]> = [
      // attempt, min, max, factor, expected
      [1, 5 * m, 7 * m, 2, 5 * m],
      [3, 5_000, 7_000, 2, 7_000],
      [3, 5_000, 7 * 24 * 60 * m, 2, 20_000],
      [Number.MAX_SAFE_INTEGER, 100, 2_000, 2, 2_000],
      [2000, 100, 2_000, 2, 2_000],
      [4, 100, 2_000, 1, 100],
      [0, 100, 2_000, 2, 100]
    ]
    for (const [attempt, min, max, factor, expected] of table) {
      assert.strictEqual(backoffDelay(attempt, min, max, factor), expected, `attempt ${attempt}`)
    }
  })

  it.effect("restarts wait 100, 200, 400 ms and then stay at the 400 ms cap", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({
        maxRestarts: 100,
        maxSeconds: 3600,
        restartBackoff: DynamicSupervisor.backoff({ min: "100 millis", max: "400 millis" }),
        restartBackoffResetAfter: "1 hour"
      })
      yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      for (const [n, delay] of [
        [2, 100],
        [3, 200],
        [4, 400],
        [5, 400]
      ] as const) {
        const h = yield* runningHandle(sup)
        yield* Deferred.fail(h!.exit, "boom")
        yield* settle
        yield* TestClock.adjust(delay - 1)
        yield* settle
        assert.isFalse(log.events.includes(`start:w#${n}`), `not before ${delay} ms`)
        yield* TestClock.adjust(1)
        yield* eventually(() => log.events.includes(`start:w#${n}`), `restart ${n} at ${delay} ms`)
      }
    })
  )

  it.effect("jittered delays stay within 80–120% of the exponential delay (C.3 #44, D3)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({
        maxRestarts: 100,
        maxSeconds: 3600,
        restartBackoff: DynamicSupervisor.backoff({ min: "1 second", max: "1 second", jitter: true }),
        restartBackoffResetAfter: "1 hour"
      })
      yield* DynamicSupervisor.startChild(sup, controllable(log, "w"))
      const delays: Array<number> = []
      for (let n = 2; n <= 6; n++) {
        const h = yield* runningHandle(sup)
        yield* Deferred.fail(h!.exit, "boom")
        yield* settle
        let waited = 0
        while (!log.events.includes(`start:w#${n}`) && waited < 2000) {
          yield* TestClock.adjust("10 millis")
          waited += 10
          yield* settle
        }
        delays.push(waited)
      }
      for (const d of delays) assert.isTrue(d >= 800 && d <= 1210, `delay ${d} ms outside 80–120% of 1 s`)
      assert.isTrue(new Set(delays).size > 1, `jitter varies the delay: ${delays}`)
    }).pipe(Random.withSeed("effect-otp"))
  )

  it.effect("bad backoff options are rejected by make with InvalidOptions", () =>
    Effect.gen(function* () {
      const cases: Array<[Parameters<typeof DynamicSupervisor.backoff>[0], string]> = [
        [{ min: -1, max: 10 }, "min"],
        [{ min: 100, max: 10 }, "max"],
        [{ min: 1, max: 10, factor: 0.5 }, "factor"],
        [{ min: 1, max: 10, factor: Number.NaN }, "factor"]
      ]
      for (const [options, field] of cases) {
        const e = yield* Effect.flip(DynamicSupervisor.make({ restartBackoff: DynamicSupervisor.backoff(options) }))
        assert.strictEqual(e._tag, "InvalidOptions")
        assert.strictEqual(e.field, field)
      }
    })
  )
})
