/**
 * Pool: checkout+checkin throughput with one caller and with 100 callers on a
 * pool of 10, and the p50/p99 time a caller waited for its connection under
 * 100 callers — effect-otp's Pool beside Effect's `Pool`, generic-pool and
 * tarn, all measured in this same process. The borrower's body is empty, so
 * the figures are the pools' own cost (and the runtime's scheduling).
 *
 * Targets (issue 6): one caller at least as fast as generic-pool; 100 callers
 * at least generic-pool's throughput with a p99 wait no worse; at least 3×
 * Effect's `Pool` under 100 callers.
 */
import { Effect, Exit, Pool as EffectPool, Scope } from "effect"
import * as genericPool from "generic-pool"
import { performance } from "node:perf_hooks"
import { Pool as TarnPool } from "tarn"
import { Pool } from "../src/index.ts"
import { gc, median, printTable, quantile } from "./util.ts"

const SIZE = 10
const CALLERS = 100
const OPS = 100_000
const RUNS = 5

interface Result {
  readonly opsPerSec: number
  readonly p50: number
  readonly p99: number
}

/** One library under test: `single` runs OPS sequential cycles, `contended` OPS cycles over CALLERS loops. */
interface Subject {
  readonly name: string
  readonly single: (waits: Float64Array) => Promise<void>
  readonly contended: (waits: Float64Array) => Promise<void>
  /** 100 callers whose body yields to the scheduler once, so callers really queue */
  readonly holding: (waits: Float64Array) => Promise<void>
  readonly close: () => Promise<void>
}

type Workload = "single" | "contended" | "holding"

/**
 * Runs every subject's workload RUNS times, interleaved (subject A, B, C, D,
 * then again), so load from other processes on this shared machine falls on
 * all of them alike; returns the median figures per subject.
 */
const measureAll = async (subjects: ReadonlyArray<Subject>, workload: Workload): Promise<Map<string, Result>> => {
  const samples = new Map<string, { ops: Array<number>; p50: Array<number>; p99: Array<number> }>()
  for (const s of subjects) {
    samples.set(s.name, { ops: [], p50: [], p99: [] })
    await s[workload](new Float64Array(OPS)) // warm-up
  }
  for (let r = 0; r < RUNS; r++) {
    for (const s of subjects) {
      const waits = new Float64Array(OPS)
      gc()
      const t0 = performance.now()
      await s[workload](waits)
      const ms = performance.now() - t0
      const sample = samples.get(s.name)!
      sample.ops.push((OPS / ms) * 1000)
      const sorted = Array.from(waits)
      sample.p50.push(quantile(sorted, 0.5))
      sample.p99.push(quantile(sorted, 0.99))
    }
  }
  const out = new Map<string, Result>()
  for (const [name, x] of samples) out.set(name, { opsPerSec: median(x.ops), p50: median(x.p50), p99: median(x.p99) })
  return out
}

// ---- effect-otp ------------------------------------------------------------------

const effectOtp = (): Subject => {
  const scope = Scope.makeUnsafe()
  const pool = Effect.runSync(
    Scope.provide(Pool.make({ connect: Effect.sync(() => ({})), min: SIZE, max: SIZE }), scope)
  )
  const loop = (waits: Float64Array, from: number, to: number, hold = false) =>
    Effect.gen(function* () {
      for (let i = from; i < to; i++) {
        const t0 = performance.now()
        yield* Pool.withConnection(pool, () => {
          waits[i] = performance.now() - t0
          return hold ? Effect.yieldNow : Effect.void
        })
      }
    })
  return {
    name: "effect-otp Pool",
    single: (waits) => Effect.runPromise(loop(waits, 0, OPS)),
    contended: (waits) => {
      const per = OPS / CALLERS
      return Effect.runPromise(
        Effect.forEach(
          Array.from({ length: CALLERS }, (_, c) => c),
          (c) => loop(waits, c * per, (c + 1) * per),
          { concurrency: "unbounded", discard: true }
        )
      )
    },
    holding: (waits) => {
      const per = OPS / CALLERS
      return Effect.runPromise(
        Effect.forEach(
          Array.from({ length: CALLERS }, (_, c) => c),
          (c) => loop(waits, c * per, (c + 1) * per, true),
          { concurrency: "unbounded", discard: true }
        )
      )
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

// ---- Effect's Pool -----------------------------------------------------------------

const effectPool = (): Subject => {
  const scope = Scope.makeUnsafe()
  const pool = Effect.runSync(Scope.provide(EffectPool.make({ acquire: Effect.sync(() => ({})), size: SIZE }), scope))
  const loop = (waits: Float64Array, from: number, to: number, hold = false) =>
    Effect.gen(function* () {
      for (let i = from; i < to; i++) {
        const t0 = performance.now()
        yield* Effect.scoped(
          Effect.flatMap(EffectPool.get(pool), () => {
            waits[i] = performance.now() - t0
            return hold ? Effect.yieldNow : Effect.void
          })
        )
      }
    })
  return {
    name: "Effect Pool",
    single: (waits) => Effect.runPromise(loop(waits, 0, OPS)),
    contended: (waits) => {
      const per = OPS / CALLERS
      return Effect.runPromise(
        Effect.forEach(
          Array.from({ length: CALLERS }, (_, c) => c),
          (c) => loop(waits, c * per, (c + 1) * per),
          { concurrency: "unbounded", discard: true }
        )
      )
    },
    holding: (waits) => {
      const per = OPS / CALLERS
      return Effect.runPromise(
        Effect.forEach(
          Array.from({ length: CALLERS }, (_, c) => c),
          (c) => loop(waits, c * per, (c + 1) * per, true),
          { concurrency: "unbounded", discard: true }
        )
      )
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

// ---- promise pools ----------------------------------------------------------------------

const promiseSubject = (
  name: string,
  acquire: () => Promise<object>,
  release: (r: object) => void,
  close: () => Promise<void>
): Subject => {
  const loop = async (waits: Float64Array, from: number, to: number, hold = false) => {
    for (let i = from; i < to; i++) {
      const t0 = performance.now()
      const r = await acquire()
      waits[i] = performance.now() - t0
      if (hold) await new Promise(setImmediate)
      release(r)
    }
  }
  return {
    name,
    single: (waits) => loop(waits, 0, OPS),
    contended: async (waits) => {
      const per = OPS / CALLERS
      await Promise.all(Array.from({ length: CALLERS }, (_, c) => loop(waits, c * per, (c + 1) * per)))
    },
    holding: async (waits) => {
      const per = OPS / CALLERS
      await Promise.all(Array.from({ length: CALLERS }, (_, c) => loop(waits, c * per, (c + 1) * per, true)))
    },
    close
  }
}

const generic = (): Subject => {
  const pool = genericPool.createPool({ create: async () => ({}), destroy: async () => {} }, { min: SIZE, max: SIZE })
  return promiseSubject(
    "generic-pool",
    () => pool.acquire(),
    (r) => void pool.release(r),
    async () => {
      await pool.drain()
      await pool.clear()
    }
  )
}

const tarn = (): Subject => {
  const pool = new TarnPool<object>({ create: async () => ({}), destroy: () => {}, min: SIZE, max: SIZE })
  return promiseSubject(
    "tarn",
    () => pool.acquire().promise,
    (r) => void pool.release(r),
    () => pool.destroy().then(() => undefined)
  )
}

export default async () => {
  const subjects = [effectOtp(), effectPool(), generic(), tarn()]
  await new Promise((r) => setTimeout(r, 20)) // let `min` connections open
  const single = await measureAll(subjects, "single")
  const contended = await measureAll(subjects, "contended")
  const holding = await measureAll(subjects, "holding")
  for (const s of subjects) await s.close()
  const results = new Map<string, { single: Result; contended: Result; holding: Result }>()
  for (const s of subjects) {
    const r = { single: single.get(s.name)!, contended: contended.get(s.name)!, holding: holding.get(s.name)! }
    results.set(s.name, r)
    console.log(
      `${s.name}: 1 caller ${r.single.opsPerSec.toFixed(0)} ops/s; ${CALLERS} callers ${r.contended.opsPerSec.toFixed(0)} ops/s, wait p50 ${r.contended.p50.toFixed(4)} ms, p99 ${r.contended.p99.toFixed(4)} ms; body yields once ${r.holding.opsPerSec.toFixed(0)} ops/s, wait p50 ${r.holding.p50.toFixed(4)} ms, p99 ${r.holding.p99.toFixed(4)} ms`
    )
  }
  const ours = results.get("effect-otp Pool")!
  const rows = []
  for (const name of ["generic-pool", "tarn", "Effect Pool"]) {
    const base = results.get(name)!
    const target = (t: string) => (name === "generic-pool" || (name === "Effect Pool" && t === "≥ 3x") ? t : "")
    rows.push(
      {
        name: `1 caller, ops/s`,
        ours: ours.single.opsPerSec,
        baseline: base.single.opsPerSec,
        baselineName: name,
        unit: "ops/s",
        target: name === "generic-pool" ? "≥ 1x" : ""
      },
      {
        name: `${CALLERS} callers on ${SIZE}, ops/s`,
        ours: ours.contended.opsPerSec,
        baseline: base.contended.opsPerSec,
        baselineName: name,
        unit: "ops/s",
        target: name === "Effect Pool" ? target("≥ 3x") : target("≥ 1x")
      },
      {
        name: `${CALLERS} callers, p50 wait`,
        ours: ours.contended.p50,
        baseline: base.contended.p50,
        baselineName: name,
        unit: "ms",
        lowerIsBetter: true
      },
      {
        name: `${CALLERS} callers, p99 wait`,
        ours: ours.contended.p99,
        baseline: base.contended.p99,
        baselineName: name,
        unit: "ms",
        lowerIsBetter: true,
        target: name === "generic-pool" ? "≤ 1x" : ""
      },
      {
        name: `${CALLERS} callers, body yields once, ops/s`,
        ours: ours.holding.opsPerSec,
        baseline: base.holding.opsPerSec,
        baselineName: name,
        unit: "ops/s"
      },
      {
        name: `${CALLERS} callers, body yields once, p99 wait`,
        ours: ours.holding.p99,
        baseline: base.holding.p99,
        baselineName: name,
        unit: "ms",
        lowerIsBetter: true
      }
    )
  }
  printTable(`Pool: checkout+checkin, pool of ${SIZE}, ${OPS} cycles, median of ${RUNS} runs`, rows)
}
