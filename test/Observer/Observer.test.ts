/**
 * Observer.snapshot and Observer.events over every supervisor kind, on
 * TestClock: what the tree looks like as data, and what a reader of a root
 * sees when children start, crash, restart, stop, are abandoned, and when a
 * supervisor gives up.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Logger, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import {
  ChildSpec,
  DynamicSupervisor,
  Observer,
  Pool,
  RateLimitedSupervisor,
  RateLimiter,
  Registry,
  Supervisor,
  Task,
  TaskSupervisor
} from "effect-otp"
import { type Control, controllable, eventually, makeEventLog, settle } from "../utils/lifecycle.ts"

const quiet = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provideService(self, Logger.CurrentLoggers, new Set())

/** A reader of `root` that keeps everything it reads. */
const record = (root: Observer.Inspectable) =>
  Effect.gen(function* () {
    const seen: Array<Observer.StreamEvent> = []
    const fiber = yield* Observer.events(root).pipe(
      Stream.runForEach((e) => Effect.sync(() => void seen.push(e))),
      Effect.forkChild({ startImmediately: true })
    )
    yield* Effect.yieldNow
    /** Lets the scheduler run until `check` holds (no time passes); fails with what was seen. */
    const until = (check: (seen: ReadonlyArray<Observer.StreamEvent>) => boolean) =>
      Effect.gen(function* () {
        for (let i = 0; i < 200; i++) {
          if (check(seen)) return
          yield* Effect.yieldNow
        }
        return yield* Effect.die(new Error(`never held; seen:\n${seen.map(show).join("\n")}`))
      })
    return { seen, until, stop: Fiber.interrupt(fiber) }
  })

const show = (e: Observer.StreamEvent): string => {
  switch (e._tag) {
    case "Dropped":
      return `Dropped ${e.count}`
    case "Exited":
      return `${e.supervisor}: Exited ${e.id}#${e.pid} ${e.reason}`
    case "Restarted":
      return `${e.supervisor}: Restarted ${e.id}#${e.previousPid}->#${e.pid}`
    case "GaveUp":
      return `${e.supervisor}: GaveUp ${e.reason} (${e.maxRestarts} in ${e.maxSeconds}s)`
    case "Abandoned":
      return `${e.supervisor}: Abandoned ${e.id}#${e.pid} after ${e.shutdownMillis}ms`
    case "Started":
      return `${e.supervisor}: Started ${e.id}#${e.pid}`
  }
}

/** JSON scalars, arrays and plain objects only (no function, class instance, bigint, cycle). */
const isPlainData = (u: unknown, seen = new Set<unknown>()): boolean => {
  if (u === null || u === undefined) return true
  if (typeof u === "string" || typeof u === "boolean") return true
  if (typeof u === "number") return Number.isFinite(u)
  if (typeof u !== "object" || seen.has(u)) return false
  seen.add(u)
  if (Array.isArray(u)) return u.every((x) => isPlainData(x, seen))
  if (Object.getPrototypeOf(u) !== Object.prototype) return false
  return Object.values(u).every((x) => isPlainData(x, seen))
}

const childPid = (sup: DynamicSupervisor.DynamicSupervisor, id: string): number | undefined =>
  DynamicSupervisor.whichChildrenUnsafe(sup)?.find((c) => c.id === id && c.child !== "restarting")?.pid

const handleOf = <A>(sup: DynamicSupervisor.DynamicSupervisor, id: string): A => {
  const c = DynamicSupervisor.whichChildrenUnsafe(sup)?.find((c) => c.id === id)
  if (c === undefined || c.child === "restarting") throw new Error(`${id} is not running`)
  return c.child.handle as A
}

describe("DynamicSupervisor", () => {
  it.effect("snapshot: the supervisor with its counts, each child with id, pid, state and restart count", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ name: "sessions" })
      yield* DynamicSupervisor.startChild(sup, controllable(log, "alice"))
      yield* DynamicSupervisor.startChild(sup, controllable(log, "bob"))
      const tree = yield* Observer.snapshot(sup)
      assert.strictEqual(tree.kind, "DynamicSupervisor")
      assert.strictEqual(tree.name, "sessions")
      assert.strictEqual(tree.state, "running")
      assert.deepStrictEqual(tree.counts, { specs: 2, active: 2, supervisors: 0, workers: 2 })
      assert.deepStrictEqual(
        tree.children.map((c) => [c.kind, c.id, c.pid, c.state, c.restarts]),
        [
          ["Worker", "alice", childPid(sup, "alice"), "running", 0],
          ["Worker", "bob", childPid(sup, "bob"), "running", 0]
        ]
      )
      // plain data: JSON.stringify it as it is
      assert.isTrue(isPlainData(tree))
    })
  )

  it.effect("a crash: Exited with reason crash and its cause, then Restarted naming the new pid and the old", () =>
    quiet(
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* DynamicSupervisor.make({ name: "sessions" })
        const r = yield* record(sup)
        yield* DynamicSupervisor.startChild(sup, controllable(log, "alice"))
        const first = childPid(sup, "alice")!
        yield* TestClock.adjust("5 seconds")
        yield* Deferred.fail(handleOf<Control>(sup, "alice").exit, "bad request")
        yield* r.until((seen) => seen.length >= 3)
        const second = childPid(sup, "alice")!
        assert.deepStrictEqual(r.seen.map(show), [
          `sessions: Started alice#${first}`,
          `sessions: Exited alice#${first} crash`,
          `sessions: Restarted alice#${first}->#${second}`
        ])
        const exited = r.seen[1]!
        assert.strictEqual(exited._tag === "Exited" && exited.supervisorKind, "DynamicSupervisor")
        assert.include(exited._tag === "Exited" ? exited.cause : "", "bad request")
        // times are read from the supervisor's Clock (TestClock here)
        assert.strictEqual(r.seen[0]!._tag !== "Dropped" && r.seen[0]!.at, 0)
        assert.strictEqual(exited._tag === "Exited" && exited.at, 5000)
        const node = (yield* Observer.snapshot(sup)).children[0]!
        assert.strictEqual(node.restarts, 1)
        assert.strictEqual(node.pid, second)
        yield* r.stop
      })
    )
  )

  it.effect("a child waiting for its backoff restart shows as restarting, with no pid, until it is back", () =>
    quiet(
      Effect.gen(function* () {
        const log = makeEventLog()
        const sup = yield* DynamicSupervisor.make({ restartBackoff: Schedule.spaced("1 second") })
        yield* DynamicSupervisor.startChild(sup, controllable(log, "alice"))
        yield* Deferred.fail(handleOf<Control>(sup, "alice").exit, "boom")
        yield* settle
        const waiting = (yield* Observer.snapshot(sup)).children[0]!
        assert.strictEqual(waiting.state, "restarting")
        assert.isUndefined(waiting.pid)
        yield* TestClock.adjust("1 second")
        yield* eventually(() => childPid(sup, "alice") !== undefined)
        const back = (yield* Observer.snapshot(sup)).children[0]!
        assert.strictEqual(back.state, "running")
        assert.strictEqual(back.restarts, 1)
      })
    )
  )

  it.effect("a transient child's own end is an Exited with reason normal, and it leaves the tree", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ name: "s" })
      const r = yield* record(sup)
      const b = yield* DynamicSupervisor.startChild(sup, controllable(log, "b", { restart: "transient" }))
      yield* Deferred.succeed(b.handle.exit, undefined)
      yield* r.until((seen) => seen.length >= 2)
      assert.deepStrictEqual(r.seen.map(show), [`s: Started b#${b.pid}`, `s: Exited b#${b.pid} normal`])
      assert.deepStrictEqual((yield* Observer.snapshot(sup)).children, [])
      yield* r.stop
    })
  )

  it.effect("terminateChild is an Exited with reason shutdown", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* DynamicSupervisor.make({ name: "s" })
      const r = yield* record(sup)
      const a = yield* DynamicSupervisor.startChild(sup, controllable(log, "a"))
      yield* DynamicSupervisor.terminateChild(sup, a)
      yield* r.until((seen) => seen.length >= 2)
      assert.deepStrictEqual(r.seen.map(show), [`s: Started a#${a.pid}`, `s: Exited a#${a.pid} shutdown`])
      yield* r.stop
    })
  )

  it.effect("past maxRestarts in maxSeconds the supervisor emits GaveUp with its limits", () =>
    quiet(
      Effect.gen(function* () {
        const sup = yield* DynamicSupervisor.make({ name: "s", maxRestarts: 2, maxSeconds: 5 })
        const r = yield* record(sup)
        yield* DynamicSupervisor.startChild(
          sup,
          ChildSpec.make({ id: "crasher", start: Effect.void, run: () => Effect.fail("boom") })
        )
        yield* Effect.exit(DynamicSupervisor.await(sup))
        yield* r.until((seen) => seen.some((e) => e._tag === "GaveUp"))
        const gaveUp = r.seen.find((e) => e._tag === "GaveUp")!
        assert.strictEqual(show(gaveUp), "s: GaveUp intensity (2 in 5s)")
        assert.strictEqual(r.seen.filter((e) => e._tag === "Restarted").length, 2)
        assert.strictEqual(r.seen.filter((e) => e._tag === "Exited" && e.reason === "crash").length, 3)
        yield* r.stop
      })
    )
  )

  it.effect("a child that overruns its shutdown time is Abandoned, with the time it was given", () =>
    quiet(
      Effect.gen(function* () {
        const sup = yield* DynamicSupervisor.make({ name: "s" })
        const r = yield* record(sup)
        const stuck = yield* DynamicSupervisor.startChild(
          sup,
          ChildSpec.make({
            id: "stuck",
            start: Effect.addFinalizer(() => Effect.sleep("1 minute")),
            shutdown: "2 seconds"
          })
        )
        const stopping = yield* Effect.forkChild(DynamicSupervisor.terminateChild(sup, stuck))
        yield* TestClock.adjust("2 seconds")
        yield* Fiber.join(stopping)
        yield* r.until((seen) => seen.some((e) => e._tag === "Abandoned"))
        assert.include(r.seen.map(show), `s: Abandoned stuck#${stuck.pid} after 2000ms`)
        yield* TestClock.adjust("1 minute")
        yield* r.stop
      })
    )
  )
})

describe("Supervisor (a tree)", () => {
  const app = (log: ReturnType<typeof makeEventLog>) =>
    Supervisor.make(
      [
        controllable(log, "config"),
        DynamicSupervisor.childSpec({ name: "sessions" }),
        TaskSupervisor.childSpec({ name: "tasks" })
      ],
      { strategy: "oneForOne", name: "app" }
    )

  const handleIn = <A>(sup: Supervisor.Supervisor, id: string): A => {
    const c = Supervisor.whichChildrenUnsafe(sup)?.find((c) => c.id === id)
    if (c === undefined || typeof c.child === "string") throw new Error(`${id} is not running`)
    return c.child.handle as A
  }

  it.effect("snapshot: every level, each node with its kind, type and counts", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const sup = yield* app(log)
      const sessions = handleIn<DynamicSupervisor.DynamicSupervisor>(sup, "sessions")
      yield* DynamicSupervisor.startChild(sessions, controllable(log, "alice"))
      const tree = yield* Observer.snapshot(sup)
      assert.strictEqual(tree.kind, "Supervisor")
      assert.strictEqual(tree.name, "app")
      const byId = new Map(tree.children.map((c) => [c.id, c]))
      assert.deepStrictEqual(
        [...byId.values()].map((c) => [c.id, c.kind, c.type, c.state]),
        [
          ["config", "Worker", "worker", "running"],
          ["sessions", "DynamicSupervisor", "supervisor", "running"],
          ["tasks", "TaskSupervisor", "supervisor", "running"]
        ]
      )
      const s = byId.get("sessions")!
      assert.isNumber(s.pid)
      assert.deepStrictEqual(
        s.children.map((c) => [c.id, c.state]),
        [["alice", "running"]]
      )
      assert.isTrue(isPlainData(tree))
    })
  )

  it.effect(
    "a reader of the root sees the nested supervisors' events, also from a restarted one's new incarnation",
    () =>
      quiet(
        Effect.gen(function* () {
          const log = makeEventLog()
          const sup = yield* app(log)
          const r = yield* record(sup)
          const sessions1 = handleIn<DynamicSupervisor.DynamicSupervisor>(sup, "sessions")
          const alice = yield* DynamicSupervisor.startChild(sessions1, controllable(log, "alice"))
          yield* r.until((seen) => seen.some((e) => e._tag === "Started" && e.id === "alice"))
          yield* Deferred.fail(alice.handle.exit, "boom")
          yield* r.until((seen) => seen.some((e) => e._tag === "Restarted" && e.id === "alice"))

          // the config worker crashes: only it restarts (one_for_one); then the sessions supervisor is
          // made to give up, so app restarts it as a new incarnation, which must be followed too
          yield* Deferred.fail(handleIn<Control>(sup, "config").exit, "bad config")
          yield* r.until((seen) => seen.some((e) => e._tag === "Restarted" && e.id === "config"))
          const dying = handleIn<DynamicSupervisor.DynamicSupervisor>(sup, "sessions")
          yield* DynamicSupervisor.startChild(
            dying,
            ChildSpec.make({ id: "crasher", start: Effect.void, run: () => Effect.fail("boom") })
          )
          yield* r.until((seen) => seen.some((e) => e._tag === "Restarted" && e.id === "sessions"))
          const sessions2 = handleIn<DynamicSupervisor.DynamicSupervisor>(sup, "sessions")
          assert.notStrictEqual(sessions2, sessions1)
          yield* DynamicSupervisor.startChild(sessions2, controllable(log, "bob"))
          yield* r.until((seen) => seen.some((e) => e._tag === "Started" && e.id === "bob"))

          const tags = r.seen.map(show)
          assert.include(tags, "sessions: GaveUp intensity (3 in 5s)")
          assert.isTrue(tags.some((t) => t.startsWith("app: Exited config#") && t.endsWith("crash")))
          assert.isTrue(tags.some((t) => t.startsWith("app: Exited sessions#") && t.endsWith("crash")))
          yield* r.stop
        })
      )
  )
})

describe("Pool", () => {
  it.effect(
    "snapshot: open / idle / in use / waiting, each connection a node; events for connections opened and closed",
    () =>
      quiet(
        Effect.gen(function* () {
          let n = 0
          const pool = yield* Pool.make({
            name: "db",
            connect: Effect.sync(() => ({ id: ++n })),
            max: 1
          })
          const r = yield* record(pool)
          const held = yield* Deferred.make<void>()
          const borrower = yield* Effect.forkChild(Pool.withConnection(pool, () => Deferred.await(held)))
          yield* eventually(() => Pool.statsUnsafe(pool).inUse === 1)
          const waiter = yield* Effect.forkChild(Pool.withConnection(pool, () => Effect.void))
          yield* eventually(() => Pool.statsUnsafe(pool).waiting === 1)

          const tree = yield* Observer.snapshot(pool)
          assert.strictEqual(tree.kind, "Pool")
          assert.strictEqual(tree.name, "db")
          assert.deepInclude(tree.stats, { open: 1, idle: 0, inUse: 1, waiting: 1 })
          assert.deepStrictEqual(
            tree.children.map((c) => [c.kind, c.state]),
            [["Connection", "running"]]
          )
          assert.deepStrictEqual(Observer.figures(tree), { children: 1, restarts: 0, poolWaiting: 1, limiterQueued: 0 })

          yield* Deferred.succeed(held, undefined)
          yield* Fiber.join(borrower)
          yield* Fiber.join(waiter)
          assert.deepInclude((yield* Observer.snapshot(pool)).stats, { idle: 1, inUse: 0, waiting: 0 })
          // the connection goes bad in use: retired, closed by the pool
          yield* Pool.withConnection(pool, (conn) => Pool.invalidate(pool, conn))
          yield* r.until((seen) => seen.some((e) => e._tag === "Exited"))
          assert.deepStrictEqual(
            r.seen.map((e) => (e._tag === "Dropped" ? e._tag : [e._tag, e.supervisorKind, e.id])),
            [
              ["Started", "Pool", "db/1"],
              ["Exited", "Pool", "db/1"]
            ]
          )
          yield* r.stop
        })
      )
  )
})

describe("TaskSupervisor", () => {
  it.effect(
    "snapshot: running tasks are Task nodes with pids, counted; a crashed startChild task is an Exited crash",
    () =>
      quiet(
        Effect.gen(function* () {
          const tasks = yield* TaskSupervisor.make({ name: "jobs" })
          const r = yield* record(tasks)
          const gate = yield* Deferred.make<void>()
          const a = yield* TaskSupervisor.async(tasks, Deferred.await(gate))
          yield* TaskSupervisor.startChild(tasks, Deferred.await(gate))
          const tree = yield* Observer.snapshot(tasks)
          assert.strictEqual(tree.kind, "TaskSupervisor")
          assert.strictEqual(tree.name, "jobs")
          assert.strictEqual(tree.counts?.active, 2)
          assert.deepStrictEqual(
            tree.children.map((c) => c.state),
            ["running", "running"]
          )
          assert.include(
            tree.children.map((c) => c.pid),
            a.pid
          )
          yield* TaskSupervisor.startChild(tasks, Effect.fail("job failed"))
          yield* r.until((seen) => seen.some((e) => e._tag === "Exited" && e.reason === "crash"))
          const crash = r.seen.find((e) => e._tag === "Exited" && e.reason === "crash")!
          assert.strictEqual(crash._tag === "Exited" && crash.supervisor, "jobs")
          assert.include(crash._tag === "Exited" ? crash.cause : "", "job failed")
          yield* Deferred.succeed(gate, undefined)
          yield* Task.await(a)
          yield* r.stop
        })
      )
  )
})

describe("RateLimitedSupervisor and RateLimiter", () => {
  it.effect(
    "snapshot: a limiter's admitted / queued / in window, the supervisor's live children; queue depth in the figures",
    () =>
      quiet(
        Effect.gen(function* () {
          const sup = yield* RateLimitedSupervisor.make({ name: "reports", limit: 2, window: "1 second" })
          const r = yield* record(sup)
          const job = (i: number) => ChildSpec.make({ id: `job-${i}`, start: Effect.void, run: () => Effect.never })
          const starts = yield* Effect.forEach([1, 2, 3, 4, 5], (i) =>
            Effect.forkChild(RateLimitedSupervisor.startChild(sup, job(i)), { startImmediately: true })
          )
          yield* settle
          const tree = yield* Observer.snapshot(sup)
          assert.strictEqual(tree.kind, "RateLimitedSupervisor")
          assert.deepInclude(tree.stats, { admitted: 2, queued: 3, inWindow: 2, live: 2 })
          assert.strictEqual(tree.children.length, 2)
          assert.strictEqual(Observer.figures(tree).limiterQueued, 3)
          yield* TestClock.adjust("1 second")
          yield* settle
          assert.deepInclude((yield* Observer.snapshot(sup)).stats, { admitted: 4, queued: 1 })
          assert.strictEqual(r.seen.filter((e) => e._tag === "Started").length, 4)
          yield* TestClock.adjust("1 second")
          yield* Effect.forEach(starts, Fiber.join)
          yield* r.stop

          const limiter = yield* RateLimiter.make({ name: "api", limit: 1, window: "1 second" })
          yield* RateLimiter.take(limiter)
          const waiting = yield* Effect.forkChild(RateLimiter.take(limiter), { startImmediately: true })
          yield* settle
          const node = yield* Observer.snapshot(limiter)
          assert.strictEqual(node.kind, "RateLimiter")
          assert.deepInclude(node.stats, { admitted: 1, queued: 1, inWindow: 1 })
          yield* TestClock.adjust("1 second")
          yield* Fiber.join(waiting)
        })
      )
  )
})

describe("Registry", () => {
  it.effect("snapshot: a leaf with its entry count", () =>
    Effect.gen(function* () {
      const registry = yield* Registry.make<string, number>({ keys: "unique" })
      yield* Registry.register(registry, "a", 1)
      yield* Registry.register(registry, "b", 2)
      const node = yield* Observer.snapshot(registry)
      assert.strictEqual(node.kind, "Registry")
      assert.deepInclude(node.stats, { entries: 2 })
      assert.deepStrictEqual(node.children, [])
    })
  )
})
