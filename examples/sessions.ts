/**
 * Per-entity workers: one session per user, started and stopped by user id,
 * reached by name through a Registry — the seed's UserSession /
 * SessionSupervisor (`{:via, Registry, {MyApp.Registry, {:session, user_id}}}`),
 * written with `Server` (OTP's GenServer).
 *
 * A session is a Server: a protocol of Effect `Rpc`s and an `init` whose
 * closure is the session's state. Callers never hold a session: they call
 * `Server.via(registry, ["session", userId])`, resolved at every call, so when
 * a session crashes and the supervisor restarts it (a new incarnation) callers
 * keep working; a call waiting on the session that crashed fails at once with
 * `ServerDown` instead of waiting for its timeout.
 *
 * Run with `npm run example:sessions`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { Rpc } from "effect/rpc"
import { DynamicSupervisor, Registry, Server } from "../src/index.ts"

// ---- the session: its protocol and its init ------------------------------------------

const Say = Rpc.make("Say", { payload: { text: Schema.String }, success: Schema.String })
const Crash = Rpc.make("Crash")

const incarnations = new Map<number, number>()

const UserSession = Server.make("UserSession", [Say, Crash], {
  // init: runs in this incarnation's Scope (the registry name lives there too)
  init: (userId: number) =>
    Effect.gen(function* () {
      const incarnation = (incarnations.get(userId) ?? 0) + 1
      incarnations.set(userId, incarnation)
      yield* Effect.addFinalizer(() => Effect.log(`  session ${userId}#${incarnation} stopped`))
      yield* Effect.log(`  session ${userId}#${incarnation} started`)
      // the state: lost on a crash, as in Elixir
      let seen = 0
      return {
        Say: ({ text }) => Effect.sync(() => `session ${userId}#${incarnation} got "${text}" (message ${++seen})`),
        Crash: () => Effect.die(`session ${userId} crashed`)
      }
    })
})

// ---- the application's registry and supervisor ----------------------------------------

type SessionName = readonly ["session", number]

class SessionRegistry extends Registry.Service<SessionRegistry, SessionName, Server.RefOf<typeof UserSession>>()(
  "app/SessionRegistry",
  { keys: "unique" }
) {}

class SessionSupervisor extends DynamicSupervisor.Service<SessionSupervisor>()("app/SessionSupervisor", {
  maxRestarts: 3,
  maxSeconds: 5
}) {}

const name = (userId: number): SessionName => ["session", userId]

/** Elixir's start_session: a session under the supervisor, named by user id. */
const startSession = Effect.fn("startSession")(function* (userId: number) {
  const registry = yield* SessionRegistry
  const sup = yield* SessionSupervisor
  return yield* DynamicSupervisor.startChild(
    sup,
    Registry.via(registry, name(userId), Server.childSpec(UserSession, userId, { restart: "transient" }))
  )
})

/** The session of a user, by name: resolved at every call, so it is whichever incarnation is running. */
const session = Effect.fn("session")(function* (userId: number) {
  return Server.via(yield* SessionRegistry, name(userId))
})

/** GenServer.call by name. */
const say = Effect.fn("say")(function* (userId: number, text: string) {
  return yield* Server.call(yield* session(userId), "Say", { text })
})

/** Elixir's stop_session: GenServer.stop by name (`NoServer` when there is no such session). */
const stopSession = Effect.fn("stopSession")(function* (userId: number) {
  return yield* Server.stop(yield* session(userId))
})

// ---- the story --------------------------------------------------------------------------

const program = Effect.gen(function* () {
  const registry = yield* SessionRegistry
  const sup = yield* SessionSupervisor

  yield* Effect.log("1. alice (1) and bob (2) log in")
  yield* startSession(1)
  yield* startSession(2)

  yield* Effect.log("2. alice logs in again from another tab: the running session is reused")
  const again = yield* Effect.flip(startSession(1))
  yield* Effect.log(`  ${again._tag}: session 1 is already running (${String(again._tag === "AlreadyStarted")})`)

  yield* Effect.log("3. messages are calls by user id, through the registry")
  yield* Effect.log(`  ${yield* say(1, "hello")}`)
  yield* Effect.log(`  ${yield* say(1, "how are you?")}`)
  yield* Effect.log(`  ${yield* say(2, "hi")}`)

  yield* Effect.log("4. alice's session crashes; the caller gets ServerDown at once, the supervisor restarts it")
  const down = yield* Effect.flip(Server.call(yield* session(1), "Crash"))
  yield* Effect.log(`  Crash: ${down.message}`)
  // the very next call by name reaches the new incarnation
  yield* Effect.log(`  ${yield* say(1, "are you back?")}`)

  yield* Effect.log("5. bob logs out (GenServer.stop by name); carol (3), who never logged in, is not found")
  yield* stopSession(2)
  const missing = yield* Effect.flip(stopSession(3))
  yield* Effect.log(`  stopSession(3): ${missing._tag}`)
  const toBob = yield* Effect.flip(say(2, "still there?"))
  yield* Effect.log(`  say(2): ${toBob._tag}`)

  const counts = yield* DynamicSupervisor.countChildren(sup)
  yield* Effect.log(`6. ${counts.active} session running, ${yield* Registry.count(registry)} name registered`)
  yield* Effect.log("7. shutting down: the supervisor stops every session and the names go with them")
})

const AppLayer = Layer.mergeAll(SessionRegistry.layer, SessionSupervisor.layer)

program.pipe(Effect.provide(AppLayer), NodeRuntime.runMain)
