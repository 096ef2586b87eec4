/**
 * ClusterSupervisor against a model: random sequences of startChild,
 * terminateChild, restartChild, calls and crashes on a few ids, on
 * effect/cluster's TestRunner. Every answer is the one the model predicts
 * (OTP's rules: already started, not found, restart with fresh state, failed
 * after maxRestarts), also when the scheduler yields every few operations.
 */
import { describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Logger, Option, Scheduler } from "effect"
import { type Sharding, TestRunner } from "effect/cluster"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { ClusterSupervisor } from "../../src/Cluster/index.ts"
import { ClusterStore, makeMemory } from "../../src/Cluster/internal/store.ts"
import { makeProbe, sessionServer } from "./fixtures.ts"

type Op = { readonly _tag: "start" | "terminate" | "restart" | "say" | "crash"; readonly id: "a" | "b" | "c" }

const opArb: fc.Arbitrary<Op> = fc.record({
  _tag: fc.constantFrom("start", "terminate", "restart", "say", "crash"),
  id: fc.constantFrom("a", "b", "c")
}) as fc.Arbitrary<Op>

type Model = Map<string, { readonly status: "running" | "failed"; readonly seen: number; readonly crashes: number }>

const MAX_RESTARTS = 1

/** What the model says `op` answers, and the model after it. */
const step = (model: Model, op: Op): string => {
  const child = model.get(op.id)
  switch (op._tag) {
    case "start":
      if (child) return "AlreadyStarted"
      model.set(op.id, { status: "running", seen: 0, crashes: 0 })
      return "ok"
    case "terminate":
      if (!child) return "ChildNotFound"
      model.delete(op.id)
      return "ok"
    case "restart":
      if (!child) return "ChildNotFound"
      model.set(op.id, { status: "running", seen: 0, crashes: 0 })
      return "ok"
    case "say":
      if (!child) return "ChildNotFound"
      if (child.status === "failed") return "RestartIntensityExceeded"
      model.set(op.id, { ...child, seen: child.seen + 1 })
      return `seen ${child.seen + 1}`
    case "crash":
      if (!child) return "ChildNotFound"
      if (child.status === "failed") return "RestartIntensityExceeded"
      if (child.crashes + 1 > MAX_RESTARTS) {
        model.set(op.id, { status: "failed", seen: 0, crashes: child.crashes + 1 })
        return "RestartIntensityExceeded"
      }
      model.set(op.id, { status: "running", seen: 0, crashes: child.crashes + 1 })
      return "ChildCrashed"
  }
}

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

const run = (ops: ReadonlyArray<Op>) => {
  const sup = ClusterSupervisor.make("test/Model", {
    server: sessionServer(makeProbe()),
    maxRestarts: MAX_RESTARTS,
    maxSeconds: 3600
  })
  const layer = ClusterSupervisor.layer(sup).pipe(
    Layer.provideMerge(Layer.merge(TestRunner.layer, Layer.succeed(ClusterStore)(makeMemory())))
  )
  return Effect.gen(function* () {
    const model: Model = new Map()
    const client = yield* ClusterSupervisor.client(sup)
    for (const op of ops) {
      const expected = step(model, op)
      const effect: Effect.Effect<unknown, unknown, Sharding.Sharding | ClusterStore> =
        op._tag === "start"
          ? ClusterSupervisor.startChild(sup, op.id)
          : op._tag === "terminate"
            ? ClusterSupervisor.terminateChild(sup, op.id)
            : op._tag === "restart"
              ? ClusterSupervisor.restartChild(sup, op.id)
              : op._tag === "say"
                ? Effect.map(client(op.id).Say({ text: "x" }), (r) => `seen ${r.seen}`)
                : client(op.id).Crash()
      const exit = yield* drive(Effect.exit(effect))
      const actual = Exit.isSuccess(exit)
        ? typeof exit.value === "string"
          ? exit.value
          : "ok"
        : ((Option.getOrUndefined(Exit.findErrorOption(exit)) as { _tag?: string } | undefined)?._tag ?? "defect")
      if (actual !== expected) {
        return yield* Effect.die(`${op._tag} ${op.id}: expected ${expected}, got ${actual}`)
      }
    }
    // whichChildren agrees with the model at the end
    const listed = yield* ClusterSupervisor.whichChildren(sup)
    const fromModel = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, c]) => `${id}:${c.status}`)
    const fromSup = listed.map((c) => `${c.id}:${c.status}`)
    if (fromModel.join() !== fromSup.join()) return yield* Effect.die(`whichChildren ${fromSup} vs model ${fromModel}`)
  }).pipe(
    Effect.provide(layer),
    Effect.provide(TestClock.layer()),
    Effect.provideService(Logger.CurrentLoggers, new Set())
  )
}

describe("ClusterSupervisor against a model", () => {
  it("every operation answers what OTP's rules predict", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => Effect.runPromise(run(ops))),
      { numRuns: 40, timeout: 20_000 }
    )
  }, 120_000)

  it("the same when the scheduler yields every few operations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.integer({ min: 3, max: 64 }), (ops, n) =>
        Effect.runPromise(run(ops).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, n)))
      ),
      { numRuns: 25, timeout: 20_000 }
    )
  }, 120_000)
})
