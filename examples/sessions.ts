/**
 * Per-entity workers: one session per user, started and stopped by user id,
 * reached by name through a Registry — the seed's UserSession /
 * SessionSupervisor (`{:via, Registry, {MyApp.Registry, {:session, user_id}}}`).
 *
 * A session is a child of a DynamicSupervisor with a mailbox. Callers never
 * hold a session: they resolve `["session", userId]` each time, so when a
 * session crashes and the supervisor restarts it (a new incarnation with a new
 * mailbox), callers keep working.
 *
 * Run with `npm run example:sessions`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Data, Deferred, Effect, Layer, Queue, Schedule } from "effect"
import { ChildSpec, DynamicSupervisor, Registry } from "../src/index.ts"

// ---- the session: a tiny GenServer --------------------------------------------

type Message =
  | { readonly _tag: "Say"; readonly text: string; readonly reply: Deferred.Deferred<string> }
  | { readonly _tag: "Crash" }

interface Session {
  readonly userId: number
  readonly incarnation: number
  readonly mailbox: Queue.Queue<Message>
  /** completed when this incarnation ends, so a caller waiting for a reply is not left hanging (a monitor) */
  readonly down: Deferred.Deferred<void>
}

type SessionName = readonly ["session", number]

class SessionNotFound extends Data.TaggedError("SessionNotFound")<{ readonly userId: number }> {}
class SessionDown extends Data.TaggedError("SessionDown")<{ readonly userId: number }> {}

const incarnations = new Map<number, number>()

const userSession = (userId: number) =>
  ChildSpec.make({
    id: `session:${userId}`,
    // init: runs in this incarnation's Scope (the registry name lives there too)
    start: Effect.gen(function* () {
      const incarnation = (incarnations.get(userId) ?? 0) + 1
      incarnations.set(userId, incarnation)
      const mailbox = yield* Queue.unbounded<Message>()
      const down = yield* Deferred.make<void>()
      yield* Effect.addFinalizer(() =>
        Effect.andThen(Deferred.succeed(down, undefined), Effect.log(`  session ${userId}#${incarnation} stopped`))
      )
      yield* Effect.log(`  session ${userId}#${incarnation} started`)
      return { userId, incarnation, mailbox, down } satisfies Session
    }),
    // the loop: counts messages; this state is lost on a crash, as in Elixir
    run: (session: Session) =>
      Effect.gen(function* () {
        let seen = 0
        while (true) {
          const message = yield* Queue.take(session.mailbox)
          if (message._tag === "Crash") return yield* Effect.die(`session ${userId} crashed`)
          seen++
          yield* Deferred.succeed(
            message.reply,
            `session ${userId}#${session.incarnation} got "${message.text}" (message ${seen})`
          )
        }
      }),
    restart: "transient"
  })

// ---- the application's registry and supervisor ----------------------------------

class SessionRegistry extends Registry.Service<SessionRegistry, SessionName, Session>()("app/SessionRegistry", {
  keys: "unique"
}) {}

class SessionSupervisor extends DynamicSupervisor.Service<SessionSupervisor>()("app/SessionSupervisor", {
  maxRestarts: 3,
  maxSeconds: 5
}) {}

const name = (userId: number): SessionName => ["session", userId]

const startSession = Effect.fn("startSession")(function* (userId: number) {
  const registry = yield* SessionRegistry
  const sup = yield* SessionSupervisor
  return yield* DynamicSupervisor.startChild(sup, Registry.via(registry, name(userId), userSession(userId)))
})

/** Resolves the session by name (never holding it), then talks to it. */
const send = Effect.fn("send")(function* (userId: number, text: string) {
  const registry = yield* SessionRegistry
  const session = Registry.whereisUnsafe(registry, name(userId))
  if (session === undefined) return yield* new SessionNotFound({ userId })
  const reply = yield* Deferred.make<string>()
  yield* Queue.offer(session.mailbox, { _tag: "Say", text, reply })
  // like GenServer.call: if the session dies before replying, the call fails instead of hanging
  return yield* Effect.raceFirst(
    Deferred.await(reply),
    Effect.andThen(Deferred.await(session.down), Effect.fail(new SessionDown({ userId })))
  )
})

/** A caller that rides out a restart: a session that died, or a name briefly absent, is looked up again. */
const sendPatiently = (userId: number, text: string) =>
  send(userId, text).pipe(
    Effect.tapError((e) => Effect.log(`  (${e._tag} for user ${e.userId}: looking the name up again)`)),
    Effect.retry({ schedule: Schedule.spaced("5 millis"), times: 20 })
  )

const crash = Effect.fn("crash")(function* (userId: number) {
  const registry = yield* SessionRegistry
  const session = Registry.whereisUnsafe(registry, name(userId))
  if (session !== undefined) yield* Queue.offer(session.mailbox, { _tag: "Crash" })
})

/** Elixir's stop_session: `{:error, :not_found}` when there is no such session. */
const stopSession = Effect.fn("stopSession")(function* (userId: number) {
  const registry = yield* SessionRegistry
  const sup = yield* SessionSupervisor
  const session = Registry.whereisUnsafe(registry, name(userId))
  if (session === undefined) return yield* new SessionNotFound({ userId })
  // the registry gives the handle; the supervisor addresses children by incarnation
  const children = yield* DynamicSupervisor.whichChildren(sup)
  const child = children.find((c) => c.child !== "restarting" && c.child.handle === session)
  if (child === undefined || child.child === "restarting") return yield* new SessionNotFound({ userId })
  yield* DynamicSupervisor.terminateChild(sup, child.child)
})

// ---- the story ------------------------------------------------------------------

const program = Effect.gen(function* () {
  const registry = yield* SessionRegistry
  const sup = yield* SessionSupervisor

  yield* Effect.log("1. alice (1) and bob (2) log in")
  yield* startSession(1)
  yield* startSession(2)

  yield* Effect.log("2. alice logs in again from another tab: the running session is reused")
  const again = yield* Effect.flip(startSession(1))
  if (again._tag === "AlreadyStarted") {
    yield* Effect.log(`  AlreadyStarted: session 1 is incarnation #${(again.child as Session).incarnation}`)
  }

  yield* Effect.log("3. messages are sent by user id, through the registry")
  yield* Effect.log(`  ${yield* send(1, "hello")}`)
  yield* Effect.log(`  ${yield* send(1, "how are you?")}`)
  yield* Effect.log(`  ${yield* send(2, "hi")}`)

  yield* Effect.log("4. alice's session crashes; the supervisor restarts it under the same name")
  yield* crash(1)
  // sent at once: it may reach the dying incarnation, or find the name absent for a moment
  yield* Effect.log(`  ${yield* sendPatiently(1, "are you back?")}`)
  const entries = yield* Registry.lookup(registry, name(1))
  yield* Effect.log(`  lookup(["session", 1]) now gives incarnation #${entries[0]?.value.incarnation}`)

  yield* Effect.log("5. bob logs out; stopping carol (3), who never logged in, reports not found")
  yield* stopSession(2)
  const missing = yield* Effect.flip(stopSession(3))
  yield* Effect.log(
    `  stopSession(3): ${missing._tag === "SessionNotFound" ? `not found (user ${missing.userId})` : missing._tag}`
  )
  const toBob = yield* Effect.flip(send(2, "still there?"))
  yield* Effect.log(`  send(2): ${toBob._tag}`)

  const counts = yield* DynamicSupervisor.countChildren(sup)
  yield* Effect.log(`6. ${counts.active} session running, ${yield* Registry.count(registry)} name registered`)
  yield* Effect.log("7. shutting down: the supervisor stops every session and the names go with them")
})

const AppLayer = Layer.mergeAll(SessionRegistry.layer, SessionSupervisor.layer)

program.pipe(Effect.provide(AppLayer), NodeRuntime.runMain)
