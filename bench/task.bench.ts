/**
 * TaskSupervisor.asyncStream and async+await, beside Effect's own primitives
 * and p-limit, measured in the same process.
 *
 * - asyncStream over 100k trivial items (`Effect.sync`) and over 100k items
 *   that yield once (`Effect.yieldNow`, so every task really suspends), at
 *   maxConcurrency 2 and 64, against `Effect.forEach({ concurrency })`,
 *   `Stream.mapEffect({ concurrency })` and p-limit (promises).
 * - async + Task.await per task against `Effect.forkChild` + `Fiber.join`,
 *   and against a task made the heavy way, as a `DynamicSupervisor` child
 *   (`startChild(ChildSpec.task(...))` + a Deferred for the result) — the
 *   figure behind TaskSupervisor's light children.
 */
import { Deferred, Effect, Fiber, Stream } from "effect"
import pLimit from "p-limit"
import { ChildSpec, DynamicSupervisor, Task, TaskSupervisor } from "../src/index.ts"
import { performance } from "node:perf_hooks"
import { gc, median, printTable, type Row } from "./util.ts"

const N = 100_000
const RUNS = 5
const items = Array.from({ length: N }, (_, i) => i)

const withSup = <A, E>(f: (sup: TaskSupervisor.TaskSupervisor) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(TaskSupervisor.make(), f)))

/**
 * Runs every variant once per round, `rounds` times (after one warm-up round),
 * each after a full GC, so that load from other processes falls on all of
 * them alike; returns each variant's median in µs per item.
 */
const interleaved = async (
  rounds: number,
  n: number,
  variants: Record<string, () => Promise<unknown>>
): Promise<Record<string, number>> => {
  const times: Record<string, Array<number>> = {}
  for (const name of Object.keys(variants)) times[name] = []
  for (let r = -1; r < rounds; r++) {
    for (const [name, run] of Object.entries(variants)) {
      gc() // no variant pays for the garbage of the one before
      const t0 = performance.now()
      await run()
      if (r >= 0) times[name]!.push(performance.now() - t0)
    }
  }
  const out: Record<string, number> = {}
  for (const [name, xs] of Object.entries(times)) out[name] = (median(xs) * 1000) / n
  return out
}

export default async (): Promise<void> => {
  const rows: Array<Row> = []
  const kinds = [
    { label: "trivial", f: (i: number) => Effect.sync(() => i + 1), p: async (i: number) => i + 1 },
    {
      label: "yielding",
      f: (i: number) => Effect.as(Effect.yieldNow, i + 1),
      p: async (i: number) => {
        await null
        return i + 1
      }
    }
  ]
  for (const kind of kinds) {
    for (const c of [2, 64]) {
      const m = await interleaved(RUNS, N, {
        ours: () =>
          withSup((sup) =>
            Stream.runCollect(
              TaskSupervisor.asyncStream(sup, items, kind.f, { maxConcurrency: c, timeout: "infinity" })
            )
          ),
        oursTimed: () =>
          withSup((sup) => Stream.runCollect(TaskSupervisor.asyncStream(sup, items, kind.f, { maxConcurrency: c }))),
        forEach: () => Effect.runPromise(Effect.forEach(items, kind.f, { concurrency: c })),
        mapEffect: () =>
          Effect.runPromise(
            Stream.runCollect(Stream.mapEffect(Stream.fromIterable(items), kind.f, { concurrency: c }))
          ),
        plimit: () => {
          const limit = pLimit(c)
          return Promise.all(items.map((i) => limit(() => kind.p(i))))
        }
      })
      const name = `asyncStream ${kind.label}, maxConcurrency ${c}`
      const unit = "µs/item"
      rows.push({ name, ours: m.ours!, baseline: m.forEach!, baselineName: "Effect.forEach", unit, target: "≤ 2x" })
      rows.push({
        name: `${name}, 5 s timeout armed`,
        ours: m.oursTimed!,
        baseline: m.forEach!,
        baselineName: "Effect.forEach",
        unit,
        target: "≤ 2x"
      })
      rows.push({ name, ours: m.ours!, baseline: m.mapEffect!, baselineName: "Stream.mapEffect", unit })
      rows.push({ name, ours: m.ours!, baseline: m.plimit!, baselineName: "p-limit", unit, target: "< 1x" })
    }
  }
  printTable(`asyncStream, ${N / 1000}k items (medians of ${RUNS} interleaved runs)`, rows)

  const M = 50_000
  const asyncRows: Array<Row> = []
  for (const kind of kinds) {
    const m = await interleaved(RUNS, M, {
      ours: () =>
        withSup((sup) =>
          Effect.gen(function* () {
            for (let i = 0; i < M; i++) {
              const task = yield* TaskSupervisor.async(sup, kind.f(i))
              yield* Task.await(task)
            }
          })
        ),
      viaStartChild: () =>
        withSup((sup) =>
          Effect.gen(function* () {
            for (let i = 0; i < M; i++) {
              const done = yield* Deferred.make<number>()
              yield* DynamicSupervisor.startChild(
                sup.supervisor,
                ChildSpec.task(Effect.flatMap(kind.f(i), (v) => Deferred.succeed(done, v)))
              )
              yield* Deferred.await(done)
            }
          })
        ),
      fork: () =>
        Effect.runPromise(
          Effect.gen(function* () {
            for (let i = 0; i < M; i++) {
              const fiber = yield* Effect.forkChild(kind.f(i))
              yield* Fiber.join(fiber)
            }
          })
        )
    })
    asyncRows.push({
      name: `async + Task.await (5 s timeout), ${kind.label} task`,
      ours: m.ours!,
      baseline: m.fork!,
      baselineName: "forkChild + Fiber.join",
      unit: "µs/task",
      target: "close to 1x"
    })
    asyncRows.push({
      name: `async + Task.await (light child), ${kind.label} task`,
      ours: m.ours!,
      baseline: m.viaStartChild!,
      baselineName: "DynamicSupervisor.startChild(ChildSpec.task) + Deferred",
      unit: "µs/task"
    })
  }
  printTable(`async + await, ${M / 1000}k tasks one after another (medians of ${RUNS} interleaved runs)`, asyncRows)
}
