/**
 * Server (GenServer) beside the hand-written Effect GenServer in the same
 * process: a `Queue` mailbox served by the server's fiber, a `Deferred` per
 * call (what examples/sessions.ts did before issue 11). Subjects take turns in
 * every round; each figure is the median over the rounds.
 *
 * - call round trip, one caller, idle server (handler does not suspend)
 * - the same by registry name, `Agent.get`, and with a tracer installed (a span per call)
 * - a call whose handler suspends once (`Effect.yieldNow`): the slow path
 * - 100 concurrent callers on one server
 * - casts: the caller's cost per cast, and casts handled per second
 * - heap bytes per idle server (10k servers under one DynamicSupervisor)
 *
 * Targets (issue 11): call ≤ 0.8 µs (Elixir's `GenServer.call` measured 1.6 µs here,
 * `Agent.get` 1.4 µs, `GenServer.cast` 0.2 µs, 2.6 µs per call with 100 callers,
 * 2.6–2.7 KB per idle GenServer), casts ≥ 5M/s, ≤ 1 KB per idle server.
 */
import { ChildSpec, DynamicSupervisor, Agent, Registry, Server } from "effect-otp"
import { Deferred, Effect, Exit, Fiber, Layer, Queue, Scheduler, Schema, Scope, Tracer } from "effect"
import { Rpc } from "effect/rpc"
import { performance } from "node:perf_hooks"
import { gc, heapUsed, median, printTable } from "./util.ts"

const ROUNDS = Number(process.env.SERVER_BENCH_ROUNDS ?? 7)
const CALLS = 200_000
const CASTS = 500_000
const CALLERS = 100
const PER_CALLER = 2_000
const IDLE = 10_000

const now = () => performance.now()

// ---- the subjects ---------------------------------------------------------------------

const Add = Rpc.make("Add", { payload: { n: Schema.Number }, success: Schema.Number })
const AddLater = Rpc.make("AddLater", { payload: { n: Schema.Number }, success: Schema.Number })
const Counter = Server.make("Counter", [Add, AddLater], {
  init: () =>
    Effect.sync(() => {
      let total = 0
      return {
        Add: ({ n }) => Effect.sync(() => (total += n)),
        AddLater: ({ n }) =>
          Effect.andThen(
            Effect.yieldNow,
            Effect.sync(() => (total += n))
          )
      }
    })
})

type Msg = { readonly n: number; readonly later: boolean; readonly reply: Deferred.Deferred<number> | undefined }

/** The hand-written GenServer: a Queue served by the child's fiber, a Deferred per call. */
const handWritten = ChildSpec.make({
  start: Queue.unbounded<Msg>(),
  run: (inbox) =>
    Effect.gen(function* () {
      let total = 0
      while (true) {
        const msg = yield* Queue.take(inbox)
        if (msg.later) yield* Effect.yieldNow
        total += msg.n
        if (msg.reply !== undefined) yield* Deferred.succeed(msg.reply, total)
      }
    })
})
const handCall = (inbox: Queue.Queue<Msg>, n: number, later = false) =>
  Effect.gen(function* () {
    const reply = yield* Deferred.make<number>()
    yield* Queue.offer(inbox, { n, later, reply })
    return yield* Deferred.await(reply)
  })
const handCast = (inbox: Queue.Queue<Msg>, n: number) => Queue.offer(inbox, { n, later: false, reply: undefined })

/** A tracer that keeps nothing: spans are made and ended, as with an exporter installed. */
const discardingTracer = Tracer.make({
  span: (options) => new Tracer.NativeSpan(options)
})

interface World {
  readonly ref: Server.RefOf<typeof Counter>
  readonly named: Server.Via<Server.Rpcs<typeof Counter>>
  readonly agent: Agent.Agent<number>
  readonly inbox: Queue.Queue<Msg>
}

const world = Effect.gen(function* () {
  const sup = yield* DynamicSupervisor.make()
  const names = yield* Registry.make<string, Server.RefOf<typeof Counter>>({ keys: "unique" })
  const ref = (yield* DynamicSupervisor.startChild(sup, Registry.via(names, "counter", Server.childSpec(Counter))))
    .handle
  const agent = (yield* DynamicSupervisor.startChild(
    sup,
    Agent.childSpec(() => 0)
  )).handle
  const inbox = (yield* DynamicSupervisor.startChild(sup, handWritten)).handle
  return { ref, named: Server.via(names, "counter"), agent, inbox } satisfies World
})

/** µs per operation of `n` sequential runs of `op` in one fiber (after a full GC, so no subject pays for another's garbage). */
const perOp = (n: number, op: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function* () {
    gc()
    const t0 = now()
    for (let i = 0; i < n; i++) yield* op(i)
    return ((now() - t0) * 1000) / n
  })

/** µs per call with `callers` fibers each making `each` calls at once. */
const concurrent = (callers: number, each: number, op: () => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function* () {
    gc()
    const t0 = now()
    const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
    for (let c = 0; c < callers; c++) {
      fibers.push(
        yield* Effect.forkChild(
          Effect.gen(function* () {
            for (let i = 0; i < each; i++) yield* op()
          })
        )
      )
    }
    yield* Fiber.joinAll(fibers)
    return ((now() - t0) * 1000) / (callers * each)
  })

/** CASTS sends in one fiber that does not yield meanwhile. */
const sendAll = (send: () => Effect.Effect<unknown, unknown>) =>
  Effect.provideService(
    Effect.gen(function* () {
      for (let i = 0; i < CASTS; i++) yield* send()
    }),
    Scheduler.PreventSchedulerYield,
    true
  )

// ---- heap per idle server ---------------------------------------------------------------

const heapPerServer = <A, E>(spec: () => ChildSpec.ChildSpec<A, E>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const sup = yield* Scope.provide(DynamicSupervisor.make(), scope)
      const h0 = heapUsed()
      for (let i = 0; i < IDLE; i++) yield* DynamicSupervisor.startChild(sup, spec())
      const bytes = (heapUsed() - h0) / IDLE
      yield* Scope.close(scope, Exit.void)
      return bytes
    })
  )

export default async () => {
  const samples: Record<string, Array<number>> = {}
  const record = (name: string, value: number) => (samples[name] ??= []).push(value)

  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const w = yield* world
        const traced = yield* world.pipe(Effect.provide(Layer.succeed(Tracer.Tracer)(discardingTracer)))
        // warm-up
        yield* perOp(20_000, () => Server.call(w.ref, "Add", { n: 1 }))
        yield* perOp(20_000, () => handCall(w.inbox, 1))
        for (let round = 0; round < ROUNDS; round++) {
          record("call", yield* perOp(CALLS, () => Server.call(w.ref, "Add", { n: 1 })))
          record("hand call", yield* perOp(CALLS, () => handCall(w.inbox, 1)))
          record("call by name", yield* perOp(CALLS, () => Server.call(w.named, "Add", { n: 1 })))
          record("agent get", yield* perOp(CALLS, () => Agent.get(w.agent, (n) => n)))
          record("call traced", yield* perOp(CALLS, () => Server.call(traced.ref, "Add", { n: 1 })))
          record("call suspends", yield* perOp(CALLS / 4, () => Server.call(w.ref, "AddLater", { n: 1 })))
          record("hand call suspends", yield* perOp(CALLS / 4, () => handCall(w.inbox, 1, true)))
          record("100 callers", yield* concurrent(CALLERS, PER_CALLER, () => Server.call(w.ref, "Add", { n: 1 })))
          record("hand 100 callers", yield* concurrent(CALLERS, PER_CALLER, () => handCall(w.inbox, 1)))
          record(
            "100 callers suspend",
            yield* concurrent(CALLERS, PER_CALLER / 4, () => Server.call(w.ref, "AddLater", { n: 1 }))
          )
          record(
            "hand 100 callers suspend",
            yield* concurrent(CALLERS, PER_CALLER / 4, () => handCall(w.inbox, 1, true))
          )
          // casts: the caller's cost per cast (sent with the scheduler kept from yielding, so no handler runs
          // in between), then how long until the last one was handled (a call behind them)
          gc()
          let t0 = now()
          yield* sendAll(() => Server.cast(w.ref, "Add", { n: 1 }))
          const castIssued = now() - t0
          yield* Server.call(w.ref, "Add", { n: 0 })
          const castHandled = now() - t0
          gc()
          t0 = now()
          yield* sendAll(() => handCast(w.inbox, 1))
          const handIssued = now() - t0
          yield* handCall(w.inbox, 0)
          const handHandled = now() - t0
          record("cast issued", (castIssued * 1000) / CASTS)
          record("hand cast issued", (handIssued * 1000) / CASTS)
          record("casts/s", CASTS / (castHandled / 1000))
          record("hand casts/s", CASTS / (handHandled / 1000))
        }
      })
    )
  )
  for (let round = 0; round < 3; round++) {
    record("bytes", await heapPerServer(() => Server.childSpec(Counter)))
    record("hand bytes", await heapPerServer(() => handWritten))
  }

  const m = (name: string) => median(samples[name]!)
  const hand = "hand-written Queue+Deferred"
  printTable(`Server.call round trip, one caller, medians of ${ROUNDS} rounds (µs per call)`, [
    {
      name: "Server.call, idle server",
      ours: m("call"),
      baseline: m("hand call"),
      baselineName: hand,
      unit: "µs",
      target: "≤ 0.8 µs (Elixir 1.6 µs)"
    },
    {
      name: "Server.call by registry name",
      ours: m("call by name"),
      baseline: m("hand call"),
      baselineName: hand,
      unit: "µs"
    },
    {
      name: "Agent.get",
      ours: m("agent get"),
      baseline: m("hand call"),
      baselineName: hand,
      unit: "µs",
      target: "Elixir 1.4 µs"
    },
    {
      name: "Server.call, a tracer installed (span per call)",
      ours: m("call traced"),
      baseline: m("hand call"),
      baselineName: hand,
      unit: "µs"
    },
    {
      name: "Server.call, handler suspends once",
      ours: m("call suspends"),
      baseline: m("hand call suspends"),
      baselineName: `${hand}, same handler`,
      unit: "µs"
    },
    {
      name: "100 concurrent callers, per call",
      ours: m("100 callers"),
      baseline: m("hand 100 callers"),
      baselineName: hand,
      unit: "µs",
      target: "Elixir 2.6 µs"
    },
    {
      name: "100 concurrent callers, handler suspends once",
      ours: m("100 callers suspend"),
      baseline: m("hand 100 callers suspend"),
      baselineName: hand,
      unit: "µs"
    }
  ])
  printTable(`Server.cast, ${CASTS / 1000}k casts then one call, medians of ${ROUNDS} rounds`, [
    {
      name: "caller's cost per cast (the server does not run meanwhile)",
      ours: m("cast issued"),
      baseline: m("hand cast issued"),
      baselineName: "Queue.offer",
      unit: "µs",
      target: "Elixir 0.2 µs"
    },
    {
      name: "casts handled per second",
      ours: m("casts/s") / 1e6,
      baseline: m("hand casts/s") / 1e6,
      baselineName: hand,
      unit: "M/s",
      lowerIsBetter: false,
      target: "≥ 5M/s"
    }
  ])
  printTable(`Heap per idle server, ${IDLE / 1000}k under one DynamicSupervisor (medians of 3)`, [
    {
      name: "Server.childSpec (Counter)",
      ours: m("bytes"),
      baseline: m("hand bytes"),
      baselineName: `${hand} child`,
      unit: "B",
      target: "≤ 1 KB (Elixir 2.6–2.7 KB)"
    }
  ])
}
