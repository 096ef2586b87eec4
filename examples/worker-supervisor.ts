/**
 * The seed's `MyApp.WorkerSupervisor`, as a program.
 *
 *   npm run example
 *
 * A named DynamicSupervisor (a Service class, provided as a Layer) with a
 * limit of 3 children and extra arguments; workers started with arguments; a
 * crashing worker restarted as a new incarnation; a temporary task that is
 * not; the children counted and listed; the limit reached; then a clean
 * shutdown that stops every worker.
 */
import { Deferred, Effect, Layer, Logger, Queue } from "effect"
import { ChildSpec, DynamicSupervisor } from "effect-otp"

const say = (line: string) => Effect.sync(() => console.log(line))

// defmodule MyApp.WorkerSupervisor do use DynamicSupervisor ... init(strategy: :one_for_one, max_children: 3)
class WorkerSupervisor extends DynamicSupervisor.Service<WorkerSupervisor>()("MyApp/WorkerSupervisor", {
  maxChildren: 3,
  extraArguments: { node: "node-1" }
}) {}

/** A worker: an inbox it reads in a loop. A message "crash" makes it fail. */
const worker = (name: string) => (extra: { readonly node: string }) =>
  ChildSpec.make({
    id: name,
    start: Effect.gen(function* () {
      const inbox = yield* Queue.unbounded<string>()
      yield* say(`  [${name}] started on ${extra.node}`)
      yield* Effect.addFinalizer(() => say(`  [${name}] stopped, inbox released`))
      return inbox
    }),
    run: (inbox) =>
      Effect.forever(
        Effect.gen(function* () {
          const message = yield* Queue.take(inbox)
          if (message === "crash") return yield* Effect.fail(`${name} was told to crash`)
          yield* say(`  [${name}] handled ${JSON.stringify(message)}`)
        })
      )
  })

// def start_worker(arg), do: DynamicSupervisor.start_child(__MODULE__, {Worker, arg})
const startWorker = (name: string) =>
  Effect.gen(function* () {
    const sup = yield* WorkerSupervisor
    return yield* DynamicSupervisor.startChild(sup, worker(name))
  })

const counts = Effect.gen(function* () {
  return yield* DynamicSupervisor.countChildren(yield* WorkerSupervisor)
})

const listing = Effect.gen(function* () {
  const sup = yield* WorkerSupervisor
  const children = yield* DynamicSupervisor.whichChildren(sup)
  return children.map((c) => `${c.id} (pid ${c.pid}, ${c.child === "restarting" ? "restarting" : "running"})`)
})

const program = Effect.gen(function* () {
  const sup = yield* WorkerSupervisor
  yield* say("1. Starting two workers with arguments (the supervisor adds its extra arguments)")
  const alice = yield* startWorker("alice")
  yield* startWorker("bob")
  yield* Queue.offer(alice.handle, "hello")
  yield* Effect.sleep("10 millis")

  yield* say("\n2. alice crashes; she is permanent, so she is restarted as a new incarnation")
  yield* Queue.offer(alice.handle, "crash")
  yield* Effect.sleep("10 millis")
  yield* say(`   children: ${(yield* listing).join(", ")}  (alice was pid ${alice.pid})`)

  yield* say("\n3. A temporary one-off task runs once and is not restarted, even though it fails")
  const taskDone = yield* Deferred.make<void>()
  yield* DynamicSupervisor.startChild(
    sup,
    ChildSpec.task(
      Effect.andThen(
        say("  [report] ran once, now failing"),
        Effect.andThen(Deferred.succeed(taskDone, undefined), Effect.fail("report failed"))
      )
    )
  )
  yield* Deferred.await(taskDone)
  yield* Effect.sleep("10 millis")
  yield* say(`   countChildren: ${JSON.stringify(yield* counts)}`)

  yield* say("\n4. max_children is 3: the third worker starts, a fourth is refused")
  yield* startWorker("carol")
  const refused = yield* Effect.flip(startWorker("dave"))
  yield* say(`   dave: ${refused._tag}: ${refused.message}`)
  yield* say(`   children: ${(yield* listing).join(", ")}`)

  yield* say("\n5. terminateChild stops bob for good (no restart), and a second call finds nothing")
  const bob = (yield* DynamicSupervisor.whichChildren(sup)).find((c) => c.id === "bob")!
  yield* DynamicSupervisor.terminateChild(sup, bob)
  const again = yield* Effect.flip(DynamicSupervisor.terminateChild(sup, bob))
  yield* say(`   second terminateChild: ${again._tag}`)
  yield* say(`   countChildren: ${JSON.stringify(yield* counts)}`)

  yield* say("\n6. The application stops: the supervisor's Layer is released and stops every worker")
})

// Crash reports go to the console through Effect's logger, one line per abnormal exit.
const logger = Logger.make((o) => {
  const message = Array.isArray(o.message) ? o.message.join(" ") : String(o.message)
  console.log(`  (log ${o.logLevel.toLowerCase()}) ${message}`)
})

await Effect.runPromise(
  program.pipe(
    Effect.provide(Layer.mergeAll(WorkerSupervisor.layer)),
    Effect.provideService(Logger.CurrentLoggers, new Set([logger]))
  )
)
console.log("\nDone: every worker was stopped before the program ended.")
