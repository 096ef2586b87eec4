/**
 * TaskSupervisor.asyncStream and async+await, beside Effect's own primitives
 * and p-limit, measured in the same process.
 *
 * - asyncStream over 100k trivial items (`Effect.sync`) and over 100k items
 *   that yield once (`Effect.yieldNow`, so every task really suspends), at
 *   maxConcurrency 2 and 64, against `Effect.forEach({ concurrency })`,
 *   `Stream.mapEffect({ concurrency })` and p-limit (promises).
 * - async + Task.await per task against `Effect.forkChild` + `Fiber.join`.
 */
import { Effect, Fiber, Stream } from "effect"
import pLimit from "p-limit"
import { Task, TaskSupervisor } from "../src/index.ts"
import { median, printTable, timeRuns, type Row } from "./util.ts"

const N = 100_000
const RUNS = 5
const items = Array.from({ length: N }, (_, i) => i)

const perItem = (xs: ReadonlyArray<number>, n: number) => (median(xs) * 1000) / n // µs

const withSup = <A, E>(f: (sup: TaskSupervisor.TaskSupervisor) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(TaskSupervisor.make(), f)))

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
      const ours = perItem(
        await timeRuns(RUNS, () =>
          withSup((sup) =>
            Stream.runCollect(
              TaskSupervisor.asyncStream(sup, items, kind.f, { maxConcurrency: c, timeout: "infinity" })
            )
          )
        ),
        N
      )
      const oursTimed = perItem(
        await timeRuns(RUNS, () =>
          withSup((sup) => Stream.runCollect(TaskSupervisor.asyncStream(sup, items, kind.f, { maxConcurrency: c })))
        ),
        N
      )
      const forEach = perItem(
        await timeRuns(RUNS, () => Effect.runPromise(Effect.forEach(items, kind.f, { concurrency: c }))),
        N
      )
      const mapEffect = perItem(
        await timeRuns(RUNS, () =>
          Effect.runPromise(Stream.runCollect(Stream.mapEffect(Stream.fromIterable(items), kind.f, { concurrency: c })))
        ),
        N
      )
      const plimit = perItem(
        await timeRuns(RUNS, () => {
          const limit = pLimit(c)
          return Promise.all(items.map((i) => limit(() => kind.p(i))))
        }),
        N
      )
      const name = `asyncStream ${kind.label}, maxConcurrency ${c}`
      rows.push({ name, ours, baseline: forEach, baselineName: "Effect.forEach", unit: "µs/item", target: "≤ 2x" })
      rows.push({
        name: `${name}, 5 s timeout armed`,
        ours: oursTimed,
        baseline: forEach,
        baselineName: "Effect.forEach",
        unit: "µs/item",
        target: "≤ 2x"
      })
      rows.push({ name, ours, baseline: mapEffect, baselineName: "Stream.mapEffect", unit: "µs/item" })
      rows.push({ name, ours, baseline: plimit, baselineName: "p-limit", unit: "µs/item", target: "< 1x" })
    }
  }
  printTable("asyncStream, 100k items (median of 5 runs)", rows)

  const M = 50_000
  const asyncRows: Array<Row> = []
  for (const kind of kinds) {
    const ours = perItem(
      await timeRuns(RUNS, () =>
        withSup((sup) =>
          Effect.gen(function* () {
            for (let i = 0; i < M; i++) {
              const task = yield* TaskSupervisor.async(sup, kind.f(i))
              yield* Task.await(task)
            }
          })
        )
      ),
      M
    )
    const fork = perItem(
      await timeRuns(RUNS, () =>
        Effect.runPromise(
          Effect.gen(function* () {
            for (let i = 0; i < M; i++) {
              const fiber = yield* Effect.forkChild(kind.f(i))
              yield* Fiber.join(fiber)
            }
          })
        )
      ),
      M
    )
    asyncRows.push({
      name: `async + Task.await, ${kind.label} task`,
      ours,
      baseline: fork,
      baselineName: "forkChild + Fiber.join",
      unit: "µs/task",
      target: "close to 1x"
    })
  }
  printTable("async + await, 50k tasks one after another (median of 5 runs)", asyncRows)
}
