/**
 * RateLimitedSupervisor under TestClock: reliability scenarios C.7
 * (#94–#103) and decision D7.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Scheduler, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { ChildSpec, RateLimitedSupervisor, RateLimiter } from "effect-otp"
import { RestartIntensityExceeded, SupervisorStopped } from "../../src/Errors.ts"
import { maxInAnyWindow } from "../../src/RateLimiter/internal/algorithm.ts"

interface Start {
  readonly at: number
  readonly label: string
}

/** A temporary job that records when its start ran, then runs for `runFor` ms (forever if undefined). */
const job = (log: Array<Start>, label: string, runFor?: number) =>
  ChildSpec.make({
    id: label,
    start: Effect.map(Clock.currentTimeMillis, (at) => {
      log.push({ at, label })
      return label
    }),
    run: () => (runFor === undefined ? Effect.never : Effect.sleep(runFor)),
    restart: "temporary"
  })

const spawn = <A, E>(sup: RateLimitedSupervisor.RateLimitedSupervisor, spec: ChildSpec.ChildSpec<A, E>, key?: string) =>
  Effect.forkChild(RateLimitedSupervisor.startChild(sup, spec, { key }), { startImmediately: true })

const times = (log: ReadonlyArray<Start>) => log.map((s) => s.at)
const labels = (log: ReadonlyArray<Start>) => log.map((s) => s.label).join("")

describe("make", () => {
  const invalid: ReadonlyArray<[string, RateLimitedSupervisor.Options, string]> = [
    ["limit 0", { limit: 0, window: 1000 }, "limit"],
    ["NaN limit", { limit: NaN, window: 1000 }, "limit"],
    ["window 0", { limit: 1, window: 0 }, "window"],
    ["maxLive 0", { limit: 1, window: 1000, maxLive: 0 }, "maxLive"],
    ["negative maxLive", { limit: 1, window: 1000, maxLive: -3 }, "maxLive"],
    [
      "limitRestarts not a boolean",
      { limit: 1, window: 1000, limitRestarts: "yes" as unknown as boolean },
      "limitRestarts"
    ],
    ["the supervisor's maxSeconds 0", { limit: 1, window: 1000, maxSeconds: 0 }, "maxSeconds"]
  ]
  for (const [name, options, field] of invalid) {
    it.effect(`rejects ${name} with InvalidOptions`, () =>
      Effect.gen(function* () {
        const e = yield* Effect.flip(RateLimitedSupervisor.make(options))
        assert.strictEqual(e._tag, "InvalidOptions")
        assert.strictEqual(e.field, field)
        assert.strictEqual(e.module, "RateLimitedSupervisor")
      })
    )
  }
})

describe("Service", () => {
  class Spawner extends RateLimitedSupervisor.Service<Spawner>()("test/Spawner", { limit: 1, window: 1000 }) {}

  it.effect("a service class provides a named spawner through its layer", () =>
    Effect.gen(function* () {
      const sup = yield* Spawner
      assert.isTrue(RateLimitedSupervisor.isRateLimitedSupervisor(sup))
      assert.strictEqual(sup.name, "test/Spawner")
      const child = yield* RateLimitedSupervisor.startChild(sup, ChildSpec.make({ start: Effect.succeed(1) }))
      assert.strictEqual(child.handle, 1)
      assert.strictEqual((yield* RateLimiter.stats(sup.limiter)).admitted, 1)
    }).pipe(Effect.provide(Spawner.layer))
  )
})

describe("startChild", () => {
  it.effect("starts at most limit children per window; the rest wait in order", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 2, window: 1000 })
      const log: Array<Start> = []
      const fibers = []
      for (const l of "abcde") fibers.push(yield* spawn(sup, job(log, l)))
      assert.strictEqual(labels(log), "ab")
      yield* TestClock.adjust(999)
      assert.strictEqual(labels(log), "ab")
      yield* TestClock.adjust(1001)
      assert.deepStrictEqual(times(log), [0, 0, 1000, 1000, 2000])
      assert.strictEqual(labels(log), "abcde")
      const children = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(
        children.map((c) => c.handle),
        ["a", "b", "c", "d", "e"]
      )
      assert.strictEqual((yield* RateLimitedSupervisor.countChildren(sup)).active, 5)
    })
  )

  it.effect("with extraArguments, a spec factory receives them", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 1000, extraArguments: "cfg" })
      const child = yield* RateLimitedSupervisor.startChild(sup, (extra: string) =>
        ChildSpec.make({ start: Effect.succeed(`${extra}!`) })
      )
      assert.strictEqual(child.handle, "cfg!")
    })
  )

  // reliability C.7 #100
  it.effect("the admission is spent when the child starts: a request parked by maxLive holds no token", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 1000, maxLive: 1 })
      const log: Array<Start> = []
      const a = yield* spawn(sup, job(log, "a"))
      yield* spawn(sup, job(log, "b", 100))
      yield* spawn(sup, job(log, "c"))
      yield* TestClock.adjust(5000)
      assert.strictEqual(labels(log), "a")
      assert.strictEqual((yield* RateLimitedSupervisor.stats(sup)).admitted, 1)
      yield* RateLimitedSupervisor.terminateChild(sup, yield* Fiber.join(a))
      // b starts now; it ends at 5100, but c's admission is still one window after b's
      assert.deepStrictEqual(times(log), [0, 5000])
      yield* TestClock.adjust(999)
      assert.strictEqual(labels(log), "ab")
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(times(log), [0, 5000, 6000])
    })
  )

  it.effect("maxLive caps the live children; a child's exit lets the next one start", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 100, window: 1000, maxLive: 2 })
      const log: Array<Start> = []
      for (const l of "abcde") yield* spawn(sup, job(log, l, 300))
      assert.strictEqual((yield* RateLimitedSupervisor.stats(sup)).live, 2)
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(times(log), [0, 0, 300, 300, 600])
      const s = yield* RateLimitedSupervisor.stats(sup)
      assert.deepStrictEqual([s.live, s.queued, s.maxLive], [0, 0, 2])
    })
  )

  // reliability C.7 #94
  it.effect("a full queue fails at once with QueueFull and creates no child", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ name: "spawner", limit: 1, window: 1000, maxQueue: 1 })
      const log: Array<Start> = []
      yield* spawn(sup, job(log, "a"))
      yield* spawn(sup, job(log, "b"))
      const e = yield* Effect.flip(RateLimitedSupervisor.startChild(sup, job(log, "c")))
      assert.deepStrictEqual(
        e,
        new RateLimiter.QueueFull({ limiter: "spawner", maxQueue: 1, key: undefined, retryAfterMillis: 1000 })
      )
      assert.strictEqual((yield* RateLimitedSupervisor.countChildren(sup)).specs, 1)
      assert.strictEqual((yield* RateLimitedSupervisor.stats(sup)).rejected, 1)
    })
  )

  // reliability C.7 #97
  it.effect("a caller interrupted while queued leaves the queue, consumes nothing and leaves no child", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 1000 })
      const log: Array<Start> = []
      yield* spawn(sup, job(log, "a"))
      const b = yield* spawn(sup, job(log, "b"))
      yield* TestClock.adjust(500)
      yield* Fiber.interrupt(b)
      const s = yield* RateLimitedSupervisor.stats(sup)
      assert.deepStrictEqual([s.queued, s.admitted, s.live], [0, 1, 1])
      yield* TestClock.adjust(500)
      // the token b never used is there for c, at once
      yield* spawn(sup, job(log, "c"))
      assert.deepStrictEqual(times(log), [0, 1000])
      assert.strictEqual(labels(log), "ac")
      assert.strictEqual((yield* RateLimitedSupervisor.countChildren(sup)).specs, 2)
    })
  )

  it.effect("a start that fails fails the caller, frees its slot and the next request goes on", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 1000, maxLive: 1 })
      const log: Array<Start> = []
      const bad = ChildSpec.make({ start: Effect.fail("no connection" as const) })
      const failing = yield* spawn(sup, bad)
      const next = yield* spawn(sup, job(log, "b"))
      assert.deepStrictEqual(yield* Fiber.await(failing), Exit.fail("no connection" as const))
      assert.strictEqual((yield* RateLimitedSupervisor.stats(sup)).live, 0)
      // the failed start spent its admission: b waits for the next window
      yield* TestClock.adjust(1000)
      assert.strictEqual((yield* Fiber.join(next)).handle, "b")
      assert.deepStrictEqual(times(log), [1000])
    })
  )

  it.effect("an invalid spec fails with InvalidOptions before it queues or spends anything", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 1000 })
      const e = yield* Effect.flip(
        RateLimitedSupervisor.startChild(
          sup,
          ChildSpec.make({ start: Effect.void, restart: "sometimes" as "permanent" })
        )
      )
      assert.strictEqual(e._tag, "InvalidOptions")
      assert.strictEqual((yield* RateLimitedSupervisor.stats(sup)).available, 1)
    })
  )

  it.effect("keys are served round-robin", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 100 })
      const log: Array<Start> = []
      for (let i = 0; i < 6; i++) yield* spawn(sup, job(log, "a"), "a")
      yield* spawn(sup, job(log, "b"), "b")
      yield* spawn(sup, job(log, "c"), "c")
      yield* TestClock.adjust(1000)
      assert.strictEqual(labels(log), "aabcaaaa")
    })
  )

  // reliability C.7 #95
  it.effect("property: queued work never waits while a start is allowed, and everything drains", () =>
    Effect.gen(function* () {
      const samples = fc.sample(
        fc.record({
          limit: fc.integer({ min: 1, max: 5 }),
          window: fc.integer({ min: 1, max: 400 }),
          maxLive: fc.integer({ min: 1, max: 4 }),
          jobs: fc.array(
            fc.record({ gap: fc.integer({ min: 0, max: 150 }), runFor: fc.integer({ min: 0, max: 300 }) }),
            { minLength: 1, maxLength: 40 }
          )
        }),
        { numRuns: 25, seed: 3 }
      )
      for (const { limit, window, maxLive, jobs } of samples) {
        const scope = yield* Scope.make()
        const sup = yield* RateLimitedSupervisor.make({ limit, window, maxLive, maxQueue: Infinity }).pipe(
          Scope.provide(scope)
        )
        const log: Array<Start> = []
        const check = Effect.gen(function* () {
          const s = yield* RateLimitedSupervisor.stats(sup)
          // no wedge: someone waits only if the cap is reached or the window is full
          if (s.queued > 0) assert.isTrue(s.live >= maxLive || s.available === 0, JSON.stringify(s))
          assert.isAtMost(s.live, maxLive)
        })
        for (const [i, j] of jobs.entries()) {
          yield* TestClock.adjust(j.gap)
          yield* check
          yield* spawn(sup, job(log, String(i), j.runFor))
          yield* check
        }
        for (let t = 0; t < jobs.length * (window + 300); t += 50) {
          yield* TestClock.adjust(50)
          yield* check
        }
        assert.strictEqual(log.length, jobs.length)
        assert.isAtMost(maxInAnyWindow(times(log), window), limit)
        const s = yield* RateLimitedSupervisor.stats(sup)
        assert.deepStrictEqual([s.live, s.queued], [0, 0])
        yield* Scope.close(scope, Exit.void)
      }
    })
  )
})

describe("interleavings", () => {
  // reliability B.11: yield at every step boundary; C.7 #95, #97
  it.effect("property: random interruptions under forced yields never leak a slot or wedge the queue", () =>
    Effect.gen(function* () {
      const samples = fc.sample(
        fc.record({
          ops: fc.integer({ min: 3, max: 64 }),
          reqs: fc.array(
            fc.record({
              gap: fc.integer({ min: 0, max: 60 }),
              runFor: fc.integer({ min: 0, max: 200 }),
              interruptAfter: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined })
            }),
            { minLength: 1, maxLength: 30 }
          )
        }),
        { numRuns: 20, seed: 5 }
      )
      for (const { ops, reqs } of samples) {
        const run = Effect.gen(function* () {
          const sup = yield* RateLimitedSupervisor.make({ limit: 3, window: 200, maxLive: 2, maxQueue: Infinity })
          const log: Array<Start> = []
          const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
          for (const [i, r] of reqs.entries()) {
            yield* TestClock.adjust(r.gap)
            const f = yield* Effect.forkChild(RateLimitedSupervisor.startChild(sup, job(log, String(i), r.runFor)))
            fibers.push(f)
            if (r.interruptAfter !== undefined) {
              yield* Effect.forkChild(Effect.andThen(Effect.sleep(r.interruptAfter), Fiber.interrupt(f)))
            }
          }
          for (let t = 0; t < reqs.length * 400 + 1000; t += 100) {
            yield* TestClock.adjust(100)
            const s = yield* RateLimitedSupervisor.stats(sup)
            if (s.queued > 0) assert.isTrue(s.live >= 2 || s.available === 0, JSON.stringify(s))
          }
          const s = yield* RateLimitedSupervisor.stats(sup)
          // everything ended: no slot is held by a request that went away, nothing waits
          assert.deepStrictEqual([s.live, s.queued], [0, 0])
          assert.isAtMost(log.length, s.admitted)
          assert.isAtMost(maxInAnyWindow(times(log), 200), 3)
          const exits = yield* Effect.forEach(fibers, Fiber.await)
          assert.isAtMost(exits.filter(Exit.isSuccess).length, log.length)
        })
        yield* Effect.scoped(run).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, ops))
      }
    })
  )
})

describe("restarts (D7)", () => {
  /** A permanent child that records each start and crashes `after` ms later, `times` times (forever if undefined). */
  const crashing = (log: Array<Start>, label: string, after: number, crashes = Infinity) => {
    let n = 0
    return ChildSpec.make({
      id: label,
      start: Effect.map(Clock.currentTimeMillis, (at) => {
        log.push({ at, label })
      }),
      run: () => (n++ < crashes ? Effect.andThen(Effect.sleep(after), Effect.fail("crash")) : Effect.never)
    })
  }

  // reliability C.7 #103
  it.effect("a crash storm is paced by the limiter: restarts count toward limit per window", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 2, window: 1000, maxRestarts: 30, maxSeconds: 1 })
      const log: Array<Start> = []
      yield* RateLimitedSupervisor.startChild(sup, crashing(log, "x", 10))
      yield* TestClock.adjust(10_000)
      assert.strictEqual(maxInAnyWindow(times(log), 1000), 2)
      assert.strictEqual(log.length, 2 * 10 + 1)
      // intensity never tripped: two restarts a second stay under 30 a second
      assert.strictEqual((yield* RateLimitedSupervisor.countChildren(sup)).specs, 1)
    })
  )

  it.effect("with limitRestarts: false restarts are immediate and only intensity stops the storm", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({
        limit: 2,
        window: 1000,
        maxRestarts: 30,
        maxSeconds: 1,
        limitRestarts: false
      })
      const log: Array<Start> = []
      yield* RateLimitedSupervisor.startChild(sup, crashing(log, "x", 10))
      const done = yield* Effect.forkChild(Effect.exit(RateLimitedSupervisor.await(sup)))
      yield* TestClock.adjust(1000)
      const exit = yield* Fiber.join(done)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(log.length, 31)
    })
  )

  it.effect("a restart goes ahead of the queued requests", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 1000 })
      const log: Array<Start> = []
      yield* spawn(sup, crashing(log, "a", 500, 1))
      yield* spawn(sup, job(log, "b"))
      yield* spawn(sup, job(log, "c"))
      yield* TestClock.adjust(600)
      const s = yield* RateLimitedSupervisor.stats(sup)
      assert.deepStrictEqual([s.priorityQueued, s.queued], [1, 2])
      yield* TestClock.adjust(3000)
      assert.strictEqual(labels(log), "aabc")
      assert.deepStrictEqual(times(log), [0, 1000, 2000, 3000])
    })
  )

  it.effect("a restart is not held back by maxLive: the restarting child keeps its slot", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 10, window: 1000, maxLive: 1 })
      const log: Array<Start> = []
      yield* spawn(sup, crashing(log, "a", 100, 1))
      yield* spawn(sup, job(log, "b"))
      yield* TestClock.adjust(5000)
      // b never gets a's slot: a was restarting, then running again
      assert.strictEqual(labels(log), "aa")
      assert.deepStrictEqual(times(log), [0, 100])
      assert.strictEqual((yield* RateLimitedSupervisor.stats(sup)).queued, 1)
    })
  )
})

describe("setLimits", () => {
  // reliability C.7 #96
  it.effect("raising the limit and maxLive mid-flight starts the queued requests at once, in order", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 2, window: 1000, maxLive: 3 })
      const log: Array<Start> = []
      for (const l of "abcdefg") yield* spawn(sup, job(log, l))
      yield* TestClock.adjust(1000)
      assert.strictEqual(labels(log), "abc")
      yield* RateLimitedSupervisor.setLimits(sup, { limit: 5, maxLive: 10 })
      // the window (0, 1000] holds c only: four more now
      assert.strictEqual(labels(log), "abcdefg".slice(0, 7))
      assert.deepStrictEqual(times(log), [0, 0, 1000, 1000, 1000, 1000, 1000])
    })
  )

  it.effect("invalid limits fail with InvalidOptions and change nothing", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 2, window: 1000, maxLive: 3 })
      const e = yield* Effect.flip(RateLimitedSupervisor.setLimits(sup, { maxLive: 0 }))
      assert.strictEqual(e.field, "maxLive")
      const e2 = yield* Effect.flip(RateLimitedSupervisor.setLimits(sup, { limit: -1 }))
      assert.strictEqual(e2.field, "limit")
      const s = yield* RateLimitedSupervisor.stats(sup)
      assert.deepStrictEqual([s.limit, s.maxLive], [2, 3])
    })
  )
})

describe("shutdown", () => {
  it.effect("closing the Scope stops the children, then fails the queued requests with SupervisorStopped", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 1000 }).pipe(Scope.provide(scope))
      let open = 0
      const held = ChildSpec.make({
        start: Effect.acquireRelease(
          Effect.sync(() => open++),
          () => Effect.sync(() => open--)
        )
      })
      yield* RateLimitedSupervisor.startChild(sup, held)
      const queued = yield* spawn(sup, held)
      assert.strictEqual(open, 1)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(open, 0)
      assert.deepStrictEqual(yield* Fiber.await(queued), Exit.fail(new SupervisorStopped({ reason: "shutdown" })))
      const e = yield* Effect.flip(RateLimitedSupervisor.startChild(sup, held))
      assert.strictEqual(e._tag, "SupervisorStopped")
    })
  )

  it.effect("when the supervisor gives up, queued requests fail with SupervisorStopped carrying the reason", () =>
    Effect.gen(function* () {
      const sup = yield* RateLimitedSupervisor.make({ limit: 1, window: 1000, maxRestarts: 0, limitRestarts: false })
      const crash = ChildSpec.make({
        start: Effect.void,
        run: () => Effect.andThen(Effect.sleep(10), Effect.fail("boom"))
      })
      yield* RateLimitedSupervisor.startChild(sup, crash)
      const queued = yield* spawn(sup, crash)
      yield* TestClock.adjust(10)
      const exit = yield* Fiber.await(queued)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual(error?._tag, "Fail")
      const stopped = (error as { error: SupervisorStopped }).error
      assert.instanceOf(stopped, SupervisorStopped)
      assert.instanceOf(stopped.reason, RestartIntensityExceeded)
    })
  )
})
