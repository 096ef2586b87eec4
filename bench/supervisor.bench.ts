/**
 * Static Supervisor beside the same work on a DynamicSupervisor, in the same
 * process.
 *
 * - a tree of 1,000 supervisors × 100 idle workers (100,000 children): time to
 *   start it all, and time to stop it all (closing the root's Scope); the
 *   baseline is a DynamicSupervisor of 1,000 DynamicSupervisors each given
 *   100 workers with startChild. The static tree stops each supervisor's
 *   children one at a time in reverse order (OTP); the dynamic one stops them
 *   concurrently.
 * - one_for_all restart of 1,000 siblings: one crash, until all 1,000 are
 *   running again (stopped one at a time in reverse order, then started in
 *   order); the baseline is 1,000 children of a DynamicSupervisor crashed at
 *   once and restarted one_for_one (1,000 restarts, no order).
 */
import { Deferred, Effect, Exit, Logger, Scope } from "effect"
import { ChildSpec, DynamicSupervisor, Supervisor } from "effect-otp"
import { median, printTable } from "./util.ts"

const RUNS = 7
const SUPS = 1_000
const WORKERS = 100
const SIBLINGS = 1_000

const now = () => performance.now()
const idle = (id: string) => ChildSpec.make({ id, start: Effect.void })

interface TreePhase {
  readonly start: number
  readonly stop: number
}

const treeOurs = (): Promise<TreePhase> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const workers = Array.from({ length: WORKERS }, (_, i) => idle(`w${i}`))
      const children = Array.from({ length: SUPS }, (_, i) =>
        Supervisor.childSpec(workers, { id: `s${i}`, strategy: "oneForOne" })
      )
      const scope = yield* Scope.make()
      let t0 = now()
      const root = yield* Scope.provide(Supervisor.make(children, { strategy: "oneForOne" }), scope)
      const start = now() - t0
      const c = Supervisor.whichChildrenUnsafe(root)![0]!.child as Supervisor.Child<Supervisor.Supervisor>
      if (Supervisor.countChildrenUnsafe(c.handle)!.active !== WORKERS) throw new Error("tree not started")
      t0 = now()
      yield* Scope.close(scope, Exit.void)
      return { start, stop: now() - t0 }
    })
  )

const treeDynamic = (): Promise<TreePhase> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const worker = ChildSpec.make({ start: Effect.void })
      const scope = yield* Scope.make()
      let t0 = now()
      const root = yield* Scope.provide(DynamicSupervisor.make(), scope)
      for (let i = 0; i < SUPS; i++) {
        const sup = yield* DynamicSupervisor.startChild(root, DynamicSupervisor.childSpec({ id: `s${i}` }))
        for (let j = 0; j < WORKERS; j++) yield* DynamicSupervisor.startChild(sup.handle, worker)
      }
      const start = now() - t0
      t0 = now()
      yield* Scope.close(scope, Exit.void)
      return { start, stop: now() - t0 }
    })
  )

/** A worker whose handle ends its body, counting its starts into `latch` once `target` is reached. */
const crashable = (id: string | undefined, counter: { n: number; target: number; latch: Deferred.Deferred<void> }) =>
  ChildSpec.make({
    id,
    start: Effect.suspend(() => {
      if (++counter.n === counter.target) Deferred.doneUnsafe(counter.latch, Exit.void)
      return Deferred.make<void, string>()
    }),
    run: (d) => Deferred.await(d)
  })

const groupOurs = (): Promise<number> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const counter = { n: 0, target: 2 * SIBLINGS, latch: Deferred.makeUnsafe<void>() }
      const children = Array.from({ length: SIBLINGS }, (_, i) => crashable(`c${i}`, counter))
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(Supervisor.make(children, { strategy: "oneForAll" }), scope)
      const first = Supervisor.whichChildrenUnsafe(sup)!.at(-1)!.child as Supervisor.Child<
        Deferred.Deferred<void, string>
      >
      const t0 = now()
      yield* Deferred.fail(first.handle, "crash")
      yield* Deferred.await(counter.latch)
      const t = now() - t0
      yield* Scope.close(scope, Exit.void)
      return t
    }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )

const groupDynamic = (): Promise<number> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const counter = { n: 0, target: 2 * SIBLINGS, latch: Deferred.makeUnsafe<void>() }
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make({ maxRestarts: 10 * SIBLINGS }), scope)
      const children: Array<DynamicSupervisor.Child<Deferred.Deferred<void, string>>> = []
      for (let i = 0; i < SIBLINGS; i++)
        children.push(yield* DynamicSupervisor.startChild(sup, crashable(`c${i}`, counter)))
      const t0 = now()
      for (const c of children) yield* Deferred.fail(c.handle, "crash")
      yield* Deferred.await(counter.latch)
      const t = now() - t0
      yield* Scope.close(scope, Exit.void)
      return t
    }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set()))
  )

const medianOf = async <A>(f: () => Promise<A>, pick: (a: A) => number, runs = RUNS): Promise<number> => {
  await f() // warm-up
  const xs: Array<number> = []
  for (let i = 0; i < runs; i++) xs.push(pick(await f()))
  return median(xs)
}

export default async (): Promise<void> => {
  const oursTree: Array<TreePhase> = []
  const dynTree: Array<TreePhase> = []
  await treeOurs()
  await treeDynamic()
  for (let i = 0; i < RUNS; i++) {
    oursTree.push(await treeOurs())
    dynTree.push(await treeDynamic())
  }
  const group = await medianOf(groupOurs, (x) => x)
  const groupBaseline = await medianOf(groupDynamic, (x) => x)
  printTable("Supervisor vs DynamicSupervisor", [
    {
      name: `start a tree of ${SUPS} supervisors × ${WORKERS} workers`,
      ours: median(oursTree.map((x) => x.start)),
      baseline: median(dynTree.map((x) => x.start)),
      baselineName: "DynamicSupervisor tree",
      unit: "ms"
    },
    {
      name: `stop that tree (static: sequential per supervisor)`,
      ours: median(oursTree.map((x) => x.stop)),
      baseline: median(dynTree.map((x) => x.stop)),
      baselineName: "DynamicSupervisor tree (concurrent)",
      unit: "ms"
    },
    {
      name: `one_for_all restart of ${SIBLINGS} siblings (one crash → all running again)`,
      ours: group,
      baseline: groupBaseline,
      baselineName: `DynamicSupervisor: ${SIBLINGS} crashes restarted one_for_one`,
      unit: "ms"
    }
  ])
}
