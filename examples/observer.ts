/**
 * The Observer on a running application: the seed's app (user sessions under
 * a DynamicSupervisor, named through a Registry; a connection Pool; a
 * rate-limited spawner of report jobs; a TaskSupervisor), all under one
 * Supervisor, with a small load that now and then crashes a session.
 *
 * The app serves its own routes and mounts the Observer page beside them
 * (`Observer.layerHttp`) on one `effect/http` server bound to 127.0.0.1:
 *
 * - `GET  /observer`               the live page (open it in a browser)
 * - `POST /sessions/:user`         a user logs in (starts a session)
 * - `POST /sessions/:user/crash`   the session crashes on a bad message
 * - `POST /sessions/:user/message` the session handles a message (a query through the pool, a task)
 *
 * Run with `npm run example:observer` (env: `PORT`, default 4000, 0 = any
 * free port; `LOAD=0` turns the background load off; `ACTIONS=1` lets the page
 * terminate and restart children).
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Cause, Data, Duration, Effect, Layer, Queue, Random, Schedule } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import {
  ChildSpec,
  DynamicSupervisor,
  Observer,
  Pool,
  RateLimitedSupervisor,
  Registry,
  Supervisor,
  TaskSupervisor
} from "effect-otp"
import { createServer } from "node:http"

const USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]

// ---- the parts --------------------------------------------------------------

class BadMessage extends Data.TaggedError("BadMessage")<{ readonly user: string; readonly text: string }> {
  override get message(): string {
    return `session ${this.user} cannot handle: ${this.text}`
  }
}

type Message = { readonly _tag: "Work" } | { readonly _tag: "Crash"; readonly text: string }

interface Session {
  readonly user: string
  readonly inbox: Queue.Queue<Message>
}

interface Connection {
  readonly id: number
}

let connections = 0
const connect = Effect.sync((): Connection => ({ id: ++connections })).pipe(Effect.delay("20 millis"))

interface Parts {
  readonly registry: Registry.Registry<string, Session, "unique">
  readonly sessions: DynamicSupervisor.DynamicSupervisor
  readonly pool: Pool.Pool<Connection>
  readonly spawner: RateLimitedSupervisor.RateLimitedSupervisor
  readonly tasks: TaskSupervisor.TaskSupervisor
}

const registryChild = ChildSpec.make({
  id: "names",
  start: Registry.make<string, Session>({ keys: "unique" })
})

const poolChild = ChildSpec.make({
  id: "db",
  type: "supervisor",
  start: Pool.make({ name: "db", connect, max: 2, min: 1, idleTimeout: "5 seconds", checkoutTimeout: "2 seconds" })
})

const spawnerChild = ChildSpec.make({
  id: "reports",
  type: "supervisor",
  start: RateLimitedSupervisor.make({ name: "reports", limit: 4, window: "1 second", maxQueue: 50 })
})

class App extends Supervisor.Service<App>()(
  "app",
  [
    registryChild,
    DynamicSupervisor.childSpec({ name: "sessions", maxRestarts: 50, maxSeconds: 10 }),
    poolChild,
    spawnerChild,
    TaskSupervisor.childSpec({ name: "tasks" })
  ],
  { strategy: "oneForOne", maxRestarts: 10, maxSeconds: 10, name: "app" }
) {}

/** The parts as they run now (a restarted part is a new handle: look it up each time). */
const parts = Effect.gen(function* () {
  const app = yield* App
  const handle = (id: string): any => {
    const c = Supervisor.whichChildrenUnsafe(app)?.find((c) => c.id === id)
    return c === undefined || typeof c.child === "string" ? undefined : c.child.handle
  }
  return {
    registry: handle("names"),
    sessions: handle("sessions"),
    pool: handle("db"),
    spawner: handle("reports"),
    tasks: handle("tasks")
  } as Parts
})

// ---- a session: a mailbox loop that queries the pool and starts tasks -----------

const session = (user: string, p: Parts) =>
  ChildSpec.make({
    id: `session:${user}`,
    start: Effect.map(Queue.unbounded<Message>(), (inbox): Session => ({ user, inbox })),
    run: (s: Session) =>
      Effect.forever(
        Effect.gen(function* () {
          const message = yield* Queue.take(s.inbox)
          if (message._tag === "Crash") return yield* new BadMessage({ user, text: message.text })
          // a query: hold a connection for a while
          const ms = yield* Random.nextIntBetween(30, 150)
          yield* Pool.withConnection(p.pool, () => Effect.sleep(Duration.millis(ms))).pipe(Effect.ignore)
          // and some background work
          yield* TaskSupervisor.startChild(p.tasks, Effect.sleep(Duration.millis(ms * 2))).pipe(Effect.ignore)
        })
      )
  })

const login = (user: string) =>
  Effect.gen(function* () {
    const p = yield* parts
    return yield* DynamicSupervisor.startChild(p.sessions, Registry.via(p.registry, user, session(user, p)))
  }).pipe(Effect.asVoid)

const send = (user: string, message: Message) =>
  Effect.gen(function* () {
    const p = yield* parts
    const s = Registry.whereisUnsafe(p.registry, user)
    if (s === undefined) return false
    yield* Queue.offer(s.inbox, message)
    return true
  })

const report = (n: number) =>
  ChildSpec.make({ id: `report-${n}`, start: Effect.void, run: () => Effect.sleep("600 millis"), restart: "temporary" })

// ---- the load: messages, report jobs, and a crash now and then ------------------

const load = Effect.gen(function* () {
  let n = 0
  const tick = Effect.gen(function* () {
    n++
    // a few messages at once (each holds a pool connection for 30-150 ms: the pool of 2 makes callers wait)
    const burst = yield* Random.nextIntBetween(1, 6)
    for (let i = 0; i < burst; i++) {
      yield* send(USERS[yield* Random.nextIntBetween(0, USERS.length)]!, { _tag: "Work" })
    }
    // every 2 s a batch of 7 report jobs for a spawner that starts 4 per second: a queue builds and drains
    if (n % 10 === 0) {
      const p = yield* parts
      for (let i = 0; i < 7; i++) {
        yield* Effect.forkChild(RateLimitedSupervisor.startChild(p.spawner, report(n * 10 + i)).pipe(Effect.ignore))
      }
    }
    // now and then a session gets a message it cannot handle
    if (n % 25 === 0) {
      const user = USERS[yield* Random.nextIntBetween(0, USERS.length)]!
      yield* send(user, { _tag: "Crash", text: `unexpected message #${n}` })
    }
  })
  yield* Effect.repeat(tick, Schedule.spaced("200 millis"))
})

// ---- the HTTP side: the app's routes and the Observer beside them --------------

const user = Effect.map(HttpRouter.params, (p) => p.user ?? "")

const Routes = Layer.mergeAll(
  HttpRouter.add(
    "GET",
    "/",
    HttpServerResponse.html(`<p>The app. Its observer is at <a href="/observer">/observer</a>.</p>`)
  ),
  HttpRouter.add(
    "POST",
    "/sessions/:user",
    Effect.flatMap(user, (u) =>
      login(u).pipe(
        Effect.as(HttpServerResponse.text(`session ${u} started\n`)),
        Effect.catchCause((cause) =>
          Effect.succeed(HttpServerResponse.text(`${Cause.pretty(cause)}\n`, { status: 409 }))
        )
      )
    )
  ),
  HttpRouter.add(
    "POST",
    "/sessions/:user/crash",
    Effect.flatMap(user, (u) =>
      Effect.map(send(u, { _tag: "Crash", text: "crash requested over HTTP" }), (sent) =>
        sent
          ? HttpServerResponse.text(`session ${u} sent a bad message\n`)
          : HttpServerResponse.text(`no session ${u}\n`, { status: 404 })
      )
    )
  ),
  HttpRouter.add(
    "POST",
    "/sessions/:user/message",
    Effect.flatMap(user, (u) =>
      Effect.map(send(u, { _tag: "Work" }), (sent) =>
        HttpServerResponse.text(sent ? "ok\n" : `no session ${u}\n`, { status: sent ? 200 : 404 })
      )
    )
  ),
  Observer.layerHttp({ path: "/observer", root: App, actions: process.env.ACTIONS === "1" })
)

const port = Number(process.env.PORT ?? 4000)

const Main = Layer.effectDiscard(
  Effect.gen(function* () {
    for (const u of USERS) yield* login(u)
    const url = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
    // the URL on stdout, one line, for people and for the browser test
    console.log(`Observer: ${url}/observer`)
    if (process.env.LOAD !== "0") yield* Effect.forkDetach(load)
  })
).pipe(
  Layer.provideMerge(HttpRouter.serve(Routes, { disableLogger: true, disableListenLog: true })),
  Layer.provide(App.layer),
  Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
)

NodeRuntime.runMain(Layer.launch(Main))
