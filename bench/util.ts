/**
 * Shared helpers for the side-by-side benchmarks: every figure is the median of
 * several runs, printed beside a baseline measured in the same process.
 */
import { performance } from "node:perf_hooks"

/** The median of a list of numbers (the mean of the two middle ones for an even count). */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return Number.NaN
  const mid = Math.floor(n / 2)
  return n % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** The q-quantile (0..1) of a list of numbers, nearest rank. */
export const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))
  return s[i]!
}

/** Runs `f` `runs` times (after `warmup` unmeasured runs) and returns each run's milliseconds. */
export const timeRuns = async (
  runs: number,
  f: () => Promise<unknown> | unknown,
  warmup = 1
): Promise<Array<number>> => {
  for (let i = 0; i < warmup; i++) await f()
  const out: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    await f()
    out.push(performance.now() - t0)
  }
  return out
}

/** Forces a full GC when node runs with --expose-gc (bench/run.ts does), so heap figures are stable. */
export const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g) {
    g()
    g()
  }
}

/** Heap used right now, after a full GC. */
export const heapUsed = (): number => {
  gc()
  return process.memoryUsage().heapUsed
}

export interface Row {
  readonly name: string
  readonly ours: number
  readonly baseline: number
  readonly baselineName: string
  readonly unit: string
  /** true when a lower figure is better (times, bytes); false for throughput */
  readonly lowerIsBetter?: boolean
  readonly target?: string
}

const fmt = (x: number): string =>
  !Number.isFinite(x)
    ? String(x)
    : Math.abs(x) >= 100
      ? x.toFixed(0)
      : Math.abs(x) >= 1
        ? x.toFixed(2)
        : x.toPrecision(3)

/** Prints rows as `name | ours | baseline | ratio (ours / baseline) | target`. */
export const printTable = (title: string, rows: ReadonlyArray<Row>): void => {
  console.log(`\n## ${title}\n`)
  console.log("| measure | effect-otp | baseline | ratio (ours/baseline) | target |")
  console.log("| --- | --- | --- | --- | --- |")
  for (const r of rows) {
    const ratio = r.ours / r.baseline
    console.log(
      `| ${r.name} | ${fmt(r.ours)} ${r.unit} | ${r.baselineName}: ${fmt(r.baseline)} ${r.unit} | ${fmt(ratio)}x | ${r.target ?? ""} |`
    )
  }
}
