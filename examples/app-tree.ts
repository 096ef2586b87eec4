/**
 * An application as a supervision tree, declared with Layers.
 *
 * The root `Supervisor` (rest_for_one) starts, in order: a `Registry` of
 * session names, a `DynamicSupervisor` of sessions (which register in the
 * registry) and a `TaskSupervisor`. The story:
 *
 * 1. a session crashes: its DynamicSupervisor restarts it, nothing else moves;
 * 2. the registry crashes: rest_for_one stops everything started after it
 *    (tasks, then sessions with their children), restarts the registry, then
 *    the sessions supervisor (empty: dynamic children are not recreated) and
 *    the task supervisor;
 * 3. the program sends itself SIGINT: `NodeRuntime.runMain(Layer.launch(...))`
 *    interrupts the main fiber and the tree stops in order, leaves first.
 *
 * Run with `npm run example:app-tree`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Deferred, Effect, Exit, Layer, Logger, Option, Runtime } from "effect"
import { ChildSpec, DynamicSupervisor, Registry, Supervisor, Task, TaskSupervisor } from "effect-otp"

interface Session {
  readonly user: string
  readonly crash: Deferred.Deferred<void, string>
}

interface Names {
  readonly registry: Registry.Registry<string, Session, "unique">
  /** fails the registry child, to show what rest_for_one does */
  readonly fault: Deferred.Deferred<void, string>
}

/** Prints a line when a child's incarnation stops. */
const announce = <A, E, R>(label: string, spec: ChildSpec.ChildSpec<A, E, R>): ChildSpec.ChildSpec<A, E, R> => ({
  ...spec,
  start: Effect.andThen(
    Effect.addFinalizer(() => Console.log(`    stopped ${label}`)),
    spec.start
  )
})

const registryChild = announce(
  "registry",
  ChildSpec.make({
    id: "registry",
    type: "supervisor",
    start: Effect.gen(function* () {
      const registry = yield* Registry.make<string, Session>({ keys: "unique" })
      const fault = yield* Deferred.make<void, string>()
      return { registry, fault } satisfies Names
    }),
    run: (names: Names) => Deferred.await(names.fault)
  })
)

const session = (user: string) =>
  announce(
    `session ${user}`,
    ChildSpec.make({
      id: `session:${user}`,
      start: Effect.map(Deferred.make<void, string>(), (crash): Session => ({ user, crash })),
      run: (s: Session) => Deferred.await(s.crash)
    })
  )

class App extends Supervisor.Service<App>()(
  "app",
  [
    registryChild,
    announce("sessions supervisor", DynamicSupervisor.childSpec({ id: "sessions" })),
    announce("task supervisor", TaskSupervisor.childSpec({ id: "tasks" }))
  ],
  { strategy: "restForOne" }
) {}

// ---- reading the live tree ---------------------------------------------------------

const handleOf = <A>(sup: Supervisor.Supervisor, id: string): A | undefined => {
  const c = Supervisor.whichChildrenUnsafe(sup)?.find((c) => c.id === id)
  return c === undefined || typeof c.child === "string" ? undefined : (c.child.handle as A)
}

const pidOf = (sup: Supervisor.Supervisor, id: string): number | undefined => {
  const c = Supervisor.whichChildrenUnsafe(sup)?.find((c) => c.id === id)
  return c === undefined || typeof c.child === "string" ? undefined : c.child.pid
}

const render = (sup: Supervisor.Supervisor) =>
  Effect.gen(function* () {
    const lines = [`  ${sup.name} (Supervisor, ${sup.strategy})`]
    // whichChildren lists the most recent first; print in start order
    for (const c of [...(yield* Supervisor.whichChildren(sup))].reverse()) {
      if (typeof c.child === "string") {
        lines.push(`  ├─ ${c.id}: ${c.child}`)
        continue
      }
      const h = c.child.handle
      if (DynamicSupervisor.isDynamicSupervisor(h)) {
        const kids = yield* DynamicSupervisor.whichChildren(h)
        lines.push(`  ├─ ${c.id} #${c.child.pid} (DynamicSupervisor, ${kids.length} children)`)
        for (const k of kids) {
          const s = k.child === "restarting" ? "restarting" : `${(k.child.handle as Session).user} #${k.pid}`
          lines.push(`  │   └─ ${k.id}: ${s}`)
        }
      } else if (TaskSupervisor.isTaskSupervisor(h)) {
        const n = yield* TaskSupervisor.countChildren(h)
        lines.push(`  ├─ ${c.id} #${c.child.pid} (TaskSupervisor, ${n.active} running tasks)`)
      } else {
        const names = h as Names
        const n = yield* Registry.count(names.registry)
        lines.push(`  ├─ ${c.id} #${c.child.pid} (Registry, ${n} names)`)
      }
    }
    return lines.join("\n")
  })

const printTree = (title: string) =>
  Effect.gen(function* () {
    const app = yield* App
    yield* Console.log(`\n${title}\n${yield* render(app)}`)
  })

/** Lets the supervisors run until `done` holds (restarts happen on other fibers). */
const until = (done: () => boolean) =>
  Effect.gen(function* () {
    while (!done()) yield* Effect.sleep("1 millis")
  })

// ---- the story ------------------------------------------------------------------

const story = Effect.gen(function* () {
  const app = yield* App
  yield* printTree("1. The application started (registry, then sessions, then tasks):")

  const names = handleOf<Names>(app, "registry")!
  const sessions = handleOf<DynamicSupervisor.DynamicSupervisor>(app, "sessions")!
  for (const user of ["alice", "bob"]) {
    yield* DynamicSupervisor.startChild(sessions, Registry.via(names.registry, user, session(user)))
  }
  const tasks = handleOf<TaskSupervisor.TaskSupervisor>(app, "tasks")!
  const counted = yield* TaskSupervisor.async(tasks, Registry.count(names.registry)).pipe(Effect.flatMap(Task.await))
  yield* printTree(`2. Two sessions started, named in the registry (a task counted ${counted}):`)

  yield* Console.log("\n3. alice's session crashes.")
  const alice = Option.getOrThrow(yield* Registry.whereis(names.registry, "alice"))
  yield* Deferred.fail(alice.crash, "bad request")
  yield* until(() => {
    const now = Registry.whereisUnsafe(names.registry, "alice")
    return now !== undefined && now !== alice
  })
  yield* printTree("   Its DynamicSupervisor restarted it under the same name; nothing else moved:")

  yield* Console.log("\n4. The registry crashes; under rest_for_one everything after it goes too:")
  const registryPid = pidOf(app, "registry")
  yield* Deferred.fail(names.fault, "corrupted table")
  yield* until(() => {
    const pid = pidOf(app, "registry")
    return pid !== undefined && pid !== registryPid && pidOf(app, "tasks") !== undefined
  })
  yield* printTree("   Restarted in start order; the new sessions supervisor starts empty:")

  const newNames = handleOf<Names>(app, "registry")!
  const newSessions = handleOf<DynamicSupervisor.DynamicSupervisor>(app, "sessions")!
  yield* DynamicSupervisor.startChild(newSessions, Registry.via(newNames.registry, "carol", session("carol")))
  yield* printTree("   carol logs in to the new incarnation:")

  yield* Console.log("\n5. SIGINT: the tree stops in reverse start order, leaves before their parents.")
  process.kill(process.pid, "SIGINT")
})

// crash reports are part of the story, but one line each is enough here
const oneLineLogs = Logger.layer([
  Logger.make(({ message }) => console.log(`   [log] ${Array.isArray(message) ? message.join(" ") : String(message)}`))
])

const Main = Layer.effectDiscard(story).pipe(Layer.provide(App.layer), Layer.provide(oneLineLogs))

NodeRuntime.runMain(Layer.launch(Main), {
  // a stop by SIGINT is this program's normal end
  teardown: (exit, onExit) =>
    Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
      ? (console.log("\nstopped cleanly"), onExit(0))
      : Runtime.defaultTeardown(exit, onExit)
})
