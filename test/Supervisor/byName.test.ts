/**
 * Stop by name, reach tree members by type (issue 15 item 4): the seed's
 * `stop_session(user_id)` is one O(1) call from the registry key, and a tree
 * member is reached through its spec, typed, always at its current incarnation.
 */
import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Metric, Option } from "effect"
import { ChildSpec, DynamicSupervisor, Registry, Supervisor } from "effect-otp"
import { ChildNotFound } from "../../src/Errors.ts"
import { eventually } from "../utils/lifecycle.ts"

/** A permanent session whose incarnations count their starts and stops, and that crashes when told. */
const session = (user: string, counter: { starts: number; stops: number }, crash?: Deferred.Deferred<void, string>) =>
  ChildSpec.make({
    id: user,
    start: Effect.acquireRelease(
      Effect.sync(() => `${user}#${++counter.starts}`),
      () => Effect.sync(() => void counter.stops++)
    ),
    // only the first incarnation waits for the crash; the next ones run until stopped
    run: () => (crash === undefined || counter.starts > 1 ? Effect.never : Deferred.await(crash))
  })

describe("DynamicSupervisor.terminateChild with a Registry.name", () => {
  it.effect("stops the child registered under the key through Registry.via, which is then not restarted", () =>
    Effect.gen(function* () {
      const names = yield* Registry.make<string, string>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make()
      const counter = { starts: 0, stops: 0 }
      yield* DynamicSupervisor.startChild(sup, Registry.via(names, "alice", session("alice", counter)))
      yield* DynamicSupervisor.startChild(sup, Registry.via(names, "bob", session("bob", { starts: 0, stops: 0 })))
      yield* DynamicSupervisor.terminateChild(sup, Registry.name(names, "alice"))
      assert.strictEqual(counter.stops, 1)
      assert.deepStrictEqual(yield* Registry.whereis(names, "alice"), Option.none())
      assert.deepStrictEqual(yield* Registry.whereis(names, "bob"), Option.some("bob#1"))
      assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).active, 1)
      assert.strictEqual(counter.starts, 1, "a terminated permanent child is not restarted")
    }).pipe(Effect.scoped)
  )

  it.effect("reaches the current incarnation after a restart", () =>
    Effect.gen(function* () {
      const names = yield* Registry.make<string, string>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make()
      const counter = { starts: 0, stops: 0 }
      const crash = yield* Deferred.make<void, string>()
      yield* DynamicSupervisor.startChild(sup, Registry.via(names, "alice", session("alice", counter, crash)))
      yield* Deferred.fail(crash, "boom")
      yield* eventually(() => Registry.whereisUnsafe(names, "alice") === "alice#2")
      const before = Registry.whereisChildUnsafe(names, "alice")
      assert.strictEqual(before?.handle, "alice#2")
      yield* DynamicSupervisor.terminateChild(sup, Registry.name(names, "alice"))
      assert.strictEqual(counter.stops, 2)
      assert.deepStrictEqual(yield* DynamicSupervisor.whichChildren(sup), [])
    }).pipe(Effect.scoped)
  )

  it.effect("fails with ChildNotFound carrying the key for an unknown name or a child of another supervisor", () =>
    Effect.gen(function* () {
      const names = yield* Registry.make<string, string>({ keys: "unique" })
      const mine = yield* DynamicSupervisor.make()
      const other = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(
        other,
        Registry.via(names, "carol", session("carol", { starts: 0, stops: 0 }))
      )
      const unknown = yield* Effect.flip(DynamicSupervisor.terminateChild(mine, Registry.name(names, "nobody")))
      assert.deepStrictEqual(unknown, new ChildNotFound({ child: "nobody" }))
      const elsewhere = yield* Effect.flip(DynamicSupervisor.terminateChild(mine, Registry.name(names, "carol")))
      assert.deepStrictEqual(elsewhere, new ChildNotFound({ child: "carol" }))
      assert.deepStrictEqual(yield* Registry.whereis(names, "carol"), Option.some("carol#1"), "untouched")
    }).pipe(Effect.scoped)
  )

  it.effect("a name registered by a plain scope (not a child) names no child", () =>
    Effect.gen(function* () {
      const names = yield* Registry.make<string, string>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make()
      yield* Registry.register(names, "plain", "value")
      assert.isUndefined(Registry.whereisChildUnsafe(names, "plain"))
      const e = yield* Effect.flip(DynamicSupervisor.terminateChild(sup, Registry.name(names, "plain")))
      assert.strictEqual(e._tag, "ChildNotFound")
    }).pipe(Effect.scoped)
  )
})

describe("Supervisor.handle", () => {
  it.effect("answers with the child's handle, typed by its spec, and the new one after a restart", () =>
    Effect.gen(function* () {
      const counter = { starts: 0, stops: 0 }
      const crash = yield* Deferred.make<void, string>()
      const worker = session("worker", counter, crash)
      const sessions = DynamicSupervisor.childSpec({ id: "sessions" })
      const app = yield* Supervisor.make([worker, sessions], { strategy: "oneForOne" })
      const sup = yield* Supervisor.handle(app, sessions)
      expectTypeOf(sup).toEqualTypeOf<DynamicSupervisor.DynamicSupervisor<never>>()
      assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).active, 0)
      assert.strictEqual(yield* Supervisor.handle(app, worker), "worker#1")
      yield* Deferred.fail(crash, "boom")
      yield* eventually(() => Supervisor.handleUnsafe(app, worker)?.value === "worker#2")
      assert.strictEqual(yield* Supervisor.handle(app, worker), "worker#2")
    }).pipe(Effect.scoped)
  )

  it.effect("fails with ChildNotFound while the child is not running, and for a spec that is not in the tree", () =>
    Effect.gen(function* () {
      const worker = session("worker", { starts: 0, stops: 0 })
      const app = yield* Supervisor.make([worker], { strategy: "oneForOne" })
      yield* Supervisor.terminateChild(app, "worker")
      const stopped = yield* Effect.exit(Supervisor.handle(app, worker))
      assert.deepStrictEqual(stopped, Exit.fail(new ChildNotFound({ child: "worker" })))
      const stranger = yield* Effect.flip(Supervisor.handle(app, session("stranger", { starts: 0, stops: 0 })))
      assert.deepStrictEqual(stranger, new ChildNotFound({ child: "stranger" }))
    }).pipe(Effect.scoped)
  )
})

describe("effect_otp_child_start_failures_total", () => {
  it.effect("a via name race lost (AlreadyStarted) is not a start failure; a start that fails is", () =>
    Effect.gen(function* () {
      const name = "start-failures-test"
      const names = yield* Registry.make<string, string>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make({ name })
      const value = Effect.map(Metric.snapshot, (all) => {
        const m = all.find(
          (m) => m.id === "effect_otp_child_start_failures_total" && m.attributes?.["supervisor"] === name
        )
        return (m?.state as { readonly count?: number } | undefined)?.count ?? 0
      })
      yield* DynamicSupervisor.startChild(sup, Registry.via(names, "alice", session("alice", { starts: 0, stops: 0 })))
      const lost = yield* Effect.flip(
        DynamicSupervisor.startChild(sup, Registry.via(names, "alice", session("alice", { starts: 0, stops: 0 })))
      )
      assert.strictEqual(lost._tag, "AlreadyStarted")
      assert.strictEqual(yield* value, 0)
      yield* Effect.flip(DynamicSupervisor.startChild(sup, ChildSpec.make({ start: Effect.fail("no connection") })))
      assert.strictEqual(yield* value, 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})

describe("DynamicSupervisor.make(null)", () => {
  it.effect("fails with InvalidOptions naming the options, as every other module does", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(DynamicSupervisor.make(null as never))
      assert.strictEqual(e._tag, "InvalidOptions")
      assert.strictEqual(e._tag === "InvalidOptions" ? e.field : undefined, "options")
      assert.strictEqual(e._tag === "InvalidOptions" ? e.value : undefined, null)
    }).pipe(Effect.scoped)
  )
})
