/**
 * RateLimiter under TestClock: reliability scenarios C.7 (#90–#104).
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Metric, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { RateLimiter } from "effect-otp"
import { maxInAnyWindow } from "../../src/RateLimiter/internal/algorithm.ts"

interface Admission {
  readonly at: number
  readonly label: string
}

/** Forks a request that records when it was admitted. */
const request = (limiter: RateLimiter.RateLimiter, log: Array<Admission>, label = "", key?: string) =>
  Effect.forkChild(
    RateLimiter.take(limiter, { key }).pipe(
      Effect.andThen(Clock.currentTimeMillis),
      Effect.map((at) => {
        log.push({ at, label })
      })
    ),
    { startImmediately: true }
  )

const times = (log: ReadonlyArray<Admission>) => log.map((a) => a.at)
const labels = (log: ReadonlyArray<Admission>) => log.map((a) => a.label)

/** The timer fiber and the queues are gone: nothing is left behind. */
const assertIdle = (limiter: RateLimiter.RateLimiter) => {
  const s = RateLimiter.statsUnsafe(limiter)
  assert.strictEqual(s.queued, 0)
  assert.strictEqual(s.priorityQueued, 0)
  assert.strictEqual(s.nextAdmissionInMillis, undefined)
  assert.isUndefined((limiter as unknown as { timer: unknown }).timer)
}

describe("make", () => {
  const invalid: ReadonlyArray<[string, RateLimiter.Options, string, unknown]> = [
    ["limit 0", { limit: 0, window: 1000 }, "limit", 0],
    ["negative limit", { limit: -1, window: 1000 }, "limit", -1],
    ["NaN limit", { limit: NaN, window: 1000 }, "limit", NaN],
    ["fractional limit", { limit: 1.5, window: 1000 }, "limit", 1.5],
    ["infinite limit", { limit: Infinity, window: 1000 }, "limit", Infinity],
    ["window 0", { limit: 1, window: 0 }, "window", 0],
    ["negative window", { limit: 1, window: -5 }, "window", -5],
    ["NaN window", { limit: 1, window: NaN }, "window", NaN],
    ["infinite window", { limit: 1, window: "Infinity" }, "window", "Infinity"],
    ["burst on a sliding window", { limit: 1, window: 1000, burst: 3 }, "burst", 3],
    ["burst 0", { algorithm: "tokenBucket", limit: 1, window: 1000, burst: 0 }, "burst", 0],
    ["negative maxQueue", { limit: 1, window: 1000, maxQueue: -1 }, "maxQueue", -1],
    ["per-key limit 0", { limit: 1, window: 1000, perKey: { limit: 0, window: 1000 } }, "perKey.limit", 0],
    ["per-key window 0", { limit: 1, window: 1000, perKey: { limit: 1, window: 0 } }, "perKey.window", 0],
    ["unknown algorithm", { algorithm: "leaky" as "tokenBucket", limit: 1, window: 1000 }, "algorithm", "leaky"]
  ]
  for (const [name, options, field, value] of invalid) {
    it.effect(`rejects ${name} with InvalidOptions naming the field and the value (C.7 #98)`, () =>
      Effect.gen(function* () {
        const e = yield* Effect.flip(RateLimiter.make(options))
        assert.strictEqual(e._tag, "InvalidOptions")
        assert.strictEqual(e.field, field)
        assert.isTrue(Object.is(e.value, value))
        assert.include(e.message, `RateLimiter: invalid ${field}`)
      })
    )
  }

  it.effect("accepts durations as strings and Infinity for maxQueue", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 2, window: "1 second", maxQueue: Infinity })
      const s = yield* RateLimiter.stats(limiter)
      assert.strictEqual(s.windowMillis, 1000)
      assert.strictEqual(s.maxQueue, Infinity)
      assert.strictEqual(s.algorithm, "slidingWindow")
    })
  )
})

describe("Service", () => {
  class ApiLimiter extends RateLimiter.Service<ApiLimiter>()("test/ApiLimiter", { limit: 2, window: 1000 }) {}

  it.effect("a service class provides a named limiter through its layer", () =>
    Effect.gen(function* () {
      const limiter = yield* ApiLimiter
      assert.isTrue(RateLimiter.isRateLimiter(limiter))
      assert.isFalse(RateLimiter.isRateLimiter({}))
      assert.strictEqual(limiter.name, "test/ApiLimiter")
      yield* RateLimiter.take(limiter)
      assert.strictEqual((yield* RateLimiter.stats(limiter)).available, 1)
    }).pipe(Effect.provide(ApiLimiter.layer))
  )
})

describe("take", () => {
  it.effect("admits limit at once, then the next exactly one window after the first (not a moment before)", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 3, window: 1000 })
      const log: Array<Admission> = []
      for (let i = 0; i < 5; i++) yield* request(limiter, log, String(i))
      assert.deepStrictEqual(times(log), [0, 0, 0])
      yield* TestClock.adjust(999)
      assert.strictEqual(log.length, 3)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(times(log), [0, 0, 0, 1000, 1000])
      assert.deepStrictEqual(labels(log), ["0", "1", "2", "3", "4"])
      assertIdle(limiter)
    })
  )

  // reliability C.7 #90
  it.effect("window edge: N just before the window ends and N just after are never more than N in a window", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 5, window: 1000 })
      const log: Array<Admission> = []
      yield* TestClock.adjust(999)
      for (let i = 0; i < 5; i++) yield* request(limiter, log)
      yield* TestClock.adjust(2)
      for (let i = 0; i < 5; i++) yield* request(limiter, log)
      yield* TestClock.adjust(2000)
      assert.deepStrictEqual(times(log), [999, 999, 999, 999, 999, 1999, 1999, 1999, 1999, 1999])
      assert.strictEqual(maxInAnyWindow(times(log), 1000), 5)
    })
  )

  // reliability C.7 #93
  it.effect("an idle pause then a burst: still at most N in any window", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 10, window: 1010 })
      const log: Array<Admission> = []
      for (let i = 0; i < 10; i++) yield* request(limiter, log)
      yield* TestClock.adjust(50)
      for (let i = 0; i < 10; i++) yield* request(limiter, log)
      yield* TestClock.adjust(5000)
      assert.strictEqual(log.length, 20)
      assert.strictEqual(maxInAnyWindow(times(log), 1010), 10)
      assert.deepStrictEqual(times(log).slice(10), Array(10).fill(1010))
    })
  )

  it.effect("serves waiters in arrival order (FIFO)", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 1, window: 100 })
      const log: Array<Admission> = []
      for (const l of "abcdef") yield* request(limiter, log, l)
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(labels(log).join(""), "abcdef")
      assert.deepStrictEqual(times(log), [0, 100, 200, 300, 400, 500])
    })
  )

  // reliability C.7 #94
  it.effect("a full queue rejects at once with QueueFull, consuming nothing", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ name: "api", limit: 1, window: 1000, maxQueue: 2 })
      const log: Array<Admission> = []
      for (let i = 0; i < 3; i++) yield* request(limiter, log) // 1 admitted, 2 queued
      const e = yield* Effect.flip(RateLimiter.take(limiter, { key: "k" }))
      assert.strictEqual(e._tag, "QueueFull")
      // a place frees when the head of the queue is admitted, at 1000 ms (issue 15 item 6: a Retry-After)
      assert.deepStrictEqual(
        e,
        new RateLimiter.QueueFull({ limiter: "api", maxQueue: 2, key: "k", retryAfterMillis: 1000 })
      )
      assert.strictEqual(e.message, 'api: the queue is full (maxQueue 2) for a request of key "k"')
      const s = yield* RateLimiter.stats(limiter)
      assert.deepStrictEqual([s.queued, s.admitted, s.rejected], [2, 1, 1])
      yield* TestClock.adjust(400)
      const later = yield* Effect.flip(RateLimiter.take(limiter))
      assert.strictEqual(later._tag === "QueueFull" ? later.retryAfterMillis : undefined, 600)
      yield* TestClock.adjust(2000)
      assert.deepStrictEqual(times(log), [0, 1000, 2000])
    })
  )

  it.effect("maxQueue 0 admits or rejects at once and never queues", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 2, window: 1000, maxQueue: 0 })
      yield* RateLimiter.take(limiter)
      yield* RateLimiter.take(limiter)
      const e = yield* Effect.flip(RateLimiter.take(limiter))
      assert.strictEqual(e._tag, "QueueFull")
      yield* TestClock.adjust(1000)
      yield* RateLimiter.take(limiter)
      assertIdle(limiter)
    })
  )

  // reliability C.7 #97
  it.effect("an interrupted waiter leaves the queue and consumes nothing", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 1, window: 1000 })
      const log: Array<Admission> = []
      yield* request(limiter, log, "a")
      yield* request(limiter, log, "b")
      const c = yield* request(limiter, log, "c")
      yield* request(limiter, log, "d")
      assert.strictEqual((yield* RateLimiter.stats(limiter)).queued, 3)
      yield* Fiber.interrupt(c)
      assert.strictEqual((yield* RateLimiter.stats(limiter)).queued, 2)
      yield* TestClock.adjust(5000)
      // d takes c's place: nobody waited for the token c never used
      assert.deepStrictEqual(labels(log), ["a", "b", "d"])
      assert.deepStrictEqual(times(log), [0, 1000, 2000])
      assert.strictEqual((yield* RateLimiter.stats(limiter)).admitted, 3)
      assertIdle(limiter)
    })
  )

  it.effect("when every waiter is interrupted the timer is cancelled", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 1, window: 1000 })
      yield* RateLimiter.take(limiter)
      const fibers = yield* Effect.forEach([1, 2, 3], () =>
        Effect.forkChild(RateLimiter.take(limiter), { startImmediately: true })
      )
      assert.strictEqual((yield* RateLimiter.stats(limiter)).nextAdmissionInMillis, 1000)
      yield* Fiber.interruptAll(fibers)
      assertIdle(limiter)
      // and the token is still there for the next caller
      yield* TestClock.adjust(1000)
      assert.strictEqual((yield* RateLimiter.stats(limiter)).available, 1)
    })
  )

  // reliability C.7 #99
  it.effect("over-admission under contention: exactly one of K racers gets the last token", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 5, window: 1000 })
      for (let i = 0; i < 4; i++) yield* RateLimiter.take(limiter)
      const log: Array<Admission> = []
      // 50 fibers scheduled together, all asking in the same tick
      const racers = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) =>
          Effect.forkChild(
            RateLimiter.take(limiter).pipe(
              Effect.andThen(Clock.currentTimeMillis),
              Effect.map((at) => {
                log.push({ at, label: String(i) })
              })
            )
          )
      )
      assert.strictEqual(log.length, 0)
      yield* Effect.yieldNow
      assert.strictEqual(log.length, 1)
      assert.strictEqual((yield* RateLimiter.stats(limiter)).queued, 49)
      yield* Fiber.interruptAll(racers)
      assertIdle(limiter)
    })
  )

  // reliability C.7 #101
  it.effect("drift: saturated over 1,000 windows, exactly limit admissions per window", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 3, window: 1000, maxQueue: Infinity })
      const log: Array<Admission> = []
      for (let i = 0; i < 3 * 1001; i++) yield* request(limiter, log)
      assert.strictEqual(log.length, 3)
      for (let w = 1; w <= 1000; w++) {
        yield* TestClock.adjust(1000)
        assert.strictEqual(log.length, 3 * (w + 1))
      }
      assert.strictEqual(log[log.length - 1]!.at, 1000 * 1000)
      assertIdle(limiter)
    })
  )

  it.effect("drift: a token bucket with a fractional interval keeps its schedule over 1,000 windows", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({
        algorithm: "tokenBucket",
        limit: 3,
        window: 1000,
        burst: 1,
        maxQueue: Infinity
      })
      const log: Array<Admission> = []
      for (let i = 0; i < 3 * 1000 + 1; i++) yield* request(limiter, log)
      for (let w = 1; w <= 1000; w++) yield* TestClock.adjust(1000)
      assert.strictEqual(log.length, 3 * 1000 + 1)
      assert.closeTo(log[log.length - 1]!.at, 1000 * 1000, 1e-6)
    })
  )

  // reliability C.7 #102
  it.effect("token bucket, 5 per minute: the 6th waits 12 s and the 7th 24 s", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ algorithm: "tokenBucket", limit: 5, window: "1 minute" })
      const log: Array<Admission> = []
      for (let i = 0; i < 7; i++) yield* request(limiter, log)
      yield* TestClock.adjust("11999 millis")
      assert.strictEqual(log.length, 5)
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(times(log), [0, 0, 0, 0, 0, 12_000, 24_000])
    })
  )

  // reliability C.7 #90, #95: random arrivals through the service, checked over the admission log
  it.effect("property: random arrivals never exceed N in any window, and the queue never wedges", () =>
    Effect.gen(function* () {
      const samples = fc.sample(
        fc.record({
          limit: fc.integer({ min: 1, max: 8 }),
          window: fc.integer({ min: 1, max: 500 }),
          gaps: fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 150 })
        }),
        { numRuns: 25, seed: 7 }
      )
      for (const { limit, window, gaps } of samples) {
        const scope = yield* Scope.make()
        const limiter = yield* RateLimiter.make({ limit, window, maxQueue: Infinity }).pipe(Scope.provide(scope))
        const log: Array<Admission> = []
        for (const gap of gaps) {
          yield* TestClock.adjust(gap)
          yield* request(limiter, log)
          // no wedge: whenever someone waits, nothing could be admitted right now
          const s = yield* RateLimiter.stats(limiter)
          if (s.queued > 0) assert.strictEqual(s.available, 0)
        }
        yield* TestClock.adjust(window * gaps.length + 1)
        assert.strictEqual(log.length, gaps.length)
        assert.isAtMost(maxInAnyWindow(times(log), window), limit)
        assertIdle(limiter)
        yield* Scope.close(scope, Exit.void)
      }
    })
  )

  // reliability C.7 #90: the 100k requests with random arrival times, under TestClock
  it.effect("100,000 requests with random arrival times never exceed N in any window", () =>
    Effect.gen(function* () {
      const limit = 50
      const window = 1000
      const limiter = yield* RateLimiter.make({ limit, window, maxQueue: Infinity })
      const at: Array<number> = []
      let x = 12345
      const rnd = () => {
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        return (x >>> 0) / 2 ** 32
      }
      const take = RateLimiter.take(limiter).pipe(
        Effect.andThen(Clock.currentTimeMillis),
        Effect.map((t) => {
          at.push(t)
        })
      )
      for (let i = 0; i < 100_000; i++) {
        // bursty arrivals: mostly together, sometimes after a pause of up to half a window
        if (rnd() < 0.02) yield* TestClock.adjust(Math.floor(rnd() * 500))
        yield* Effect.forkDetach(take, { startImmediately: true })
      }
      yield* TestClock.adjust((100_000 / limit) * window)
      assert.strictEqual(at.length, 100_000)
      assert.strictEqual(maxInAnyWindow(at, window), limit)
      assertIdle(limiter)
    })
  )
})

describe("tryTake", () => {
  // reliability C.7 #91
  it.effect("the reported wait is this key's own, not the time to a wall-clock boundary", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({
        name: "api",
        limit: 10,
        window: 1000,
        perKey: { limit: 2, window: 1000 }
      })
      yield* TestClock.adjust(300)
      yield* RateLimiter.tryTake(limiter, { key: "a" })
      yield* TestClock.adjust(400)
      yield* RateLimiter.tryTake(limiter, { key: "a" })
      const e = yield* Effect.flip(RateLimiter.tryTake(limiter, { key: "a" }))
      assert.deepStrictEqual(e, new RateLimiter.RateLimitExceeded({ limiter: "api", key: "a", retryAfterMillis: 600 }))
      // another key is not held back by a's budget
      yield* RateLimiter.tryTake(limiter, { key: "b" })
      yield* TestClock.adjust(600)
      yield* RateLimiter.tryTake(limiter, { key: "a" })
      const s = yield* RateLimiter.stats(limiter)
      assert.deepStrictEqual([s.admitted, s.rejected, s.queued], [4, 1, 0])
    })
  )

  it.effect("never jumps ahead of a queued request, but is not held back by another key's wait", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 10, window: 1000, perKey: { limit: 1, window: 1000 } })
      const log: Array<Admission> = []
      yield* request(limiter, log, "a1", "a")
      yield* request(limiter, log, "a2", "a") // queued behind a's own limit
      // a third request of key a must not overtake a2
      assert.strictEqual((yield* Effect.flip(RateLimiter.tryTake(limiter, { key: "a" })))._tag, "RateLimitExceeded")
      // key b's turn comes now: a2 waits for a's limit, not for b
      yield* RateLimiter.tryTake(limiter, { key: "b" })
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(labels(log), ["a1", "a2"])
      const s = yield* RateLimiter.stats(limiter)
      assert.deepStrictEqual([s.admitted, s.rejected, s.queued], [3, 1, 0])
    })
  )
})

describe("run", () => {
  it.effect("runs the effect once admitted, data-first and pipeable", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 1, window: 1000 })
      assert.strictEqual(yield* RateLimiter.run(limiter, Effect.succeed(1)), 1)
      const f = yield* Effect.forkChild(Effect.succeed(2).pipe(RateLimiter.run(limiter)), { startImmediately: true })
      yield* TestClock.adjust(1000)
      assert.strictEqual(yield* Fiber.join(f), 2)
      assert.strictEqual((yield* RateLimiter.stats(limiter)).admitted, 2)
    })
  )
})

describe("setLimits", () => {
  // reliability C.7 #96
  it.effect("raising the limit mid-flight admits the queued requests at once, in order", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 2, window: 1000 })
      const log: Array<Admission> = []
      for (let i = 0; i < 6; i++) yield* request(limiter, log, String(i))
      yield* TestClock.adjust(500)
      assert.strictEqual(log.length, 2)
      yield* RateLimiter.setLimits(limiter, { limit: 5 })
      assert.deepStrictEqual(times(log), [0, 0, 500, 500, 500])
      yield* TestClock.adjust(500)
      assert.deepStrictEqual(times(log), [0, 0, 500, 500, 500, 1000])
      assert.deepStrictEqual(labels(log), ["0", "1", "2", "3", "4", "5"])
    })
  )

  // reliability C.7 #96
  it.effect("lowering the limit applies to the admissions already in the window", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 10, window: 1000 })
      for (let i = 0; i < 8; i++) yield* RateLimiter.take(limiter)
      yield* RateLimiter.setLimits(limiter, { limit: 5 })
      const log: Array<Admission> = []
      yield* request(limiter, log)
      yield* TestClock.adjust(999)
      assert.strictEqual(log.length, 0)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(times(log), [1000])
    })
  )

  it.effect("a longer window re-plans what is queued", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 1, window: 1000 })
      const log: Array<Admission> = []
      yield* request(limiter, log)
      yield* request(limiter, log)
      yield* RateLimiter.setLimits(limiter, { window: "3 seconds" })
      yield* TestClock.adjust(2999)
      assert.strictEqual(log.length, 1)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(times(log), [0, 3000])
    })
  )

  it.effect("invalid limits fail with InvalidOptions and change nothing", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 3, window: 1000 })
      const e = yield* Effect.flip(RateLimiter.setLimits(limiter, { limit: 0 }))
      assert.strictEqual(e.field, "limit")
      const e2 = yield* Effect.flip(limiter.pipe(RateLimiter.setLimits({ window: 0 })))
      assert.strictEqual(e2.field, "window")
      const e3 = yield* Effect.flip(RateLimiter.setLimits(limiter, { burst: 2 }))
      assert.strictEqual(e3.field, "burst")
      const s = yield* RateLimiter.stats(limiter)
      assert.deepStrictEqual([s.limit, s.windowMillis], [3, 1000])
    })
  )

  it.effect("a token bucket's burst follows a new limit unless given", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ algorithm: "tokenBucket", limit: 4, window: 1000 })
      yield* RateLimiter.setLimits(limiter, { limit: 8 })
      assert.strictEqual((yield* RateLimiter.stats(limiter)).burst, 8)
      yield* RateLimiter.setLimits(limiter, { limit: 10, burst: 2 })
      const s = yield* RateLimiter.stats(limiter)
      assert.deepStrictEqual([s.limit, s.burst, s.available], [10, 2, 2])
    })
  )

  it.effect("per-key limits can be added and removed at runtime", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 100, window: 1000 })
      yield* RateLimiter.setLimits(limiter, { perKey: { limit: 1, window: 1000 } })
      const log: Array<Admission> = []
      yield* request(limiter, log, "a1", "a")
      yield* request(limiter, log, "a2", "a")
      assert.deepStrictEqual(labels(log), ["a1"])
      yield* RateLimiter.setLimits(limiter, { perKey: null })
      assert.deepStrictEqual(labels(log), ["a1", "a2"])
    })
  )
})

describe("per-key fairness", () => {
  it.effect("keys with waiters are served round-robin: a busy key cannot starve the others", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ limit: 1, window: 100, maxQueue: Infinity })
      const log: Array<Admission> = []
      for (let i = 0; i < 20; i++) yield* request(limiter, log, "a", "a")
      for (let i = 0; i < 3; i++) yield* request(limiter, log, "b", "b")
      yield* request(limiter, log, "c", "c")
      yield* TestClock.adjust(800)
      // a was first and alone; then one each in turn
      assert.deepStrictEqual(labels(log).join(""), "aabcababa")
    })
  )

  it.effect("a key held back by its own limit does not hold back the others", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({
        limit: 10,
        window: 1000,
        perKey: { limit: 2, window: 1000 },
        maxQueue: Infinity
      })
      const log: Array<Admission> = []
      for (let i = 0; i < 5; i++) yield* request(limiter, log, "a", "a")
      for (let i = 0; i < 5; i++) yield* request(limiter, log, "b", "b")
      assert.deepStrictEqual(labels(log).join(""), "aabb")
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(labels(log).join(""), "aabbabab")
      assert.deepStrictEqual(times(log).slice(4), [1000, 1000, 1000, 1000])
      yield* TestClock.adjust(1000)
      assert.strictEqual(log.length, 10)
      assert.strictEqual(maxInAnyWindow(times(log.filter((a) => a.label === "a")), 1000), 2)
    })
  )

  it.effect("property: each key stays within its limit and the total within the global one", () =>
    Effect.gen(function* () {
      const samples = fc.sample(
        fc.array(fc.record({ key: fc.constantFrom("a", "b", "c"), gap: fc.integer({ min: 0, max: 200 }) }), {
          minLength: 1,
          maxLength: 120
        }),
        { numRuns: 15, seed: 11 }
      )
      for (const reqs of samples) {
        const scope = yield* Scope.make()
        const limiter = yield* RateLimiter.make({
          limit: 4,
          window: 500,
          perKey: { limit: 2, window: 300 },
          maxQueue: Infinity
        }).pipe(Scope.provide(scope))
        const log: Array<Admission> = []
        for (const r of reqs) {
          yield* TestClock.adjust(r.gap)
          yield* request(limiter, log, r.key, r.key)
        }
        yield* TestClock.adjust(500 * reqs.length)
        assert.strictEqual(log.length, reqs.length)
        assert.isAtMost(maxInAnyWindow(times(log), 500), 4)
        for (const k of ["a", "b", "c"]) {
          assert.isAtMost(maxInAnyWindow(times(log.filter((a) => a.label === k)), 300), 2)
        }
        assertIdle(limiter)
        yield* Scope.close(scope, Exit.void)
      }
    })
  )
})

describe("stats", () => {
  it.effect("reports the queue, the window and the totals, and the same figures as metrics", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ name: "stats-test", limit: 2, window: 1000, maxQueue: 1 })
      const log: Array<Admission> = []
      for (let i = 0; i < 3; i++) yield* request(limiter, log)
      yield* Effect.flip(RateLimiter.take(limiter))
      yield* TestClock.adjust(400)
      const s = yield* RateLimiter.stats(limiter)
      assert.deepStrictEqual(
        {
          queued: s.queued,
          admitted: s.admitted,
          rejected: s.rejected,
          inWindow: s.inWindow,
          available: s.available,
          next: s.nextAdmissionInMillis
        },
        { queued: 1, admitted: 2, rejected: 1, inWindow: 2, available: 0, next: 600 }
      )
      const snapshots = (yield* Metric.snapshot).filter((m) => m.attributes?.["limiter"] === "stats-test")
      const value = (id: string) => snapshots.find((m) => m.id === id)?.state as { count?: number; value?: number }
      assert.strictEqual(value("effect_otp_limiter_queue_depth").value, 1)
      assert.strictEqual(value("effect_otp_limiter_admissions_total").count, 2)
      assert.strictEqual(value("effect_otp_limiter_rejections_total").count, 1)
      yield* TestClock.adjust(600)
      const wait = (yield* Metric.snapshot).find(
        (m) => m.id === "effect_otp_limiter_wait_millis" && m.attributes?.["limiter"] === "stats-test"
      )?.state as { count: number; max: number }
      assert.deepStrictEqual([wait.count, wait.max], [3, 1000])
    })
  )
})

describe("metrics", () => {
  it.effect("limiters of one name add to one series, which reads as Effect's own counter and histogram would", () =>
    Effect.gen(function* () {
      const attributes = { limiter: "one-series" }
      // the limiter's series: a metric's series is named by its id, description and attributes
      const counter = Metric.counter("effect_otp_limiter_admissions_total", {
        description: "requests admitted (starts)",
        attributes,
        incremental: true
      })
      // the series existed before any limiter of this name: its counts go on
      yield* Metric.update(counter, 5)
      const boundaries = Metric.exponentialBoundaries({ start: 1, factor: 2, count: 18 })
      const reference = Metric.histogram("one-series-reference", { boundaries })
      const a = yield* RateLimiter.make({ name: "one-series", limit: 2, window: 1000 })
      const b = yield* RateLimiter.make({ name: "one-series", limit: 1, window: 1000 })
      const log: Array<Admission> = []
      for (let i = 0; i < 3; i++) yield* request(a, log)
      yield* request(b, log)
      yield* TestClock.adjust(250)
      yield* request(b, log) // waits 1000 - 250 = 750 ms
      yield* TestClock.adjust(750) // and a's third request 1000 ms
      for (const wait of [0, 0, 0, 1000, 750]) yield* Metric.update(reference, wait)
      assert.strictEqual(log.length, 5)
      assert.deepStrictEqual((yield* Metric.value(counter)).count, 10)
      const wait = Metric.histogram("effect_otp_limiter_wait_millis", {
        description: "how long admitted requests waited, in milliseconds",
        attributes,
        boundaries
      })
      assert.deepStrictEqual(yield* Metric.value(wait), yield* Metric.value(reference))
    })
  )
})

describe("close", () => {
  it.effect("closing the Scope fails the waiters with RateLimiterClosed and refuses new requests", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const limiter = yield* RateLimiter.make({ name: "closing", limit: 1, window: 1000 }).pipe(Scope.provide(scope))
      yield* RateLimiter.take(limiter)
      const waiter = yield* Effect.forkChild(RateLimiter.take(limiter), { startImmediately: true })
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(waiter)
      assert.deepStrictEqual(exit, Exit.fail(new RateLimiter.RateLimiterClosed({ limiter: "closing" })))
      const e = yield* Effect.flip(RateLimiter.take(limiter))
      assert.strictEqual(e._tag, "RateLimiterClosed")
      assertIdle(limiter)
    })
  )
})
