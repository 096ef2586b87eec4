/**
 * DynamicSupervisor beside bare FiberMap, in the same process.
 *
 * - startChild per idle child vs `FiberMap.run(map, key, Effect.never)`
 * - heap bytes per idle child (after a full GC) vs the same FiberMap
 * - terminateChild per child vs `FiberMap.remove`
 * - stopping a supervisor with N children vs closing a FiberMap's Scope
 * - restart latency (crash → new incarnation's start running), 1000 crashes,
 *   vs a hand-rolled restart (an observer that forks a fresh fiber)
 */
import { Deferred, Effect, Exit, FiberMap, Logger, Scope } from "effect"
import { ChildSpec, DynamicSupervisor } from "effect-otp"
import { heapUsed, median, printTable, quantile } from "./util.ts"

const RUNS = 7

const idle = ChildSpec.make({ start: Effect.void })
const idleWithBody = ChildSpec.make({ start: Effect.void, run: () => Effect.never })

interface Phase {
  start: number
  stopOne: number
  stopAll: number
  heap: number
}

const now = () => performance.now()

const measureOurs = (n: number, spec: ChildSpec.ChildSpec<void>): Promise<Phase> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
      const h0 = heapUsed()
      let t0 = now()
      const children: Array<DynamicSupervisor.Child<void>> = new Array(n)
      for (let i = 0; i < n; i++) children[i] = yield* DynamicSupervisor.startChild(sup, spec)
      const start = (now() - t0) / n
      const heap = (heapUsed() - h0) / n
      const k = Math.min(n / 10, 10_000)
      t0 = now()
      for (let i = 0; i < k; i++) yield* DynamicSupervisor.terminateChild(sup, children[i]!)
      const stopOne = (now() - t0) / k
      t0 = now()
      yield* Scope.close(scope, Exit.void)
      const stopAll = now() - t0
      return { start, stopOne, stopAll, heap }
    })
  )

const measureFiberMap = (n: number): Promise<Phase> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const map = yield* Scope.provide(FiberMap.make<number>(), scope)
      const h0 = heapUsed()
      let t0 = now()
      for (let i = 0; i < n; i++) yield* FiberMap.run(map, i, Effect.never)
      const start = (now() - t0) / n
      const heap = (heapUsed() - h0) / n
      const k = Math.min(n / 10, 10_000)
      t0 = now()
      for (let i = 0; i < k; i++) yield* FiberMap.remove(map, i)
      const stopOne = (now() - t0) / k
      t0 = now()
      yield* Scope.close(scope, Exit.void)
      const stopAll = now() - t0
      return { start, stopOne, stopAll, heap }
    })
  )

const medianOf = (xs: ReadonlyArray<Phase>): Phase => ({
  start: median(xs.map((x) => x.start)),
  stopOne: median(xs.map((x) => x.stopOne)),
  stopAll: median(xs.map((x) => x.stopAll)),
  heap: median(xs.map((x) => x.heap))
})

/** The three subjects take turns, one run each per round, so drift on a shared machine hits them alike. */
const interleaved = async (n: number): Promise<{ fm: Phase; ours: Phase; body: Phase }> => {
  const fm: Array<Phase> = []
  const ours: Array<Phase> = []
  const body: Array<Phase> = []
  await measureFiberMap(n) // warm-up
  await measureOurs(n, idle)
  await measureOurs(n, idleWithBody)
  for (let i = 0; i < RUNS; i++) {
    fm.push(await measureFiberMap(n))
    ours.push(await measureOurs(n, idle))
    body.push(await measureOurs(n, idleWithBody))
  }
  return { fm: medianOf(fm), ours: medianOf(ours), body: medianOf(body) }
}

/** crash → the next incarnation's start runs, in µs, over `crashes` crashes of one child */
const restartLatencyOurs = (crashes: number): Promise<Array<number>> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const sup = yield* DynamicSupervisor.make({ maxRestarts: crashes + 10, maxSeconds: 3600 })
        const samples: Array<number> = []
        let crashedAt = 0
        let current: Deferred.Deferred<void, string> | undefined
        let started: Deferred.Deferred<void> = Deferred.makeUnsafe()
        const spec = ChildSpec.make({
          start: Effect.sync(() => {
            if (crashedAt > 0) samples.push((now() - crashedAt) * 1000)
            current = Deferred.makeUnsafe<void, string>()
            Deferred.doneUnsafe(started, Effect.void)
            return current
          }),
          run: (d) => Deferred.await(d)
        })
        yield* DynamicSupervisor.startChild(sup, spec)
        for (let i = 0; i < crashes; i++) {
          started = Deferred.makeUnsafe()
          crashedAt = now()
          Deferred.doneUnsafe(current!, Effect.fail("crash"))
          yield* Deferred.await(started)
        }
        return samples
      })
    ).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )

/** the same crash → refork loop by hand: an observer forks a fresh fiber when one fails */
const restartLatencyBaseline = (crashes: number): Promise<Array<number>> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const samples: Array<number> = []
        let crashedAt = 0
        let current: Deferred.Deferred<void, string> | undefined
        let started: Deferred.Deferred<void> = Deferred.makeUnsafe()
        const context = yield* Effect.context<never>()
        const spawn = (): void => {
          const fiber = Effect.runForkWith(context)(
            Effect.flatMap(
              Effect.sync(() => {
                if (crashedAt > 0) samples.push((now() - crashedAt) * 1000)
                current = Deferred.makeUnsafe<void, string>()
                Deferred.doneUnsafe(started, Effect.void)
                return current
              }),
              (d) => Deferred.await(d)
            )
          )
          fiber.addObserver(() => spawn())
        }
        spawn()
        for (let i = 0; i < crashes; i++) {
          started = Deferred.makeUnsafe()
          crashedAt = now()
          Deferred.doneUnsafe(current!, Effect.fail("crash"))
          yield* Deferred.await(started)
        }
        return samples
      })
    )
  )

export default async function run() {
  for (const n of [10_000, 100_000]) {
    const { body, fm, ours } = await interleaved(n)
    printTable(`DynamicSupervisor, ${n.toLocaleString("en")} idle children (medians of ${RUNS} interleaved runs)`, [
      {
        name: "startChild per child (no body)",
        ours: ours.start * 1000,
        baseline: fm.start * 1000,
        baselineName: "FiberMap.run",
        unit: "µs",
        target: "≤ 1.5x"
      },
      {
        name: "startChild per child (body: Effect.never)",
        ours: body.start * 1000,
        baseline: fm.start * 1000,
        baselineName: "FiberMap.run",
        unit: "µs",
        target: "≤ 1.5x"
      },
      {
        name: "heap per idle child (no body)",
        ours: ours.heap,
        baseline: fm.heap,
        baselineName: "FiberMap fiber",
        unit: "B",
        target: "≤ 1 KB"
      },
      {
        name: "heap per idle child (body: Effect.never)",
        ours: body.heap,
        baseline: fm.heap,
        baselineName: "FiberMap fiber",
        unit: "B",
        target: "≤ 1 KB"
      },
      {
        name: "terminateChild per child",
        ours: ours.stopOne * 1000,
        baseline: fm.stopOne * 1000,
        baselineName: "FiberMap.remove",
        unit: "µs"
      },
      {
        name: "stop the supervisor (all children)",
        ours: ours.stopAll,
        baseline: fm.stopAll,
        baselineName: "close FiberMap scope",
        unit: "ms",
        target: n === 100_000 ? "≤ 500 ms" : ""
      }
    ])
  }
  const crashes = 1000
  const ours: Array<number> = []
  const base: Array<number> = []
  for (let i = 0; i < 5; i++) {
    ours.push(...(await restartLatencyOurs(crashes)))
    base.push(...(await restartLatencyBaseline(crashes)))
  }
  printTable(`Restart latency, crash → new incarnation's start running (${crashes} crashes × 5 runs)`, [
    {
      name: "p50",
      ours: quantile(ours, 0.5),
      baseline: quantile(base, 0.5),
      baselineName: "hand refork",
      unit: "µs",
      target: "≤ 10 µs"
    },
    {
      name: "p99",
      ours: quantile(ours, 0.99),
      baseline: quantile(base, 0.99),
      baselineName: "hand refork",
      unit: "µs",
      target: "≤ 50 µs"
    }
  ])
}
