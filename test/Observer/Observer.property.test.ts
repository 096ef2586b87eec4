/**
 * The event stream tells the same story as the snapshot: random sequences of
 * starts, crashes and normal exits of permanent / transient / temporary
 * children run under a DynamicSupervisor with a reader attached; afterwards,
 * replaying the events must give every child in the final snapshot (its pid,
 * its restart count) and no child that is not there, each child's events in a
 * possible order (Started, then Exited → Restarted pairs, at most one final
 * Exited). Each sequence runs with Effect's default scheduler and with the
 * scheduler forced to yield every few operations, where interleavings hide.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Logger, Scheduler, Stream } from "effect"
import * as fc from "fast-check"
import { ChildSpec, DynamicSupervisor, Observer } from "effect-otp"

type Restart = ChildSpec.Restart
type Command =
  | { readonly _tag: "start"; readonly restart: Restart }
  | { readonly _tag: "exit"; readonly index: number; readonly how: "normal" | "crash" }

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    _tag: fc.constant("start" as const),
    restart: fc.constantFrom<Restart>("permanent", "transient", "temporary")
  }),
  fc.record({
    _tag: fc.constant("exit" as const),
    index: fc.nat(20),
    how: fc.constantFrom<"normal" | "crash">("normal", "crash")
  })
)

const run = (commands: ReadonlyArray<Command>) =>
  Effect.gen(function* () {
    const sup = yield* DynamicSupervisor.make({ name: "s", maxRestarts: 1_000_000 })
    const seen: Array<Observer.StreamEvent> = []
    const reader = yield* Observer.events(sup, { capacity: 100_000 }).pipe(
      Stream.runForEach((e) => Effect.sync(() => void seen.push(e))),
      Effect.forkChild({ startImmediately: true })
    )
    // the reader sees what happens after it has subscribed: start probes until one is seen
    for (let k = 1; !seen.some((e) => e._tag === "Started" && e.id?.startsWith("probe")); k++) {
      yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ id: `probe${k}`, start: Effect.void }))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
    }
    const controls = new Map<string, Deferred.Deferred<void, string>>()
    const live: Array<string> = []
    let seq = 0
    const settle = Effect.gen(function* () {
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow
    })
    for (const cmd of commands) {
      if (cmd._tag === "start") {
        const id = `c${++seq}`
        yield* DynamicSupervisor.startChild(
          sup,
          ChildSpec.make({
            id,
            restart: cmd.restart,
            start: Effect.tap(Deferred.make<void, string>(), (d) => Effect.sync(() => controls.set(id, d))),
            run: (d: Deferred.Deferred<void, string>) => Deferred.await(d)
          })
        )
        live.push(id)
      } else if (live.length > 0) {
        const id = live[cmd.index % live.length]!
        const d = controls.get(id)!
        if (cmd.how === "normal") yield* Deferred.succeed(d, undefined)
        else yield* Deferred.fail(d, "boom")
        // wait until the supervisor has dealt with it (removed or restarted as a new incarnation)
        for (let i = 0; i < 1000; i++) {
          const info = DynamicSupervisor.whichChildrenUnsafe(sup)?.find((c) => c.id === id)
          if (info === undefined) {
            live.splice(live.indexOf(id), 1)
            break
          }
          if (info.child !== "restarting" && controls.get(id) !== d) break
          yield* Effect.yieldNow
        }
      }
    }
    yield* settle
    const snapshot = yield* Observer.snapshot(sup)
    // events come in order: once a last probe's Started is read, everything before it has been
    yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ id: "probe-last", start: Effect.void }))
    for (let i = 0; i < 10_000 && !seen.some((e) => e._tag === "Started" && e.id === "probe-last"); i++) {
      yield* Effect.yieldNow
    }
    yield* Fiber.interrupt(reader)

    // replay the events per child
    const story = new Map<string, { pid: number | undefined; restarts: number; gone: boolean; tags: Array<string> }>()
    for (const e of seen) {
      assert.notStrictEqual(e._tag, "Dropped", "nothing dropped at this capacity")
      if (e._tag === "Dropped" || e.id === undefined) continue
      const s = story.get(e.id) ?? { pid: undefined, restarts: 0, gone: false, tags: [] }
      story.set(e.id, s)
      s.tags.push(e._tag)
      if (e._tag === "Started") s.pid = e.pid
      if (e._tag === "Restarted") {
        assert.strictEqual(e.previousPid, s.pid, `${e.id}: Restarted names the pid that exited`)
        s.pid = e.pid
        s.restarts++
      }
      if (e._tag === "Exited" && e.reason === "crash") assert.include(e.cause, "boom")
    }
    for (const [id, s] of story) {
      // Started, then (Exited Restarted)*, then at most one Exited
      assert.match(s.tags.join(" "), /^Started( Exited Restarted)*( Exited)?$/, id)
      s.gone = s.tags[s.tags.length - 1] === "Exited"
    }
    const inSnapshot = new Map(snapshot.children.filter((c) => !c.id!.startsWith("probe")).map((c) => [c.id!, c]))
    for (const id of [...story.keys()]) if (id.startsWith("probe")) story.delete(id)
    assert.deepStrictEqual(
      [...inSnapshot.keys()].sort(),
      [...story]
        .filter(([, s]) => !s.gone)
        .map(([id]) => id)
        .sort(),
      "the children in the snapshot are those whose story has not ended"
    )
    for (const [id, node] of inSnapshot) {
      const s = story.get(id)!
      assert.strictEqual(node.pid, s.pid, `${id}: pid`)
      assert.strictEqual(node.restarts, s.restarts, `${id}: restarts`)
    }
  })

describe("Observer events against the snapshot", () => {
  const logless = <A, E>(self: Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.provideService(self, Logger.CurrentLoggers, new Set()))

  it("replaying the events gives the snapshot (pids, restart counts, who is gone)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), (commands) => logless(Effect.scoped(run(commands)))),
      { numRuns: 150, timeout: 5_000 }
    )
  })

  it("the same when the scheduler yields every few operations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), fc.integer({ min: 1, max: 64 }), (commands, ops) =>
        logless(Effect.scoped(run(commands)).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)))
      ),
      { numRuns: 150, timeout: 5_000 }
    )
  })
})
