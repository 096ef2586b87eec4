/**
 * ClusterSupervisor in process: effect/cluster's TestRunner (one runner, in
 * memory) with the bookkeeping in memory, TestClock for time. Every
 * operation and semantic; the multi-process suite (ClusterSupervisor.real)
 * covers what needs several runners and real faults.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import { ClusterErrors, ClusterRunner, ClusterSupervisor } from "../../src/Cluster/index.ts"
import { ClusterStore, makeMemory, processSession } from "../../src/Cluster/internal/store.ts"
import { makeProbe, type Probe, sessionServer } from "./fixtures.ts"
import { TestRunner } from "effect/cluster"

const tagOf = (e: unknown): string | undefined => (e as { readonly _tag?: string })._tag

/** Runs `effect` while virtual time moves on in 10 ms steps (the cluster's timers need it). */
const drive = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect, { startImmediately: true })
    let steps = 0
    while (fiber.pollUnsafe() === undefined) {
      if (++steps > 100_000) return yield* Effect.die("drive: not done after 1000 virtual seconds")
      yield* TestClock.adjust(10)
    }
    return yield* Fiber.join(fiber)
  })

/** The error an effect fails with (driven). */
const flip = <A, E, R>(effect: Effect.Effect<A, E, R>) => drive(Effect.flip(effect))

const setup = (
  probe: Probe,
  options?: {
    readonly restart?: ClusterSupervisor.RestartType
    readonly maxRestarts?: number
    readonly maxSeconds?: number
    readonly maxChildren?: number
    readonly maxEvents?: number
    readonly initDies?: (id: string) => boolean
  }
) => {
  const { initDies, ...rest } = options ?? {}
  const sup = ClusterSupervisor.make("test/Sessions", {
    server: sessionServer(probe, initDies ? { initDies } : undefined),
    ...rest
  })
  const store = makeMemory()
  const layer = ClusterSupervisor.layer(sup).pipe(
    Layer.provideMerge(Layer.merge(TestRunner.layer, Layer.succeed(ClusterStore)(store)))
  )
  return { sup, layer, store }
}

const say = (sup: ReturnType<typeof setup>["sup"], id: string, text: string) =>
  drive(Effect.flatMap(ClusterSupervisor.client(sup), (client) => client(id).Say({ text })))
const crash = (sup: ReturnType<typeof setup>["sup"], id: string) =>
  drive(Effect.flatMap(ClusterSupervisor.client(sup), (client) => client(id).Crash()))

describe("make", () => {
  it.effect("rejects bad options with InvalidOptions naming the field and the value", () => {
    const probe = makeProbe()
    return Effect.gen(function* () {
      for (const [options, field] of [
        [{ maxRestarts: -1 }, "maxRestarts"],
        [{ maxSeconds: 0 }, "maxSeconds"],
        [{ maxChildren: 1.5 }, "maxChildren"],
        [{ restart: "sometimes" as never }, "restart"],
        [{ maxEvents: 0 }, "maxEvents"],
        [{ maxEvents: 2.5 }, "maxEvents"],
        [{ maxEvents: Number.NaN }, "maxEvents"]
      ] as const) {
        const sup = ClusterSupervisor.make("test/Bad", { server: sessionServer(probe), ...options })
        const error = yield* Effect.flip(ClusterSupervisor.whichChildren(sup))
        assert.strictEqual(tagOf(error), "InvalidOptions")
        assert.strictEqual((error as { field?: string }).field, field)
        const built = yield* Effect.exit(Layer.build(ClusterSupervisor.layer(sup)).pipe(Effect.scoped))
        assert.isTrue(Exit.isFailure(built))
      }
    }).pipe(Effect.provide(ClusterRunner.layerTest))
  })
})

describe("startChild", () => {
  it.effect("starts the child on the runner that owns its shard, as incarnation 1, and answers its calls", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      const info = yield* drive(ClusterSupervisor.startChild(sup, "a"))
      assert.deepStrictEqual([info.id, info.status, info.incarnation], ["a", "running", 1])
      assert.isTrue(Option.isSome(info.runner))
      const r1 = yield* say(sup, "a", "hi")
      const r2 = yield* say(sup, "a", "again")
      assert.deepStrictEqual([r1.reply, r1.seen, r2.seen, r2.incarnation], ["a: hi", 1, 2, 1])
      assert.strictEqual(probe.inits.get("a"), 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("fails AlreadyStarted for an id that is started, and leaves the child alone", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* say(sup, "a", "x")
      const error = yield* flip(ClusterSupervisor.startChild(sup, "a"))
      assert.strictEqual(tagOf(error), "AlreadyStarted")
      assert.strictEqual((error as ClusterErrors.AlreadyStarted).status, "started")
      assert.strictEqual((yield* say(sup, "a", "y")).seen, 2)
      assert.strictEqual(probe.inits.get("a"), 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("fails MaxChildren at the limit, counted across the cluster; a terminated child frees its place", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe, { maxChildren: 2 })
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* drive(ClusterSupervisor.startChild(sup, "b"))
      const error = yield* flip(ClusterSupervisor.startChild(sup, "c"))
      assert.strictEqual(tagOf(error), "MaxChildren")
      assert.strictEqual(probe.inits.get("c"), undefined)
      yield* drive(ClusterSupervisor.terminateChild(sup, "a"))
      yield* drive(ClusterSupervisor.startChild(sup, "c"))
      assert.strictEqual((yield* ClusterSupervisor.countChildren(sup)).specs, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("fails RestartIntensityExceeded when init always dies, and the child ends failed", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe, { maxRestarts: 2, initDies: (id) => id === "poison" })
    return Effect.gen(function* () {
      const error = yield* flip(ClusterSupervisor.startChild(sup, "poison"))
      assert.strictEqual(tagOf(error), "RestartIntensityExceeded")
      // the first start plus maxRestarts restarts
      assert.strictEqual(probe.inits.get("poison"), 3)
      const [child] = yield* ClusterSupervisor.whichChildren(sup)
      assert.deepStrictEqual([child?.status, child?.restarts, Option.isNone(child!.runner)], ["failed", 3, true])
    }).pipe(Effect.provide(layer))
  })
})

describe("calls", () => {
  it.effect("a call to an id that was never started fails ChildNotFound and starts nothing", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      const error = yield* flip(say(sup, "ghost", "hello"))
      assert.strictEqual(tagOf(error), "ChildNotFound")
      assert.strictEqual(probe.inits.get("ghost"), undefined)
      assert.deepStrictEqual(yield* ClusterSupervisor.whichChildren(sup), [])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a typed error of the protocol is the call's reply: the child keeps its state", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* say(sup, "a", "one")
      const error = yield* flip(say(sup, "a", "no"))
      assert.strictEqual(tagOf(error), "Refused")
      assert.strictEqual((yield* say(sup, "a", "two")).seen, 2)
      const [child] = yield* ClusterSupervisor.whichChildren(sup)
      assert.strictEqual(child?.restarts, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect(
    "a handler's defect crashes the child: the caller gets ChildCrashed, the child restarts with fresh state",
    () => {
      const probe = makeProbe()
      const { sup, layer } = setup(probe)
      return Effect.gen(function* () {
        yield* drive(ClusterSupervisor.startChild(sup, "a"))
        yield* say(sup, "a", "one")
        const error = yield* flip(crash(sup, "a"))
        assert.strictEqual(tagOf(error), "ChildCrashed")
        assert.include((error as ClusterErrors.ChildCrashed).reason, "boom")
        assert.strictEqual(probe.finalized.get("a"), 1)
        const after = yield* say(sup, "a", "two")
        assert.deepStrictEqual([after.seen, after.incarnation], [1, 2])
        const [child] = yield* ClusterSupervisor.whichChildren(sup)
        assert.deepStrictEqual([child?.status, child?.restarts, child?.incarnation], ["running", 1, 2])
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("the calls to one child are handled one at a time, in order", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      const client = yield* ClusterSupervisor.client(sup)
      const replies = yield* drive(
        Effect.forEach([1, 2, 3, 4, 5], (n) => client("a").Say({ text: String(n) }), { concurrency: "unbounded" })
      )
      assert.deepStrictEqual(replies.map((r) => r.seen).sort(), [1, 2, 3, 4, 5])
    }).pipe(Effect.provide(layer))
  })
})

describe("restart intensity", () => {
  it.effect("more than maxRestarts crashes within maxSeconds: failed, RestartIntensityExceeded to every caller", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe, { maxRestarts: 2, maxSeconds: 5 })
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      assert.strictEqual(tagOf(yield* flip(crash(sup, "a"))), "ChildCrashed")
      assert.strictEqual(tagOf(yield* flip(crash(sup, "a"))), "ChildCrashed")
      assert.strictEqual(tagOf(yield* flip(crash(sup, "a"))), "RestartIntensityExceeded")
      assert.strictEqual(tagOf(yield* flip(say(sup, "a", "still there?"))), "RestartIntensityExceeded")
      assert.strictEqual(probe.inits.get("a"), 3)
      assert.strictEqual(probe.finalized.get("a"), 3)
      assert.deepStrictEqual(yield* ClusterSupervisor.countChildren(sup), {
        specs: 1,
        active: 0,
        placing: 0,
        failed: 1
      })
    }).pipe(Effect.provide(layer))
  })

  it.effect("crashes further apart than maxSeconds never add up", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe, { maxRestarts: 1, maxSeconds: 5 })
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      for (let i = 0; i < 4; i++) {
        assert.strictEqual(tagOf(yield* flip(crash(sup, "a"))), "ChildCrashed")
        yield* TestClock.adjust("6 seconds")
      }
      assert.strictEqual((yield* say(sup, "a", "ok")).seen, 1)
      const [child] = yield* ClusterSupervisor.whichChildren(sup)
      assert.deepStrictEqual([child?.status, child?.restarts], ["running", 4])
    }).pipe(Effect.provide(layer))
  })

  it.effect("the restart window lives in the child's row, not in a runner's memory", () => {
    const probe = makeProbe()
    const { sup, layer, store } = setup(probe, { maxRestarts: 1 })
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      assert.strictEqual(tagOf(yield* flip(crash(sup, "a"))), "ChildCrashed")
      const row = Option.getOrThrow(yield* store.getChild("test/Sessions", "a"))
      assert.strictEqual(row.window.length, 1)
    }).pipe(Effect.provide(layer))
  })
})

describe("restart types", () => {
  it.effect("a temporary child that crashes is removed: ChildNotFound afterwards", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe, { restart: "temporary" })
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "t"))
      assert.strictEqual(tagOf(yield* flip(crash(sup, "t"))), "ChildCrashed")
      assert.strictEqual(tagOf(yield* flip(say(sup, "t", "x"))), "ChildNotFound")
      assert.deepStrictEqual(yield* ClusterSupervisor.whichChildren(sup), [])
      assert.strictEqual(probe.inits.get("t"), 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect(
    "a permanent child whose last incarnation ran elsewhere is started here as a move, with a new token",
    () => {
      const probe = makeProbe()
      const { sup, layer, store } = setup(probe)
      return Effect.gen(function* () {
        // as if another runner had run incarnation 1 and died
        yield* store.insertChild("test/Sessions", "m", 0, Infinity)
        yield* store.activate("test/Sessions", "m", "10.0.0.9:34431", "another process")
        const events = yield* ClusterSupervisor.events(sup, { pollInterval: "10 millis" }).pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.forkChild({ startImmediately: true })
        )
        const reply = yield* say(sup, "m", "hello")
        assert.strictEqual(reply.incarnation, 2)
        const [moved] = yield* drive(Fiber.join(events))
        assert.deepStrictEqual([moved?._tag, Option.getOrUndefined(moved!.detail)], ["Moved", "10.0.0.9:34431"])
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("a temporary child whose last incarnation ran elsewhere is not started again", () => {
    const probe = makeProbe()
    const { sup, layer, store } = setup(probe, { restart: "temporary" })
    return Effect.gen(function* () {
      yield* store.insertChild("test/Sessions", "t", 0, Infinity)
      yield* store.activate("test/Sessions", "t", "10.0.0.9:34431", "another process")
      assert.strictEqual(tagOf(yield* flip(say(sup, "t", "hello"))), "ChildNotFound")
      assert.strictEqual(probe.inits.get("t"), undefined)
      assert.deepStrictEqual(yield* ClusterSupervisor.whichChildren(sup), [])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a started child is kept alive: it is not passivated when idle past maxIdleTime", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* say(sup, "a", "one")
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual((yield* say(sup, "a", "two")).seen, 2)
      assert.strictEqual(probe.inits.get("a"), 1)
      assert.strictEqual(probe.finalized.get("a"), undefined)
    }).pipe(Effect.provide(layer))
  })
})

describe("terminateChild", () => {
  it.effect("stops the child (its finalizers run); calls and a second terminate fail ChildNotFound", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* say(sup, "a", "one")
      yield* drive(ClusterSupervisor.terminateChild(sup, "a"))
      assert.strictEqual(probe.finalized.get("a"), 1)
      assert.strictEqual(tagOf(yield* flip(say(sup, "a", "x"))), "ChildNotFound")
      assert.strictEqual(tagOf(yield* flip(ClusterSupervisor.terminateChild(sup, "a"))), "ChildNotFound")
      assert.strictEqual(probe.inits.get("a"), 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a terminated id can be started again, fresh", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* say(sup, "a", "one")
      yield* drive(ClusterSupervisor.terminateChild(sup, "a"))
      const info = yield* drive(ClusterSupervisor.startChild(sup, "a"))
      assert.strictEqual(info.incarnation, 1)
      assert.strictEqual((yield* say(sup, "a", "two")).seen, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("terminates a failed child", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe, { maxRestarts: 0 })
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      assert.strictEqual(tagOf(yield* flip(crash(sup, "a"))), "RestartIntensityExceeded")
      yield* drive(ClusterSupervisor.terminateChild(sup, "a"))
      assert.strictEqual(tagOf(yield* flip(say(sup, "a", "x"))), "ChildNotFound")
    }).pipe(Effect.provide(layer))
  })
})

describe("restartChild", () => {
  it.effect("restarts a running child as a new incarnation with fresh state", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* say(sup, "a", "one")
      const info = yield* drive(ClusterSupervisor.restartChild(sup, "a"))
      assert.strictEqual(info.incarnation, 2)
      assert.strictEqual(probe.finalized.get("a"), 1)
      assert.strictEqual((yield* say(sup, "a", "two")).seen, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("gives a failed child another chance: its restart window is cleared", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe, { maxRestarts: 0 })
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      assert.strictEqual(tagOf(yield* flip(crash(sup, "a"))), "RestartIntensityExceeded")
      yield* drive(ClusterSupervisor.restartChild(sup, "a"))
      assert.strictEqual((yield* say(sup, "a", "back")).seen, 1)
      const [child] = yield* ClusterSupervisor.whichChildren(sup)
      assert.strictEqual(child?.status, "running")
    }).pipe(Effect.provide(layer))
  })

  it.effect("fails ChildNotFound for an id that is not started", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      assert.strictEqual(tagOf(yield* flip(ClusterSupervisor.restartChild(sup, "nope"))), "ChildNotFound")
    }).pipe(Effect.provide(layer))
  })
})

describe("whichChildren / countChildren", () => {
  it.effect(
    "list every child with status, runner, incarnation and restarts; a dead runner's children are placing",
    () => {
      const probe = makeProbe()
      const { sup, layer, store } = setup(probe, { maxRestarts: 0 })
      return Effect.gen(function* () {
        yield* drive(ClusterSupervisor.startChild(sup, "a"))
        yield* drive(ClusterSupervisor.startChild(sup, "b"))
        yield* drive(ClusterSupervisor.startChild(sup, "c"))
        yield* flip(crash(sup, "c"))
        const listed = yield* ClusterSupervisor.whichChildren(sup)
        assert.deepStrictEqual(
          listed.map((c) => [c.id, c.status, c.incarnation, c.restarts]),
          [
            ["a", "running", 1, 0],
            ["b", "running", 1, 0],
            ["c", "failed", 1, 1]
          ]
        )
        const runner = Option.getOrThrow(listed[0]!.runner)
        assert.deepStrictEqual(yield* ClusterSupervisor.countChildren(sup), {
          specs: 3,
          active: 2,
          placing: 0,
          failed: 1
        })
        // another process on the same address (a restarted runner) is not the one that ran them
        yield* store.registerSession(runner, "a restarted process")
        assert.strictEqual((yield* ClusterSupervisor.countChildren(sup)).placing, 2)
        yield* store.registerSession(runner, processSession)
        assert.strictEqual((yield* ClusterSupervisor.countChildren(sup)).active, 2)
        // a runner the engine no longer counts as alive
        store.markDead(runner, true)
        assert.deepStrictEqual(yield* ClusterSupervisor.countChildren(sup), {
          specs: 3,
          active: 0,
          placing: 2,
          failed: 1
        })
      }).pipe(Effect.provide(layer))
    }
  )
})

describe("events", () => {
  it.effect("reports Started, Restarted, Failed and Stopped in order", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe, { maxRestarts: 1 })
    return Effect.gen(function* () {
      const collected = yield* ClusterSupervisor.events(sup, { pollInterval: "10 millis" }).pipe(
        Stream.take(5),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      yield* flip(crash(sup, "a"))
      yield* flip(crash(sup, "a"))
      yield* drive(ClusterSupervisor.terminateChild(sup, "a"))
      yield* drive(ClusterSupervisor.startChild(sup, "b"))
      const events = yield* drive(Fiber.join(collected))
      assert.deepStrictEqual(
        events.map((e) => [e._tag, e.id, e.incarnation]),
        [
          ["Started", "a", 1],
          ["Restarted", "a", 2],
          ["Failed", "a", 2],
          ["Stopped", "a", 2],
          ["Started", "b", 1]
        ]
      )
    }).pipe(Effect.provide(layer))
  })
})

describe("event retention", () => {
  it.effect("keeps only the last maxEvents events of the supervisor; other scopes keep theirs", () => {
    const probe = makeProbe()
    const { sup, layer, store } = setup(probe, { maxEvents: 3 })
    return Effect.gen(function* () {
      yield* store.appendEvent({
        scope: "other",
        kind: "Started",
        id: "x",
        runner: null,
        incarnation: 1,
        detail: null,
        at: 0
      })
      for (const id of ["a", "b", "c"]) {
        yield* drive(ClusterSupervisor.startChild(sup, id))
        yield* drive(ClusterSupervisor.terminateChild(sup, id))
      }
      // 6 appended (Started and Stopped of a, b, c): the last 3 remain, in order
      const kept = yield* store.readEvents("test/Sessions", 0)
      assert.deepStrictEqual(
        kept.map((e) => [e.kind, e.id]),
        [
          ["Stopped", "b"],
          ["Started", "c"],
          ["Stopped", "c"]
        ]
      )
      assert.strictEqual((yield* store.readEvents("other", 0)).length, 1)
      // a reader from now on still sees what comes next
      const next = yield* ClusterSupervisor.events(sup, { pollInterval: "10 millis" }).pipe(
        Stream.take(1),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* drive(ClusterSupervisor.startChild(sup, "d"))
      const [started] = yield* drive(Fiber.join(next))
      assert.deepStrictEqual([started?._tag, started?.id], ["Started", "d"])
      assert.strictEqual((yield* store.readEvents("test/Sessions", 0)).length, 3)
    }).pipe(Effect.provide(layer))
  })

  it.effect("keeps 10 000 events by default and all of them with maxEvents: Infinity", () => {
    const probe = makeProbe()
    return Effect.gen(function* () {
      assert.strictEqual(ClusterSupervisor.make("test/D", { server: sessionServer(probe) }).maxEvents, 10_000)
      const store = makeMemory()
      const row = { scope: "s", kind: "Started", id: "x", runner: null, incarnation: 1, detail: null, at: 0 }
      for (let i = 0; i < 10_005; i++) yield* store.appendEvent(row)
      assert.strictEqual((yield* store.readEvents("s", 0)).length, 10_000)
      for (let i = 0; i < 10_005; i++) yield* store.appendEvent({ ...row, scope: "all" }, Infinity)
      assert.strictEqual((yield* store.readEvents("all", 0)).length, 10_005)
    })
  })
})

describe("fenced", () => {
  it.effect("runs a write while the incarnation is current and refuses it with Fenced once a newer one exists", () => {
    const probe = makeProbe()
    const { sup, layer, store } = setup(probe)
    return Effect.gen(function* () {
      yield* drive(ClusterSupervisor.startChild(sup, "a"))
      const child = { supervisor: "test/Sessions", id: "a", incarnation: 1, runner: "x" }
      const writes: Array<number> = []
      const write = (n: number) =>
        ClusterSupervisor.fenced(Effect.sync(() => writes.push(n))).pipe(
          Effect.provideService(ClusterSupervisor.CurrentChild, child)
        )
      yield* write(1)
      yield* drive(ClusterSupervisor.restartChild(sup, "a"))
      const error = yield* Effect.flip(write(2))
      assert.strictEqual(error._tag, "Fenced")
      assert.deepStrictEqual([(error as ClusterErrors.Fenced).token, (error as ClusterErrors.Fenced).current], [1, 2])
      assert.deepStrictEqual(writes, [1])
      void store
    }).pipe(Effect.provide(layer))
  })
})

describe("lifecycle", () => {
  it.effect("when the runner shuts down every running child's finalizers run", () => {
    const probe = makeProbe()
    const { sup, layer } = setup(probe)
    return Effect.gen(function* () {
      yield* Effect.gen(function* () {
        for (const id of ["a", "b", "c"]) yield* drive(ClusterSupervisor.startChild(sup, id))
      }).pipe(Effect.provide(layer))
      assert.deepStrictEqual([...probe.finalized.values()], [1, 1, 1])
    })
  })
})
