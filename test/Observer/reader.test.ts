/**
 * The Observer's bounded event reader: what a slow reader loses, and that it
 * is told. The host here is a bare inspectable emitting by hand, so the
 * reader's own rules are pinned apart from any supervisor.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Inspect from "../../src/internal/inspect.ts"
import * as Reader from "../../src/Observer/internal/reader.ts"
import { Observer } from "effect-otp"

/** An inspectable that emits what the test tells it to. */
const host = () => {
  const owner: { listeners: Inspect.Listeners } = { listeners: undefined }
  const root: Inspect.Inspectable = {
    [Inspect.TypeId]: {
      kind: "DynamicSupervisor",
      name: "h",
      snapshot: () => ({
        kind: "DynamicSupervisor",
        type: "supervisor",
        name: "h",
        state: "running",
        restarts: 0,
        children: []
      }),
      subscribe: (l) => Inspect.addListener(owner, l),
      childInspectors: () => []
    }
  }
  const started = (pid: number): Inspect.InspectEvent => ({
    _tag: "Started",
    supervisor: "h",
    supervisorKind: "DynamicSupervisor",
    id: `c${pid}`,
    pid,
    at: pid
  })
  const emit = (pid: number) => {
    if (owner.listeners !== undefined) Inspect.emit(owner.listeners, started(pid))
  }
  return { root, owner, emit, started }
}

const pids = (events: ReadonlyArray<Reader.ReaderEvent>) =>
  events.map((e) => (e._tag === "Dropped" ? `dropped ${e.count}/${e.total}` : e.pid))

describe("Ring", () => {
  it("keeps events in order up to its capacity", () => {
    const h = host()
    const ring = new Reader.Ring(3)
    for (const pid of [1, 2, 3]) ring.push(h.started(pid))
    assert.deepStrictEqual(pids(ring.take()), [1, 2, 3])
    assert.strictEqual(ring.dropped, 0)
  })

  it("when full drops the oldest, counts it, and tells the reader before the next batch", () => {
    const h = host()
    const ring = new Reader.Ring(3)
    for (let pid = 1; pid <= 7; pid++) ring.push(h.started(pid))
    assert.deepStrictEqual(pids(ring.take()), ["dropped 4/4", 5, 6, 7])
    ring.push(h.started(8))
    assert.deepStrictEqual(pids(ring.take()), [8], "no marker when nothing was lost since the last batch")
    for (let pid = 9; pid <= 13; pid++) ring.push(h.started(pid))
    assert.deepStrictEqual(
      pids(ring.take()),
      ["dropped 2/6", 11, 12, 13],
      "count since the last marker, total since start"
    )
  })

  it("holds at most capacity events whatever the producer does (memory is bounded)", () => {
    const h = host()
    const ring = new Reader.Ring(16)
    for (let pid = 1; pid <= 100_000; pid++) ring.push(h.started(pid))
    assert.strictEqual(ring.size, 16)
    assert.strictEqual(ring.dropped, 100_000 - 16)
  })
})

describe("Observer.events", () => {
  it.effect("delivers the host's events and unsubscribes when the stream ends", () =>
    Effect.gen(function* () {
      const h = host()
      const fiber = yield* Observer.events(h.root).pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      assert.strictEqual(h.owner.listeners?.size, 1, "subscribed while the stream runs")
      for (const pid of [1, 2, 3, 4]) h.emit(pid)
      assert.deepStrictEqual(pids(yield* Fiber.join(fiber)), [1, 2, 3])
      assert.isUndefined(h.owner.listeners, "unsubscribed when the stream ended")
    })
  )

  it.effect("an interrupted reader unsubscribes", () =>
    Effect.gen(function* () {
      const h = host()
      const fiber = yield* Observer.events(h.root).pipe(Stream.runDrain, Effect.forkChild)
      yield* Effect.yieldNow
      assert.strictEqual(h.owner.listeners?.size, 1)
      yield* Fiber.interrupt(fiber)
      assert.isUndefined(h.owner.listeners)
    })
  )

  it.effect("a reader that falls behind gets the newest events and a Dropped marker with the count", () =>
    Effect.gen(function* () {
      const h = host()
      // a slow reader: a second of work per event
      const fiber = yield* Observer.events(h.root, { capacity: 4 }).pipe(
        Stream.tap(() => Effect.sleep("1 second")),
        Stream.take(6),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Effect.yieldNow
      h.emit(1)
      yield* Effect.yieldNow
      // nine more while it works on the first: it can hold four
      for (let pid = 2; pid <= 10; pid++) h.emit(pid)
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(pids(yield* Fiber.join(fiber)), [1, "dropped 5/5", 7, 8, 9, 10])
    })
  )

  it.effect("with a batch window, what arrives within it after the first event is delivered in one batch", () =>
    Effect.gen(function* () {
      const h = host()
      const batches: Array<ReadonlyArray<number | string | undefined>> = []
      const fiber = yield* Observer.events(h.root, { batch: "50 millis" }).pipe(
        Stream.mapArray((batch) => [pids(batch)] as const),
        Stream.runForEach((b) => Effect.sync(() => void batches.push(b))),
        Effect.forkChild
      )
      yield* Effect.yieldNow
      h.emit(1)
      yield* TestClock.adjust("20 millis")
      h.emit(2)
      yield* TestClock.adjust("20 millis")
      h.emit(3)
      assert.deepStrictEqual(batches, [], "nothing before the window ends")
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(batches, [[1, 2, 3]])
      h.emit(4)
      yield* TestClock.adjust("50 millis")
      assert.deepStrictEqual(batches, [[1, 2, 3], [4]])
      yield* Fiber.interrupt(fiber)
    })
  )

  it.effect("rejects a batch window that is not a finite duration >= 0", () =>
    Effect.gen(function* () {
      const h = host()
      const error = yield* Effect.flip(Stream.runDrain(Observer.events(h.root, { batch: -1 })))
      assert.strictEqual(error._tag === "InvalidOptions" && error.field, "batch")
    })
  )

  it.effect("rejects a capacity that is not a positive integer with InvalidOptions", () =>
    Effect.gen(function* () {
      const h = host()
      for (const capacity of [0, -1, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(Stream.runDrain(Observer.events(h.root, { capacity })))
        assert.strictEqual(error._tag, "InvalidOptions")
        assert.strictEqual(error.field, "capacity")
        assert.isTrue(Object.is(error.value, capacity))
      }
    })
  )
})
