/**
 * DynamicSupervisor beside bare FiberMap, in the same process (issue 14's figures).
 *
 * At 100k and 1M idle children, with a body (`run: () => Effect.never`) and
 * without (`start: Effect.void` only), against `FiberMap.run(map, key, Effect.never)`:
 *
 * - startChild µs per child, heap bytes per child (after a full GC)
 * - terminateChild µs per child (10k of them) vs `FiberMap.remove`
 * - stopping the supervisor (closing its Scope) vs closing the FiberMap's Scope,
 *   and the longest event-loop gap during that stop (a setImmediate ticker)
 *
 * Subjects take turns within a round (FiberMap, body-less, bodied), medians over
 * rounds. Then a restart storm: 100k permanent children, each waiting on its own
 * Deferred, all failed in one synchronous loop, beside a hand-written refork (an
 * exit observer that forks a fresh fiber): restarts/s, crash → restart p50/p99,
 * longest event-loop gap. Then the restart latency of one child, 1000 crashes.
 *
 * `BENCH_DS_SIZES=100000` limits the sizes (default 100000,1000000);
 * `BENCH_DS_ROUNDS` the rounds at 100k (default 5; 1M runs 3).
 */
import { Deferred, Effect, Exit, FiberMap, Logger, Scope } from "effect"
import { ChildSpec, DynamicSupervisor } from "effect-otp"
import { heapUsed, median, printTable, quantile } from "./util.ts"

const sizes = (process.env["BENCH_DS_SIZES"] ?? "100000,1000000").split(",").map(Number)
const rounds100k = Number(process.env["BENCH_DS_ROUNDS"] ?? 5)

const idle = ChildSpec.make({ start: Effect.void })
const idleWithBody = ChildSpec.make({ start: Effect.void, run: () => Effect.never })

interface Phase {
  start: number
  heap: number
  stopOne: number
  stopAll: number
  /** the longest event-loop gap during the stop, ms */
  gap: number
}

const now = () => performance.now()

/** Runs `stop` while a setImmediate ticker records the longest gap between ticks. */
const stopWithTicker = async (stop: () => Promise<unknown>): Promise<{ time: number; gap: number }> => {
  let last = now()
  let gap = 0
  let running = true
  const tick = () => {
    const t = now()
    gap = Math.max(gap, t - last)
    last = t
    if (running) setImmediate(tick)
  }
  setImmediate(tick)
  const t0 = now()
  last = t0
  await stop()
  const time = now() - t0
  running = false
  gap = Math.max(gap, now() - last)
  return { time, gap }
}

const measureOurs = async (n: number, spec: ChildSpec.ChildSpec<void>): Promise<Phase> => {
  const scope = Effect.runSync(Scope.make())
  const sup = Effect.runSync(Scope.provide(DynamicSupervisor.make(), scope))
  const h0 = heapUsed()
  let t0 = now()
  const children: Array<DynamicSupervisor.Child<void>> = new Array(n)
  await Effect.runPromise(
    Effect.gen(function* () {
      for (let i = 0; i < n; i++) children[i] = yield* DynamicSupervisor.startChild(sup, spec)
    })
  )
  const start = (now() - t0) / n
  const heap = (heapUsed() - h0 - 8 * n) / n // less the bench's own array of Child references
  const k = Math.min(n / 10, 10_000)
  t0 = now()
  await Effect.runPromise(
    Effect.gen(function* () {
      for (let i = 0; i < k; i++) yield* DynamicSupervisor.terminateChild(sup, children[i]!)
    })
  )
  const stopOne = (now() - t0) / k
  children.length = 0
  const { gap, time } = await stopWithTicker(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return { start, heap, stopOne, stopAll: time, gap }
}

const measureFiberMap = async (n: number): Promise<Phase> => {
  const scope = Effect.runSync(Scope.make())
  const map = Effect.runSync(Scope.provide(FiberMap.make<number>(), scope))
  const h0 = heapUsed()
  let t0 = now()
  await Effect.runPromise(
    Effect.gen(function* () {
      for (let i = 0; i < n; i++) yield* FiberMap.run(map, i, Effect.never)
    })
  )
  const start = (now() - t0) / n
  const heap = (heapUsed() - h0) / n
  const k = Math.min(n / 10, 10_000)
  t0 = now()
  await Effect.runPromise(
    Effect.gen(function* () {
      for (let i = 0; i < k; i++) yield* FiberMap.remove(map, i)
    })
  )
  const stopOne = (now() - t0) / k
  const { gap, time } = await stopWithTicker(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return { start, heap, stopOne, stopAll: time, gap }
}

const medianOf = (xs: ReadonlyArray<Phase>): Phase => ({
  start: median(xs.map((x) => x.start)),
  heap: median(xs.map((x) => x.heap)),
  stopOne: median(xs.map((x) => x.stopOne)),
  stopAll: median(xs.map((x) => x.stopAll)),
  gap: median(xs.map((x) => x.gap))
})

/** The three subjects take turns, one run each per round, so drift on a shared machine hits them alike. */
const interleaved = async (n: number, rounds: number): Promise<{ fm: Phase; nobody: Phase; body: Phase }> => {
  const fm: Array<Phase> = []
  const nobody: Array<Phase> = []
  const body: Array<Phase> = []
  if (n <= 100_000) {
    await measureFiberMap(n) // warm-up
    await measureOurs(n, idle)
    await measureOurs(n, idleWithBody)
  }
  for (let i = 0; i < rounds; i++) {
    fm.push(await measureFiberMap(n))
    nobody.push(await measureOurs(n, idle))
    body.push(await measureOurs(n, idleWithBody))
  }
  return { fm: medianOf(fm), nobody: medianOf(nobody), body: medianOf(body) }
}

// ---- restart storm ----------------------------------------------------------------------

interface Storm {
  rate: number
  p50: number
  p99: number
  gap: number
}

/** 100k permanent children, each waiting on its own Deferred, all failed in one loop. */
const stormOurs = async (n: number): Promise<Storm> => {
  const scope = Effect.runSync(Scope.make())
  const sup = Effect.runSync(
    Scope.provide(DynamicSupervisor.make({ maxRestarts: 10 * n, maxSeconds: 3600 }), scope).pipe(
      Effect.provideService(Logger.CurrentLoggers, new Set())
    )
  )
  const gates: Array<Deferred.Deferred<void, string>> = new Array(n)
  const latencies: Array<number> = []
  let crashedAt = 0
  let restarted = 0
  let done: () => void = () => {}
  const all = new Promise<void>((resolve) => (done = resolve))
  let slot = 0
  const spec = ChildSpec.make({
    start: Effect.sync(() => {
      const d = Deferred.makeUnsafe<void, string>()
      if (crashedAt > 0) {
        latencies.push((now() - crashedAt) * 1000)
        if (++restarted === n) done()
      } else gates[slot++] = d
      return d
    }),
    run: (d) => Deferred.await(d)
  })
  await Effect.runPromise(
    Effect.gen(function* () {
      for (let i = 0; i < n; i++) yield* DynamicSupervisor.startChild(sup, spec)
    }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )
  const { gap, time } = await stopWithTicker(async () => {
    crashedAt = now()
    for (let i = 0; i < n; i++) Deferred.doneUnsafe(gates[i]!, Exit.fail("crash"))
    await all
  })
  await Effect.runPromise(Scope.close(scope, Exit.void))
  return { rate: n / (time / 1000), p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), gap }
}

const stormBaseline = async (n: number): Promise<Storm> => {
  const gates: Array<Deferred.Deferred<void, string>> = new Array(n)
  const latencies: Array<number> = []
  let crashedAt = 0
  let restarted = 0
  let done: () => void = () => {}
  const all = new Promise<void>((resolve) => (done = resolve))
  let slot = 0
  const fibers: Array<{ interruptUnsafe: () => void }> = []
  let stopping = false
  const spawn = (): void => {
    const fiber = Effect.runFork(
      Effect.flatMap(
        Effect.sync(() => {
          const d = Deferred.makeUnsafe<void, string>()
          if (crashedAt > 0) {
            latencies.push((now() - crashedAt) * 1000)
            if (++restarted === n) done()
          } else gates[slot++] = d
          return d
        }),
        (d) => Deferred.await(d)
      )
    )
    fibers.push(fiber)
    fiber.addObserver(() => {
      if (!stopping) spawn()
    })
  }
  for (let i = 0; i < n; i++) spawn()
  const { gap, time } = await stopWithTicker(async () => {
    crashedAt = now()
    for (let i = 0; i < n; i++) Deferred.doneUnsafe(gates[i]!, Exit.fail("crash"))
    await all
  })
  stopping = true
  for (const f of fibers) f.interruptUnsafe()
  return { rate: n / (time / 1000), p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), gap }
}

// ---- restart latency of one child ---------------------------------------------------------

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
        let stopped = false
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
          fiber.addObserver(() => {
            if (!stopped) spawn()
          })
        }
        spawn()
        for (let i = 0; i < crashes; i++) {
          started = Deferred.makeUnsafe()
          crashedAt = now()
          Deferred.doneUnsafe(current!, Effect.fail("crash"))
          yield* Deferred.await(started)
        }
        stopped = true
        Deferred.doneUnsafe(current!, Effect.fail("end"))
        return samples
      })
    )
  )

export default async function run() {
  for (const n of sizes) {
    const rounds = n >= 1_000_000 ? 3 : rounds100k
    const { body, fm, nobody } = await interleaved(n, rounds)
    const rows = (label: string, ours: Phase) => [
      {
        name: `startChild per child (${label})`,
        ours: ours.start * 1000,
        baseline: fm.start * 1000,
        baselineName: "FiberMap.run",
        unit: "µs",
        target: label === "body" ? "≤ 1.5x" : ""
      },
      {
        name: `heap per idle child (${label})`,
        ours: ours.heap,
        baseline: fm.heap,
        baselineName: "FiberMap fiber",
        unit: "B",
        target: label === "body" ? "≤ 1 KB" : "≤ 400 B"
      },
      {
        name: `terminateChild per child (${label})`,
        ours: ours.stopOne * 1000,
        baseline: fm.stopOne * 1000,
        baselineName: "FiberMap.remove",
        unit: "µs"
      },
      {
        name: `stop the supervisor (${label})`,
        ours: ours.stopAll,
        baseline: fm.stopAll,
        baselineName: "close FiberMap scope",
        unit: "ms",
        target: "≤ 2x"
      },
      {
        name: `longest event-loop gap during the stop (${label})`,
        ours: ours.gap,
        baseline: fm.gap,
        baselineName: "FiberMap",
        unit: "ms",
        target: "≤ 50 ms"
      }
    ]
    printTable(`DynamicSupervisor, ${n.toLocaleString("en")} idle children (medians of ${rounds} interleaved rounds)`, [
      ...rows("body", body),
      ...rows("no body", nobody)
    ])
  }

  const stormN = 100_000
  const ours: Array<Storm> = []
  const base: Array<Storm> = []
  for (let i = 0; i < 3; i++) {
    base.push(await stormBaseline(stormN))
    ours.push(await stormOurs(stormN))
  }
  const m = (xs: Array<Storm>, k: keyof Storm) => median(xs.map((x) => x[k]))
  printTable(`Restart storm: ${stormN.toLocaleString("en")} children crash in one loop (medians of 3)`, [
    {
      name: "restarts per second",
      ours: m(ours, "rate"),
      baseline: m(base, "rate"),
      baselineName: "hand refork",
      unit: "/s",
      lowerIsBetter: false
    },
    {
      name: "crash → restart p50",
      ours: m(ours, "p50"),
      baseline: m(base, "p50"),
      baselineName: "hand refork",
      unit: "µs"
    },
    {
      name: "crash → restart p99",
      ours: m(ours, "p99"),
      baseline: m(base, "p99"),
      baselineName: "hand refork",
      unit: "µs"
    },
    {
      name: "longest event-loop gap",
      ours: m(ours, "gap"),
      baseline: m(base, "gap"),
      baselineName: "hand refork",
      unit: "ms",
      target: "≤ 50 ms"
    }
  ])

  const crashes = 1000
  const one: Array<number> = []
  const hand: Array<number> = []
  for (let i = 0; i < 5; i++) {
    one.push(...(await restartLatencyOurs(crashes)))
    hand.push(...(await restartLatencyBaseline(crashes)))
  }
  printTable(`Restart latency of one child, crash → new incarnation's start running (${crashes} crashes × 5 runs)`, [
    { name: "p50", ours: quantile(one, 0.5), baseline: quantile(hand, 0.5), baselineName: "hand refork", unit: "µs" },
    {
      name: "p99",
      ours: quantile(one, 0.99),
      baseline: quantile(hand, 0.99),
      baselineName: "hand refork",
      unit: "µs",
      target: "≤ 50 µs"
    }
  ])
}
