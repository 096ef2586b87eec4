/**
 * The restart-intensity arithmetic on its own (otp-semantics §4, reliability
 * C.3 #40 and D2): a table of restart times, then a property against a naive
 * recount of the window.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { addRestart, makeWindow } from "../../src/internal/restartWindow.ts"

const run = (times: ReadonlyArray<number>, maxRestarts: number, periodMillis: number) => {
  const w = makeWindow()
  return times.map((t) => addRestart(w, t, maxRestarts, periodMillis))
}

describe("addRestart", () => {
  it("N restarts in the window pass and the N+1-th gives up (otp-semantics §11.1)", () => {
    assert.deepStrictEqual(run([0, 10, 20, 30], 3, 5000), [true, true, true, false])
  })

  it("maxRestarts 0 gives up at the first restart", () => {
    assert.deepStrictEqual(run([0], 0, 5000), [false])
  })

  it("the window is inclusive: a restart exactly one period old still counts", () => {
    assert.deepStrictEqual(run([0, 1000], 1, 1000), [true, false])
    assert.deepStrictEqual(run([0, 1001], 1, 1000), [true, true])
  })

  it("the window slides rather than resetting at a deadline (D2: 2 in 1 s, at 0, 0.9, 1.0, 1.1 s)", () => {
    // Pekko's fixed deadline would reset at 1.0 s; OTP's sliding window gives up at 1.0 s already
    // because the restarts at 0, 0.9 and 1.0 are all within 1 s of each other (inclusive).
    assert.deepStrictEqual(run([0, 900, 1000], 2, 1000), [true, true, false])
    assert.deepStrictEqual(run([0, 900, 1001, 1100], 2, 1000), [true, true, true, false])
  })

  it("fast failures are tolerated and after a pause the count is fresh (C.3 #40)", () => {
    assert.deepStrictEqual(run([0, 1, 2, 1003, 1004, 1005, 1006], 3, 1000), [true, true, true, true, true, true, false])
  })

  it("agrees with a naive recount of the window for any restart times", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(500), { maxLength: 60 }),
        fc.nat(5),
        fc.integer({ min: 1, max: 2000 }),
        (gaps, maxRestarts, period) => {
          let t = 0
          const times = gaps.map((g) => (t += g))
          const w = makeWindow()
          const kept: Array<number> = []
          for (const now of times) {
            kept.push(now)
            const inWindow = kept.filter((x) => now - x <= period).length
            assert.strictEqual(addRestart(w, now, maxRestarts, period), inWindow <= maxRestarts)
          }
        }
      )
    )
  })
})
