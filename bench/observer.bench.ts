/**
 * The cost of observing, in the same process:
 *
 * - startChild per child into a DynamicSupervisor with an Observer event
 *   reader attached (`Observer.events` drained by a fiber, as it comes and
 *   with the page's 50 ms batch window) vs with none;
 * - restart (crash → the next incarnation's start runs) with a reader vs none;
 * - `Observer.snapshot` of a DynamicSupervisor of 100k children vs
 *   `DynamicSupervisor.whichChildrenUnsafe` on the same tree (the cheapest
 *   full listing there was before), and what the page's transport adds to a
 *   snapshot (figures + pruning to 200 children per node + JSON).
 *
 * Subjects take turns, one run each per round; figures are medians of the
 * process's CPU time (see `now`).
 */
import { Deferred, Effect, Exit, Fiber, Logger, Scope, Stream } from "effect"
import { ChildSpec, DynamicSupervisor, Observer } from "effect-otp"
import * as Inspect from "../src/internal/inspect.ts"
import * as Http from "../src/Observer/internal/http.ts"
import { median, printTable } from "./util.ts"

const RUNS = 7
/**
 * Milliseconds of this process's CPU time (user + system, all its threads, so GC counts). The machine
 * these figures come from is shared (load averages of 10+ on 2 cores): wall time there is mostly waiting
 * for a core, CPU time is what the work costs.
 */
const now = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const quiet = Effect.provideService(Logger.CurrentLoggers, new Set())

const idle = ChildSpec.make({ start: Effect.void })

/**
 * `listener`: a no-op listener subscribed through the inspection protocol itself (what the
 * supervisor pays to build and emit its events, whoever reads them); `events`: an Observer
 * event reader drained by a fiber as events come; `batched`: the same with the page's 50 ms window.
 */
type Reader = "none" | "listener" | "events" | "batched"

/** Attaches a reader that drains every event (or none), runs `body`, detaches. */
const withReader = <A, E>(
  sup: DynamicSupervisor.DynamicSupervisor,
  reader: Reader,
  body: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.gen(function* () {
    let seen = 0
    const unsubscribe =
      reader === "listener"
        ? (sup as unknown as Inspect.Inspectable)[Inspect.TypeId].subscribe(() => void seen++)
        : undefined
    const fiber =
      reader === "events" || reader === "batched"
        ? yield* Observer.events(sup, { capacity: 1024, batch: reader === "batched" ? "50 millis" : 0 }).pipe(
            Stream.runForEach(() => Effect.sync(() => void seen++)),
            Effect.forkChild({ startImmediately: true })
          )
        : undefined
    const a = yield* body
    if (fiber) yield* Fiber.interrupt(fiber)
    unsubscribe?.()
    return a
  })

/** µs per startChild of `n` body-less children. */
const starts = (n: number, reader: Reader): Promise<number> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make({ name: "bench" }), scope)
      const us = yield* withReader(
        sup,
        reader,
        Effect.gen(function* () {
          const t0 = now()
          for (let i = 0; i < n; i++) yield* DynamicSupervisor.startChild(sup, idle)
          return ((now() - t0) * 1000) / n
        })
      )
      yield* Scope.close(scope, Exit.void)
      return us
    }).pipe(quiet)
  )

/** µs per restart (crash → next start runs), `crashes` crashes of one child. */
const restarts = (crashes: number, reader: Reader): Promise<number> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const sup = yield* DynamicSupervisor.make({ name: "bench", maxRestarts: crashes + 10, maxSeconds: 3600 })
        let current: Deferred.Deferred<void, string> | undefined
        let started: Deferred.Deferred<void> = Deferred.makeUnsafe()
        const spec = ChildSpec.make({
          start: Effect.sync(() => {
            current = Deferred.makeUnsafe<void, string>()
            Deferred.doneUnsafe(started, Effect.void)
            return current
          }),
          run: (d: Deferred.Deferred<void, string>) => Deferred.await(d)
        })
        yield* DynamicSupervisor.startChild(sup, spec)
        return yield* withReader(
          sup,
          reader,
          Effect.gen(function* () {
            const t0 = now()
            for (let i = 0; i < crashes; i++) {
              started = Deferred.makeUnsafe()
              Deferred.doneUnsafe(current!, Effect.fail("crash"))
              yield* Deferred.await(started)
            }
            return ((now() - t0) * 1000) / crashes
          })
        )
      })
    ).pipe(quiet)
  )

interface Snap {
  snapshot: number
  which: number
  page: number
  bytes: number
}

/** ms for one snapshot of `n` children vs whichChildrenUnsafe, and the page's per-tick work. */
const snapshots = (n: number, rounds: number): Promise<Snap> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const sup = yield* DynamicSupervisor.make({ name: "bench" })
        for (let i = 0; i < n; i++)
          yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ id: `c${i}`, start: Effect.void }))
        const snap: Array<number> = []
        const which: Array<number> = []
        const page: Array<number> = []
        let bytes = 0
        for (let r = 0; r < rounds; r++) {
          let t0 = now()
          const tree = Observer.snapshotUnsafe(sup)
          snap.push(now() - t0)
          t0 = now()
          const list = DynamicSupervisor.whichChildrenUnsafe(sup)!
          which.push(now() - t0)
          if (list.length !== n || tree.children.length !== n) throw new Error("incomplete listing")
          t0 = now()
          const frame = JSON.stringify({ figures: Http.figures(tree), root: Http.prune(tree, 200) })
          page.push(now() - t0)
          bytes = JSON.stringify(tree).length
          if (frame.length === 0) throw new Error("empty frame")
        }
        return { snapshot: median(snap), which: median(which), page: median(page), bytes }
      })
    )
  )

export default async function run() {
  const N = 20_000
  const CRASHES = 5_000
  const subjects: ReadonlyArray<Reader> = ["none", "listener", "events", "batched"]
  const s_: Record<Reader, Array<number>> = { none: [], listener: [], events: [], batched: [] }
  const r_: Record<Reader, Array<number>> = { none: [], listener: [], events: [], batched: [] }
  for (const subject of subjects) {
    await starts(N, subject) // warm-up
    await restarts(CRASHES, subject)
  }
  for (let i = 0; i < RUNS; i++) {
    for (const subject of subjects) {
      s_[subject].push(await starts(N, subject))
      r_[subject].push(await restarts(CRASHES, subject))
    }
  }
  const row = (name: string, xs: Record<Reader, Array<number>>, subject: Reader) => ({
    name,
    ours: median(xs[subject]),
    baseline: median(xs.none),
    baselineName: "no reader",
    unit: "µs",
    target: "≤ 1.10x"
  })
  printTable(`Observer: the cost of an event reader (CPU time, medians of ${RUNS} interleaved runs)`, [
    row(`startChild, ${N.toLocaleString("en")} children, a no-op protocol listener (the emit itself)`, s_, "listener"),
    row(`startChild, one reader (events as they come)`, s_, "events"),
    row(`startChild, one reader (50 ms batches, as the page reads)`, s_, "batched"),
    row(
      `restart, ${CRASHES.toLocaleString("en")} crashes, a no-op protocol listener (the emit itself)`,
      r_,
      "listener"
    ),
    row(`restart, one reader (events as they come)`, r_, "events"),
    row(`restart, one reader (50 ms batches, as the page reads)`, r_, "batched")
  ])
  const n = 100_000
  const s = await snapshots(n, 7)
  printTable(`Observer.snapshot, DynamicSupervisor of ${n.toLocaleString("en")} children (CPU time, medians of 7)`, [
    {
      name: "Observer.snapshot",
      ours: s.snapshot,
      baseline: s.which,
      baselineName: "whichChildrenUnsafe",
      unit: "ms"
    },
    {
      name: "page frame (figures + 200 per node + JSON)",
      ours: s.page,
      baseline: s.snapshot,
      baselineName: "Observer.snapshot",
      unit: "ms"
    }
  ])
  console.log(`\nsnapshot JSON of ${n.toLocaleString("en")} children: ${(s.bytes / 1e6).toFixed(1)} MB`)
}
