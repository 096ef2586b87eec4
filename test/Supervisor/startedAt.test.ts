/**
 * The inspection snapshot carries each running child's start time (epoch ms
 * on the Clock), so the Observer can show uptime (issue 13); a restart is a
 * new start time, a restarting child has none.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { TestClock } from "effect/testing"
import { ChildSpec, DynamicSupervisor, Supervisor } from "effect-otp"
import { eventually } from "../utils/lifecycle.ts"

/** A child whose first incarnation crashes when `crash` fails; later ones run until stopped. */
const crashOnce = (id: string, crash: Deferred.Deferred<void, string>) => {
  let starts = 0
  return ChildSpec.make({
    id,
    start: Effect.sync(() => ++starts),
    run: (n) => (n === 1 ? Deferred.await(crash) : Effect.never)
  })
}

describe("snapshot startedAt", () => {
  it.effect("a DynamicSupervisor child's node carries when it started, and its restart's time after a crash", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(1_000_000)
      const sup = yield* DynamicSupervisor.make({ name: "timed" })
      yield* TestClock.adjust("5 seconds")
      const crash = yield* Deferred.make<void, string>()
      yield* DynamicSupervisor.startChild(sup, crashOnce("w", crash))
      const first = (yield* Supervisor.tree(sup)).children[0]!
      assert.strictEqual(first.startedAt, 1_005_000)
      yield* TestClock.adjust("7 seconds")
      yield* Deferred.fail(crash, "boom")
      yield* eventually(() => Supervisor.treeUnsafe(sup).children[0]?.restarts === 1)
      const second = Supervisor.treeUnsafe(sup).children[0]!
      assert.strictEqual(second.startedAt, 1_012_000)
      assert.deepStrictEqual(JSON.parse(JSON.stringify(second)).startedAt, 1_012_000)
    }).pipe(Effect.scoped)
  )

  it.effect("a static Supervisor's children carry their start times; a stopped one has none", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(2_000_000)
      const crash = yield* Deferred.make<void, string>()
      const app = yield* Supervisor.make([crashOnce("a", crash), crashOnce("b", crash)], { strategy: "oneForOne" })
      const node = yield* Supervisor.tree(app)
      assert.deepStrictEqual(
        node.children.map((c) => [c.id, c.startedAt]),
        [
          ["a", 2_000_000],
          ["b", 2_000_000]
        ]
      )
      yield* Supervisor.terminateChild(app, "a")
      const after = (yield* Supervisor.tree(app)).children.find((c) => c.id === "a")!
      assert.strictEqual(after.state, "stopped")
      assert.isUndefined(after.startedAt)
    }).pipe(Effect.scoped)
  )
})
