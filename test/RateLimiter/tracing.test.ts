/**
 * A limiter wait is a span in the caller's trace (issue 15 item 2); an
 * admission made at once has none.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { RateLimiter } from "effect-otp"
import { capturingTracer } from "../utils/tracing.ts"

describe("RateLimiter wait spans", () => {
  it.effect("a request that waits gets a RateLimiter.wait span under its own span; one admitted at once does not", () =>
    Effect.gen(function* () {
      const { spans, tracer } = capturingTracer()
      const limiter = yield* RateLimiter.make({ name: "api", limit: 1, window: "1 second" })
      yield* RateLimiter.take(limiter).pipe(Effect.withSpan("first"), Effect.withTracer(tracer))
      assert.deepStrictEqual(
        spans.map((s) => s.name),
        ["first"]
      )
      const second = yield* Effect.forkChild(
        RateLimiter.take(limiter, { key: "tenant-a" }).pipe(Effect.withSpan("second"), Effect.withTracer(tracer))
      )
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(second)
      const wait = spans.find((s) => s.name === "RateLimiter.wait")
      assert.isDefined(wait)
      assert.strictEqual(wait!.parent._tag === "Some" ? wait!.parent.value : undefined, spans[1])
      assert.strictEqual(wait!.attributes.get("limiter"), "api")
      assert.strictEqual(wait!.attributes.get("limiter.key"), "tenant-a")
      assert.strictEqual(wait!.status._tag, "Ended")
    })
  )
})
