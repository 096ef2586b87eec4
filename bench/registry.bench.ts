/**
 * Registry: lookup and register+unregister of 100k keys beside `Map.get` /
 * `Map.set`+`Map.delete` in the same run, and a via-named `startChild` beside
 * an unnamed one. Targets (issue 3): lookup ≤ 3× Map.get; via-named
 * startChild ≤ 1.5× unnamed.
 */
import { Effect, Exit, Scope } from "effect"
import { ChildSpec, DynamicSupervisor, Registry } from "../src/index.ts"
import { performance } from "node:perf_hooks"
import { gc, median, printTable, timeRuns } from "./util.ts"

const N = 100_000
const RUNS = 9
const CHILDREN = 10_000

const stringKeys = Array.from({ length: N }, (_, i) => `user:${i}`)
const tupleKeys = Array.from({ length: N }, (_, i) => ["user", i] as const)
/** Fresh tuple objects for lookups, as a caller building `["user", id]` each time would have. */
const tupleProbes = Array.from({ length: N }, (_, i) => ["user", i] as const)

const nsPerOp = (ms: number, ops: number) => (ms * 1e6) / ops

let sink = 0

export default async () => {
  // ---- lookup ---------------------------------------------------------------
  const map = new Map<string, number>()
  for (let i = 0; i < N; i++) map.set(stringKeys[i]!, i)

  const owner = Scope.makeUnsafe()
  const strings = Effect.runSync(Scope.provide(Registry.make<string, number>({ keys: "unique" }), owner))
  const tuples = Effect.runSync(
    Scope.provide(Registry.make<readonly [string, number], number>({ keys: "unique" }), owner)
  )
  const topics = Effect.runSync(Scope.provide(Registry.make<string, number>({ keys: "duplicate" }), owner))
  Effect.runSync(
    Scope.provide(
      Effect.gen(function* () {
        for (let i = 0; i < N; i++) {
          yield* Registry.register(strings, stringKeys[i]!, i)
          yield* Registry.register(tuples, tupleKeys[i]!, i)
          yield* Registry.register(topics, stringKeys[i]!, i)
        }
      }),
      owner
    )
  )

  const mapGet = median(
    await timeRuns(RUNS, () => {
      for (let i = 0; i < N; i++) sink += map.get(stringKeys[i]!)!
    })
  )
  const lookupString = median(
    await timeRuns(RUNS, () => {
      for (let i = 0; i < N; i++) sink += Registry.lookupUnsafe(strings, stringKeys[i]!)[0]!.value
    })
  )
  const whereisString = median(
    await timeRuns(RUNS, () => {
      for (let i = 0; i < N; i++) sink += Registry.whereisUnsafe(strings, stringKeys[i]!)!
    })
  )
  const lookupDuplicate = median(
    await timeRuns(RUNS, () => {
      for (let i = 0; i < N; i++) sink += Registry.lookupUnsafe(topics, stringKeys[i]!)[0]!.value
    })
  )
  const lookupTuple = median(
    await timeRuns(RUNS, () => {
      for (let i = 0; i < N; i++) sink += Registry.lookupUnsafe(tuples, tupleProbes[i]!)[0]!.value
    })
  )
  // the Effect-wrapped read, run inside one fiber, beside Map.get run the same way
  const mapGetEffect = median(
    await timeRuns(RUNS, () =>
      Effect.runSync(
        Effect.gen(function* () {
          for (let i = 0; i < N; i++) sink += yield* Effect.sync(() => map.get(stringKeys[i]!)!)
        })
      )
    )
  )
  const lookupEffect = median(
    await timeRuns(RUNS, () =>
      Effect.runSync(
        Effect.gen(function* () {
          for (let i = 0; i < N; i++) sink += (yield* Registry.lookup(strings, stringKeys[i]!))[0]!.value
        })
      )
    )
  )
  Effect.runSync(Scope.close(owner, Exit.void))

  printTable(`Registry lookup, ${N / 1000}k keys (ns per lookup)`, [
    {
      name: "lookupUnsafe, string keys",
      ours: nsPerOp(lookupString, N),
      baseline: nsPerOp(mapGet, N),
      baselineName: "Map.get",
      unit: "ns",
      target: "≤ 3x"
    },
    {
      name: "whereisUnsafe, string keys",
      ours: nsPerOp(whereisString, N),
      baseline: nsPerOp(mapGet, N),
      baselineName: "Map.get",
      unit: "ns",
      target: "≤ 3x"
    },
    {
      name: "lookupUnsafe, duplicate registry",
      ours: nsPerOp(lookupDuplicate, N),
      baseline: nsPerOp(mapGet, N),
      baselineName: "Map.get",
      unit: "ns"
    },
    {
      name: "lookupUnsafe, tuple keys (structural)",
      ours: nsPerOp(lookupTuple, N),
      baseline: nsPerOp(mapGet, N),
      baselineName: "Map.get (string)",
      unit: "ns"
    },
    {
      name: "lookup (Effect), string keys",
      ours: nsPerOp(lookupEffect, N),
      baseline: nsPerOp(mapGetEffect, N),
      baselineName: "Effect.sync(Map.get)",
      unit: "ns"
    }
  ])

  // ---- register + unregister --------------------------------------------------
  const mapSetDelete = median(
    await timeRuns(RUNS, () => {
      const m = new Map<string, number>()
      for (let i = 0; i < N; i++) m.set(stringKeys[i]!, i)
      for (let i = 0; i < N; i++) m.delete(stringKeys[i]!)
    })
  )
  const registerUnregister = median(
    await timeRuns(RUNS, () =>
      Effect.runSync(
        Effect.gen(function* () {
          const registry = yield* Registry.make<string, number>({ keys: "unique" })
          for (let i = 0; i < N; i++) yield* Registry.register(registry, stringKeys[i]!, i)
          for (let i = 0; i < N; i++) yield* Registry.unregister(registry, stringKeys[i]!)
        }).pipe(Effect.scoped)
      )
    )
  )
  const registerClose = median(
    await timeRuns(RUNS, () =>
      Effect.runSync(
        Effect.gen(function* () {
          const registry = yield* Registry.make<string, number>({ keys: "unique" })
          yield* Effect.scoped(
            Effect.gen(function* () {
              for (let i = 0; i < N; i++) yield* Registry.register(registry, stringKeys[i]!, i)
            })
          )
        }).pipe(Effect.scoped)
      )
    )
  )
  const registerTuples = median(
    await timeRuns(RUNS, () =>
      Effect.runSync(
        Effect.gen(function* () {
          const registry = yield* Registry.make<readonly [string, number], number>({ keys: "unique" })
          for (let i = 0; i < N; i++) yield* Registry.register(registry, tupleKeys[i]!, i)
          for (let i = 0; i < N; i++) yield* Registry.unregister(registry, tupleKeys[i]!)
        }).pipe(Effect.scoped)
      )
    )
  )
  printTable(`Registry register + unregister, ${N / 1000}k keys (ns per key)`, [
    {
      name: "register + unregister, string keys",
      ours: nsPerOp(registerUnregister, N),
      baseline: nsPerOp(mapSetDelete, N),
      baselineName: "Map.set + Map.delete",
      unit: "ns"
    },
    {
      name: "register + owner Scope closes, string keys",
      ours: nsPerOp(registerClose, N),
      baseline: nsPerOp(mapSetDelete, N),
      baselineName: "Map.set + Map.delete",
      unit: "ns"
    },
    {
      name: "register + unregister, tuple keys",
      ours: nsPerOp(registerTuples, N),
      baseline: nsPerOp(mapSetDelete, N),
      baselineName: "Map.set + Map.delete",
      unit: "ns"
    }
  ])

  // ---- via-named startChild ---------------------------------------------------
  const spec = ChildSpec.make({ start: Effect.succeed("handle") })
  /** Starts CHILDREN children (named or not) and returns the ms the startChild calls took and the ms of the shutdown. */
  const startMany = (named: boolean) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const names = yield* Scope.provide(Registry.make<number, string>({ keys: "unique" }), scope)
        const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
        const t0 = performance.now()
        for (let i = 0; i < CHILDREN; i++) {
          yield* DynamicSupervisor.startChild(sup, named ? Registry.via(names, i, spec) : spec)
        }
        const t1 = performance.now()
        yield* Scope.close(scope, Exit.void)
        return [t1 - t0, performance.now() - t1] as const
      })
    )
  // interleaved, after a full GC each, so drift and collection affect both alike
  const unnamed: Array<readonly [number, number]> = []
  const viaNamed: Array<readonly [number, number]> = []
  await startMany(false)
  await startMany(true)
  for (let r = 0; r < 15; r++) {
    gc()
    unnamed.push(await startMany(false))
    gc()
    viaNamed.push(await startMany(true))
  }
  const perChild = (xs: ReadonlyArray<number>) => (median(xs) * 1000) / CHILDREN
  printTable(`${CHILDREN / 1000}k children (µs per child)`, [
    {
      name: "startChild with Registry.via name",
      ours: perChild(viaNamed.map((x) => x[0])),
      baseline: perChild(unnamed.map((x) => x[0])),
      baselineName: "startChild unnamed",
      unit: "µs",
      target: "≤ 1.5x"
    },
    {
      name: "shutdown of the supervisor, named children",
      ours: perChild(viaNamed.map((x) => x[1])),
      baseline: perChild(unnamed.map((x) => x[1])),
      baselineName: "unnamed children",
      unit: "µs"
    }
  ])
  if (sink === -1) console.log(sink)
}
