import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import {
  type Algorithm,
  type AlgorithmName,
  type Limits,
  make,
  maxInAnyWindow,
  SlidingWindow,
  TokenBucket
} from "../../src/RateLimiter/internal/algorithm.ts"

const sliding = (limit: number, window: number): Limits => ({ algorithm: "slidingWindow", limit, window, burst: limit })
const bucket = (limit: number, window: number, burst = limit): Limits => ({
  algorithm: "tokenBucket",
  limit,
  window,
  burst
})

/** Admits one request that arrives at `at`, as early as the algorithm allows; returns the admission time. */
const admitAt = (alg: Algorithm, at: number): number => {
  const t = alg.nextAt(at)
  // a plain check first: chai's assert per admission made the 100k property take seconds on a loaded machine
  if (!alg.canAdmit(t)) assert.fail(`canAdmit(nextAt(${at})) is false (nextAt = ${t})`)
  alg.admit(t)
  return t
}

/**
 * A FIFO queue in front of one algorithm, with no other gate: every request
 * is admitted at the earliest time allowed after its arrival and after the
 * request before it. Returns the admission log.
 */
const simulate = (alg: Algorithm, arrivals: ReadonlyArray<number>): Array<number> => {
  const log: Array<number> = []
  let last = -Infinity
  for (const a of arrivals) {
    last = admitAt(alg, Math.max(a, last))
    log.push(last)
  }
  return log
}

/** Brute force: the most admissions in any half-open window [s, s + w), trying every admission as s. */
const bruteMax = (log: ReadonlyArray<number>, w: number): number => {
  let max = 0
  for (const s of log) {
    const n = log.filter((t) => t >= s && t < s + w).length
    if (n > max) max = n
  }
  return max
}

const sortedArrivals = (n: number, span: number) =>
  fc.array(fc.integer({ min: 0, max: span }), { minLength: 1, maxLength: n }).map((xs) => xs.sort((a, b) => a - b))

describe("maxInAnyWindow", () => {
  it("counts half-open windows: admissions exactly one window apart are in different windows", () => {
    assert.strictEqual(maxInAnyWindow([0, 1000], 1000), 1)
    assert.strictEqual(maxInAnyWindow([0, 999], 1000), 2)
    assert.strictEqual(maxInAnyWindow([0, 0, 0, 500, 1000, 1000], 1000), 4)
    assert.strictEqual(maxInAnyWindow([], 1000), 0)
  })

  it("agrees with a brute-force count", () => {
    fc.assert(
      fc.property(sortedArrivals(60, 3000), fc.integer({ min: 1, max: 1500 }), (log, w) => {
        assert.strictEqual(maxInAnyWindow(log, w), bruteMax(log, w))
      })
    )
  })
})

describe("SlidingWindow", () => {
  it("admits a full burst at once, then the next one exactly one window after the oldest of the burst", () => {
    const alg = new SlidingWindow(sliding(3, 1000))
    assert.deepStrictEqual(
      [0, 0, 0].map((t) => admitAt(alg, t)),
      [0, 0, 0]
    )
    assert.strictEqual(alg.nextAt(10), 1000)
    assert.isFalse(alg.canAdmit(999))
    assert.isTrue(alg.canAdmit(1000))
  })

  // reliability C.7 #90
  it("window edge: N at W-1 and N at W+1 are never more than N in any window", () => {
    const alg = new SlidingWindow(sliding(5, 1000))
    const arrivals = [...Array(5).fill(999), ...Array(5).fill(1001)]
    const log = simulate(alg, arrivals)
    assert.deepStrictEqual(log, [999, 999, 999, 999, 999, 1999, 1999, 1999, 1999, 1999])
    assert.strictEqual(maxInAnyWindow(log, 1000), 5)
  })

  // reliability C.7 #93
  it("after an idle pause a second burst still respects the window (no 2N burst)", () => {
    const alg = new SlidingWindow(sliding(10, 1010))
    const first = simulate(alg, Array(10).fill(0))
    const second = simulate(alg, Array(10).fill(50))
    assert.deepStrictEqual(first, Array(10).fill(0))
    assert.deepStrictEqual(second, Array(10).fill(1010))
    assert.strictEqual(maxInAnyWindow([...first, ...second], 1010), 10)
  })

  // reliability C.7 #92
  it("is anchored to the admissions themselves, not to wall-clock boundaries", () => {
    const alg = new SlidingWindow(sliding(2, 1000))
    assert.deepStrictEqual(simulate(alg, [990, 990, 1001, 1002]), [990, 990, 1990, 1990])
  })

  it("counts the admissions in the window that ends now", () => {
    const alg = new SlidingWindow(sliding(3, 1000))
    simulate(alg, [0, 100, 200])
    assert.strictEqual(alg.inWindow(200), 3)
    assert.strictEqual(alg.available(200), 0)
    assert.strictEqual(alg.inWindow(1000), 2)
    assert.strictEqual(alg.available(1150), 2)
    assert.isFalse(alg.idle(1199))
    assert.isTrue(alg.idle(1200))
  })

  // reliability C.7 #101
  it("drift: saturated for 1,000 windows it admits exactly limit per window", () => {
    const alg = new SlidingWindow(sliding(7, 1000))
    let t = 0
    let count = 0
    // admit as early as allowed, always starting from the previous planned time
    while (true) {
      const next = alg.nextAt(t)
      if (next >= 1000 * 1000) break
      alg.admit(next)
      t = next
      count++
    }
    assert.strictEqual(count, 7 * 1000)
    assert.strictEqual(t, 999 * 1000)
  })

  it("raising the limit keeps the older admissions it now needs", () => {
    const alg = new SlidingWindow(sliding(2, 1000))
    simulate(alg, [0, 10])
    alg.reconfigure(sliding(4, 1000), 20)
    assert.deepStrictEqual(simulate(alg, [20, 20, 20]), [20, 20, 1000])
  })

  it("remembers only the admissions of the last window, however large the limit", () => {
    const alg = new SlidingWindow(sliding(1_000_000_000, 1000))
    for (let t = 0; t < 100_000; t++) admitAt(alg, t / 10)
    // 10 admissions per ms over 1000 ms, plus the one at the edge
    assert.isAtMost(alg.remembered(), 10_001)
    assert.strictEqual(alg.inWindow(9999.9), 10_000)
  })

  it("retime moves an admission to when its work began, keeping the log sorted", () => {
    const alg = new SlidingWindow(sliding(3, 1000))
    simulate(alg, [0, 10, 20])
    alg.retime(10, 25)
    assert.deepStrictEqual(alg.log(), [0, 20, 25])
    // the next admission is now planned from the retimed log
    assert.strictEqual(alg.nextAt(30), 1000)
    alg.retime(0, 5)
    assert.strictEqual(alg.nextAt(30), 1005)
    alg.retime(99, 100) // unknown: nothing happens
    alg.retime(25, 20) // earlier: nothing happens
    assert.deepStrictEqual(alg.log(), [5, 20, 25])
  })

  it("property: admissions dated when their work began never exceed limit in any window of start times", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 200 }), delay: fc.integer({ min: 0, max: 50 }) }), {
          maxLength: 200
        }),
        (limit, window, reqs) => {
          const alg = new SlidingWindow(sliding(limit, window))
          const starts: Array<number> = []
          let now = 0
          for (const r of reqs) {
            now = admitAt(alg, now + r.gap)
            // the work begins `delay` later, before the next admission is decided
            alg.retime(now, now + r.delay)
            starts.push(now + r.delay)
            now += r.delay
          }
          assert.isAtMost(
            maxInAnyWindow(
              [...starts].sort((a, b) => a - b),
              window
            ),
            limit
          )
        }
      ),
      { numRuns: 300 }
    )
  })

  it("raising limit and window counts forgotten admissions no earlier than they were", () => {
    // found by the reconfiguration property: 4 at t=0 with limit 3 (the 4th at 1000), then limit 4 per 1001 ms
    const alg = new SlidingWindow(sliding(3, 1000))
    assert.deepStrictEqual(simulate(alg, [0, 0, 0, 0]), [0, 0, 0, 1000])
    alg.reconfigure(sliding(4, 1001), 1000)
    assert.isFalse(alg.canAdmit(1000))
    assert.isAtMost(maxInAnyWindow([0, 0, 0, 1000, admitAt(alg, 1000)], 1001), 4)
  })

  it("raising the limit, then the window, still counts the admissions forgotten before", () => {
    // found by the reconfiguration property
    const alg = new SlidingWindow(sliding(3, 1000))
    simulate(alg, [0, 0, 0])
    alg.reconfigure(sliding(1, 1), 0)
    assert.strictEqual(admitAt(alg, 0), 1)
    alg.reconfigure(sliding(4, 1), 1)
    alg.reconfigure(sliding(4, 2), 1)
    // four admissions in (-1, 1]: the fifth waits
    assert.isFalse(alg.canAdmit(1))
  })

  it("lowering the limit applies to admissions already made in the window", () => {
    const alg = new SlidingWindow(sliding(4, 1000))
    simulate(alg, [0, 100, 200])
    alg.reconfigure(sliding(2, 1000), 300)
    // three admissions in the window already: the next waits until only one is left
    assert.strictEqual(alg.nextAt(300), 1100)
  })

  it("property: random arrivals never exceed limit in any window, and nobody waits without cause", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 2000 }),
        sortedArrivals(400, 20_000),
        (limit, window, arrivals) => {
          const log = simulate(new SlidingWindow(sliding(limit, window)), arrivals)
          assert.isAtMost(maxInAnyWindow(log, window), limit)
          let last = -Infinity
          for (let k = 0; k < log.length; k++) {
            const earliest = Math.max(arrivals[k]!, last)
            // a request admitted later than it could have come is held by exactly the limit-th previous admission
            if (log[k]! > earliest) assert.strictEqual(log[k]!, log[k - limit]! + window)
            last = log[k]!
          }
        }
      ),
      { numRuns: 200 }
    )
  })

  // reliability C.7 #90, the 100k check, on the arithmetic alone
  it("property: 100,000 random arrivals never exceed limit in any window (exact sliding count)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (limit, window, seed) => {
          let x = seed || 1
          const rnd = () => {
            x ^= x << 13
            x ^= x >>> 17
            x ^= x << 5
            return (x >>> 0) / 2 ** 32
          }
          const span = Math.ceil((100_000 / limit) * window * 1.2)
          const arrivals = Array.from({ length: 100_000 }, () => Math.floor(rnd() * span)).sort((a, b) => a - b)
          const log = simulate(new SlidingWindow(sliding(limit, window)), arrivals)
          assert.isAtMost(maxInAnyWindow(log, window), limit)
        }
      ),
      { numRuns: 5 }
    )
  })

  // reliability C.7 #96
  it("property: under random reconfigurations every admission obeys the limits in force", () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant("arrive" as const), gap: fc.integer({ min: 0, max: 300 }) }),
      fc.record({
        kind: fc.constant("set" as const),
        limit: fc.integer({ min: 1, max: 10 }),
        window: fc.integer({ min: 1, max: 1500 })
      })
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
        let limits = sliding(3, 1000)
        const alg = new SlidingWindow(limits)
        const log: Array<number> = []
        let now = 0
        // exact until limits exceed every earlier ones (then forgotten admissions are counted conservatively)
        let exact = true
        let maxLimit = 3
        let maxWindow = 1000
        for (const s of steps) {
          if (s.kind === "set") {
            limits = sliding(s.limit, s.window)
            if (s.limit > maxLimit || s.window > maxWindow) exact = false
            maxLimit = Math.max(maxLimit, s.limit)
            maxWindow = Math.max(maxWindow, s.window)
            alg.reconfigure(limits, now)
            continue
          }
          now = admitAt(alg, now + s.gap)
          const inWindow = log.filter((t) => t > now - limits.window).length
          assert.isBelow(inWindow, limits.limit)
          // and it was not held back for nothing
          if (exact && now > 0 && inWindow < limits.limit - 1) assert.isTrue(alg.canAdmit(now))
          log.push(now)
        }
      }),
      { numRuns: 2000 }
    )
  })
})

describe("TokenBucket", () => {
  // reliability C.7 #102 (Effect's RateLimiter token bucket: 5/min refills every 12 s)
  it("5 per minute: a full burst of 5, then the 6th at 12 s and the 7th at 24 s", () => {
    const alg = new TokenBucket(bucket(5, 60_000))
    assert.deepStrictEqual(simulate(alg, Array(7).fill(0)), [0, 0, 0, 0, 0, 12_000, 24_000])
  })

  it("burst is the capacity: an idle bucket never holds more than burst tokens", () => {
    const alg = new TokenBucket(bucket(10, 1000, 3))
    assert.strictEqual(alg.available(1_000_000), 3)
    assert.deepStrictEqual(simulate(alg, Array(5).fill(1_000_000)), [1e6, 1e6, 1e6, 1_000_100, 1_000_200])
  })

  // reliability C.7 #104: pin the documented semantics
  it("admits burst + limit - 1 in one window when starting full (19 for 10/s), unlike the sliding window", () => {
    const log = simulate(new TokenBucket(bucket(10, 1000)), Array(40).fill(0))
    assert.strictEqual(maxInAnyWindow(log, 1000), 19)
    const strict = simulate(new SlidingWindow(sliding(10, 1000)), Array(40).fill(0))
    assert.strictEqual(maxInAnyWindow(strict, 1000), 10)
  })

  // reliability C.7 #101
  it("drift: saturated for 1,000 windows it admits exactly limit per window, with a fractional interval", () => {
    const alg = new TokenBucket(bucket(3, 1000, 1))
    let t = 0
    let count = 0
    while (true) {
      const next = alg.nextAt(t)
      if (next >= 1000 * 1000) break
      alg.admit(next)
      t = next
      count++
    }
    assert.strictEqual(count, 3 * 1000)
  })

  it("reconfiguring keeps the tokens in the bucket, capped at the new burst", () => {
    const alg = new TokenBucket(bucket(10, 1000))
    simulate(alg, Array(6).fill(0)) // 4 tokens left
    alg.reconfigure(bucket(100, 1000, 2), 0)
    assert.strictEqual(alg.available(0), 2)
    alg.reconfigure(bucket(1, 1000, 50), 0)
    assert.strictEqual(alg.available(0), 2)
    assert.strictEqual(alg.nextAt(0), 0)
    simulate(alg, [0, 0])
    assert.strictEqual(alg.nextAt(0), 1000)
  })

  it("property: in any interval of length L at most burst + ceil(L / interval) - 1 are admitted", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 2000 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 5000 }),
        sortedArrivals(300, 20_000),
        (limit, window, burst, length, arrivals) => {
          const log = simulate(new TokenBucket(bucket(limit, window, burst)), arrivals)
          const interval = window / limit
          // (admissions within 1 ns of the window edge are on its far side: planned times are floating point)
          assert.isAtMost(maxInAnyWindow(log, length - 2e-6), burst + Math.ceil(length / interval - 1e-9) - 1)
        }
      ),
      { numRuns: 300 }
    )
  })
})

describe("make", () => {
  it("builds the named algorithm", () => {
    const names: ReadonlyArray<AlgorithmName> = ["slidingWindow", "tokenBucket"]
    for (const name of names) {
      const alg = make({ algorithm: name, limit: 2, window: 100, burst: 2 })
      assert.strictEqual(alg.limits.algorithm, name)
      assert.deepStrictEqual(simulate(alg, [0, 0, 0]).slice(0, 2), [0, 0])
    }
  })
})
