/**
 * Model-based property test of Server: random calls (handlers that reply at
 * once or after sleeping), casts, crashes, stops (each followed by a restart:
 * the server is permanent under a DynamicSupervisor, called by registry name),
 * caller interruptions and clock ticks (calls time out after 100 ms).
 *
 * Every call must end — with a reply, ServerDown, NoServer or CallTimeout (or
 * its interruption, when the test interrupted it) — and:
 * - a reply is the state the handler computed for that very call;
 * - no request is handled twice, and none that got NoServer, or was withdrawn
 *   before it started, is handled at all;
 * - a call answered ServerDown never completed its handler;
 * - within an incarnation requests complete in the order they were sent;
 * - after the supervisor closes, everything every incarnation acquired is released.
 *
 * Each sequence runs with Effect's default scheduler and with the scheduler
 * forced to yield every few operations.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Logger, Scheduler, Schema, Scope } from "effect"
import { Rpc } from "effect/rpc"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { DynamicSupervisor, Registry, Server } from "effect-otp"

type Command =
  | { readonly _tag: "call"; readonly n: number; readonly slow: boolean }
  | { readonly _tag: "cast"; readonly n: number }
  | { readonly _tag: "crash" }
  | { readonly _tag: "stop" }
  | { readonly _tag: "interrupt"; readonly index: number }
  | { readonly _tag: "tick"; readonly millis: number }
  | { readonly _tag: "yield" }

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ _tag: fc.constant("call" as const), n: fc.integer({ min: 1, max: 9 }), slow: fc.boolean() })
  },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("cast" as const), n: fc.integer({ min: 1, max: 9 }) }) },
  { weight: 1, arbitrary: fc.constant({ _tag: "crash" as const }) },
  { weight: 1, arbitrary: fc.constant({ _tag: "stop" as const }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("interrupt" as const), index: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("tick" as const), millis: fc.constantFrom(1, 30, 60, 120) }) },
  { weight: 3, arbitrary: fc.constant({ _tag: "yield" as const }) }
)

const Add = Rpc.make("Add", {
  payload: { id: Schema.Number, n: Schema.Number, slow: Schema.Boolean },
  success: Schema.Number
})
const Crash = Rpc.make("Crash")

interface Done {
  readonly id: number
  readonly incarnation: number
  readonly total: number
}

interface World {
  incarnations: number
  live: number
  readonly started: Set<number>
  readonly done: Array<Done>
}

const counterOf = (world: World) =>
  Server.make("Model", [Add, Crash], {
    init: () =>
      Effect.gen(function* () {
        const incarnation = ++world.incarnations
        yield* Effect.acquireRelease(
          Effect.sync(() => world.live++),
          () => Effect.sync(() => world.live--)
        )
        let total = 0
        return {
          Add: ({ id, n, slow }) => {
            // recorded when the server takes the request (its handler's fiber may yield before its first step)
            world.started.add(id)
            return Effect.gen(function* () {
              if (slow) yield* Effect.sleep("50 millis")
              total += n
              world.done.push({ id, incarnation, total })
              return total
            })
          },
          Crash: () => Effect.die("crash")
        }
      })
  })

const run = (commands: ReadonlyArray<Command>) =>
  Effect.gen(function* () {
    const world: World = { incarnations: 0, live: 0, started: new Set(), done: [] }
    const scope = yield* Scope.make()
    const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof counterOf>>>({ keys: "unique" }).pipe(
      Scope.provide(scope)
    )
    const sup = yield* DynamicSupervisor.make({ maxRestarts: 1_000_000 }).pipe(Scope.provide(scope))
    yield* DynamicSupervisor.startChild(sup, Registry.via(names, "model", Server.childSpec(counterOf(world))))
    const server = Server.via(names, "model")

    const calls: Array<{
      readonly id: number
      readonly fiber: Fiber.Fiber<number, unknown>
      interrupted: boolean
      /** interrupted before its handler started: it must never run */
      withdrawn: boolean
    }> = []
    const others: Array<Fiber.Fiber<unknown, unknown>> = []
    let nextId = 0
    for (const c of commands) {
      switch (c._tag) {
        case "call": {
          const id = ++nextId
          const fiber = yield* Effect.forkChild(
            Server.call(server, "Add", { id, n: c.n, slow: c.slow }, { timeout: "100 millis" }),
            { startImmediately: true }
          )
          calls.push({ id, fiber, interrupted: false, withdrawn: false })
          break
        }
        case "cast": {
          const id = ++nextId
          yield* Server.cast(server, "Add", { id, n: c.n, slow: false })
          break
        }
        case "crash":
          others.push(yield* Effect.forkChild(Effect.exit(Server.call(server, "Crash")), { startImmediately: true }))
          break
        case "stop":
          others.push(yield* Effect.forkChild(Effect.exit(Server.stop(server)), { startImmediately: true }))
          break
        case "interrupt": {
          const call = calls[c.index % Math.max(1, calls.length)]
          if (call !== undefined && call.fiber.pollUnsafe() === undefined) {
            call.interrupted = true
            // checked and interrupted in one step (Fiber.interrupt may yield before it interrupts,
            // and the server may rightly start the request meanwhile)
            yield* Effect.sync(() => {
              call.withdrawn = !world.started.has(call.id)
              call.fiber.interruptUnsafe()
            })
            yield* Fiber.await(call.fiber)
          }
          break
        }
        case "tick":
          yield* TestClock.adjust(`${c.millis} millis`)
          break
        case "yield":
          yield* Effect.yieldNow
          break
      }
    }
    // let everything finish: every call ends by its timeout at the latest
    for (let i = 0; i < 20; i++) yield* TestClock.adjust("100 millis")
    for (const f of others) yield* Fiber.await(f)

    const handled = new Map<number, Done>()
    for (const d of world.done) {
      assert.isFalse(handled.has(d.id), `request ${d.id} handled twice`)
      handled.set(d.id, d)
    }
    const lastDone = new Map<number, number>()
    for (const d of world.done) {
      assert.isTrue((lastDone.get(d.incarnation) ?? 0) < d.id, `request ${d.id} completed out of order`)
      lastDone.set(d.incarnation, d.id)
    }
    for (const call of calls) {
      const exit = call.fiber.pollUnsafe()
      assert.isDefined(exit, `call ${call.id} never ended`)
      if (exit === undefined) continue
      if (Exit.isSuccess(exit)) {
        assert.strictEqual(exit.value, handled.get(call.id)?.total, `call ${call.id}: the reply is its handler's`)
        continue
      }
      if (Cause.hasInterruptsOnly(exit.cause)) {
        assert.isTrue(call.interrupted, `call ${call.id} interrupted by nobody`)
        if (call.withdrawn) assert.isFalse(world.started.has(call.id), `call ${call.id} ran after it was withdrawn`)
        continue
      }
      const error = Cause.squash(exit.cause) as { readonly _tag?: string }
      assert.include(["ServerDown", "NoServer", "CallTimeout"], error._tag, `call ${call.id}: ${String(error)}`)
      if (error._tag === "NoServer") assert.isFalse(world.started.has(call.id), `call ${call.id}: NoServer but handled`)
      if (error._tag === "ServerDown")
        assert.isFalse(handled.has(call.id), `call ${call.id}: ServerDown after its handler completed`)
      if (error._tag === "CallTimeout" && !world.started.has(call.id)) assert.isFalse(handled.has(call.id))
    }
    yield* Scope.close(scope, Exit.void)
    assert.strictEqual(world.live, 0, "every incarnation released what it acquired")
  })

describe("Server model", () => {
  // crash reports are expected here; keep them out of the test output
  const logless = <A, E>(self: Effect.Effect<A, E>) =>
    Effect.runPromise(
      self.pipe(Effect.provide(TestClock.layer()), Effect.provideService(Logger.CurrentLoggers, new Set()))
    )

  it("random calls, casts, crashes, stops, interruptions and ticks: every call ends once, with a reply, ServerDown, NoServer or CallTimeout", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), (commands) => logless(run(commands))),
      { numRuns: 200, timeout: 10_000 }
    )
  })

  it("the same holds when the scheduler yields every few operations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), fc.integer({ min: 2, max: 64 }), (commands, ops) =>
        logless(run(commands).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)))
      ),
      { numRuns: 200, timeout: 10_000 }
    )
  })
})
