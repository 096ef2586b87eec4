/**
 * A pool checkout that waits is a span in the caller's trace (issue 15 item
 * 2); one served at once from an idle connection has none.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { Pool } from "effect-otp"
import { settle } from "../utils/lifecycle.ts"
import { capturingTracer } from "../utils/tracing.ts"
import { makeFakeDb } from "./fakeDb.ts"

describe("Pool.checkout spans", () => {
  it.effect("a caller that waits for a connection gets a Pool.checkout.wait span under its own span", () =>
    Effect.gen(function* () {
      const { spans, tracer } = capturingTracer()
      const db = makeFakeDb()
      const pool = yield* Pool.make({ name: "db", connect: db.connect, max: 1 })
      // the first checkout opens the connection; after it, one is idle
      yield* Pool.withConnection(pool, () => Effect.void)
      // served at once from the idle connection: no span
      yield* Pool.withConnection(pool, () => Effect.void).pipe(Effect.withSpan("quick"), Effect.withTracer(tracer))
      assert.deepStrictEqual(
        spans.map((s) => s.name),
        ["quick"]
      )
      const holder = yield* Effect.forkChild(Effect.scoped(Effect.andThen(Pool.checkout(pool), Effect.never)))
      yield* settle
      const waiter = yield* Effect.forkChild(
        Pool.withConnection(pool, () => Effect.void).pipe(Effect.withSpan("request"), Effect.withTracer(tracer))
      )
      yield* settle
      yield* Fiber.interrupt(holder)
      yield* Fiber.join(waiter)
      const wait = spans.find((s) => s.name === "Pool.checkout.wait")
      const request = spans.find((s) => s.name === "request")
      assert.isDefined(wait)
      assert.strictEqual(wait!.parent._tag === "Some" ? wait!.parent.value : undefined, request)
      assert.strictEqual(wait!.attributes.get("pool"), "db")
      assert.strictEqual(wait!.attributes.get("pool.open"), 1)
      assert.strictEqual(wait!.status._tag, "Ended")
    }).pipe(Effect.scoped)
  )

  it.effect("no span without a tracer that records (the native one)", () =>
    Effect.gen(function* () {
      const db = makeFakeDb()
      const scope = yield* Scope.make()
      const pool = yield* Scope.provide(Pool.make({ connect: db.connect, max: 1 }), scope)
      const holder = yield* Effect.forkChild(Effect.scoped(Effect.andThen(Pool.checkout(pool), Effect.never)))
      yield* settle
      const seen: Array<string> = []
      const waiter = yield* Effect.forkChild(
        Pool.withConnection(pool, () => Effect.map(Effect.currentSpan, (span) => void seen.push(span.name))).pipe(
          Effect.withSpan("request")
        )
      )
      yield* settle
      yield* Fiber.interrupt(holder)
      yield* Fiber.join(waiter)
      assert.deepStrictEqual(seen, ["request"], "the body runs in the caller's span, no wait span in between")
      yield* Scope.close(scope, Exit.void)
    })
  )
})
