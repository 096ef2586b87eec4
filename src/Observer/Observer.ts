/**
 * See the live supervision tree: Erlang's `:observer` and Phoenix
 * LiveDashboard for effect-otp.
 *
 * Every supervisor kind (`Supervisor`, `DynamicSupervisor`, `TaskSupervisor`,
 * `RateLimitedSupervisor`), the `Pool`, the `Registry` and the `RateLimiter`
 * can be looked into. From any of them as a root the Observer gives:
 *
 * - {@link snapshot}: the whole tree below it as one JSON-serializable value
 *   (kind, name, id, pid, state, restart count, start time, Elixir's counts,
 *   and per-kind figures: pool open/idle/in use/waiting, limiter
 *   admitted/queued/in window, registry entries, tasks);
 * - {@link events}: a `Stream` of what happens anywhere below it (started,
 *   exited normally / on shutdown / by a crash with its cause, restarted, gave
 *   up, abandoned), bounded so a slow reader can never grow memory;
 * - a web page, {@link layerHttp} on your own `effect/http` server or
 *   {@link serve} standalone: the tree updated live over Server-Sent Events,
 *   each node's details and restart count, a crash log with causes and small
 *   live plots (children, restarts per second, pool waits, limiter queue
 *   depth). The page is one document with no asset from the network.
 *
 * **Cost.** Nothing is paid while nobody observes: a supervisor builds an
 * event only when someone listens. With a reader attached, each event is
 * built (a crash's cause pretty-printed), handed to a ring buffer, and the
 * reader's fiber is woken once per burst (or per `batch` window). That is
 * not free on hot paths: `npm run bench -- observer` measured `startChild`
 * and restarts 1.2–3.9x slower with one reader draining every event (see the
 * README's figures). Following a tree never walks a big supervisor per event.
 *
 * **Safety.** The standalone server binds to 127.0.0.1 and both forms answer
 * only to loopback clients unless `allowRemote` is set; the actions that
 * change the system (terminate or restart a child from the page) are off
 * unless `actions` is set.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as HttpRouter from "effect/http/HttpRouter"
import { InvalidOptions } from "../Errors.ts"
import * as Inspect from "../internal/inspect.ts"
import * as DynamicSupervisor from "../Supervisor/DynamicSupervisor.ts"
import * as Supervisor from "../Supervisor/Supervisor.ts"
import * as Http from "./internal/http.ts"
import * as Reader from "./internal/reader.ts"

/**
 * Anything the Observer can look into: every supervisor kind
 * (`Supervisor`, `DynamicSupervisor`, `TaskSupervisor`,
 * `RateLimitedSupervisor`), a `Pool`, a `Registry`, a `RateLimiter` — each
 * carries the inspection protocol at run time. Another value is refused with
 * `InvalidOptions` (`events`, `layerHttp`, `serve`) or a defect
 * (`snapshotUnsafe`, `snapshot`).
 *
 * @category models
 * @since 0.1.0
 */
export type Inspectable = object

const notInspectable = (module: string, root: unknown) =>
  new InvalidOptions({
    module,
    field: "root",
    value: root,
    expected: "a supervisor, pool, registry or rate limiter"
  })

/** The inspector of a root; a value without one is a defect here. */
const inspectable = (root: Inspectable): Inspect.Inspectable => {
  if (Inspect.isInspectable(root)) return root
  throw notInspectable("Observer.snapshot", root)
}

/**
 * One node of the tree: kind (`"DynamicSupervisor"`, `"Pool"`, `"Worker"`…),
 * type (`"worker"` | `"supervisor"`), name, id, pid, state, restarts,
 * `startedAt` (epoch ms on the host's `Clock`), `counts`, `stats` (per-kind
 * figures) and `children`. Plain data: `JSON.stringify` it as it is.
 *
 * @category models
 * @since 0.1.0
 */
export type Snapshot = Inspect.NodeSnapshot

/**
 * What happened to a child: `Started`, `Exited` (`reason` `"normal"`,
 * `"shutdown"` or `"crash"`, with the pretty-printed `cause` of a crash),
 * `Restarted` (new `pid`, `previousPid`), `GaveUp` (restart intensity
 * exceeded), `Abandoned` (did not stop within its shutdown time). Each names
 * the `supervisor` that emitted it, the child's `id` and `pid`, and `at`
 * (epoch ms on the supervisor's `Clock`).
 *
 * @category models
 * @since 0.1.0
 */
export type Event = Inspect.InspectEvent

/**
 * Emitted by {@link events} in place of events it had to drop: `count`
 * events were lost just before this marker (the oldest buffered ones), `total`
 * since the stream started.
 *
 * @category models
 * @since 0.1.0
 */
export type Dropped = Reader.Dropped

/**
 * What {@link events} emits.
 *
 * @category models
 * @since 0.1.0
 */
export type StreamEvent = Event | Dropped

/**
 * Tree-wide figures the page plots: `children` running below the root, the
 * sum of `restarts`, `poolWaiting` (callers waiting for a connection, over
 * every pool) and `limiterQueued` (callers queued, over every limiter).
 *
 * @category models
 * @since 0.1.0
 */
export type Figures = Http.Figures

/**
 * The whole tree below `root`, synchronously.
 *
 * **Example** (A supervisor's tree as data)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ChildSpec, DynamicSupervisor, Observer } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const sup = yield* DynamicSupervisor.make({ name: "sessions" })
 *   yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ id: "alice", start: Effect.void }))
 *   const tree = Observer.snapshotUnsafe(sup)
 *   return [tree.kind, tree.children.map((c) => `${c.id} ${c.state}`)]
 * })
 * // => ["DynamicSupervisor", ["alice running"]]
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const snapshotUnsafe = (root: Inspectable): Snapshot => inspectable(root)[Inspect.TypeId].snapshot()

/**
 * The whole tree below `root`: the Effect-wrapped version of
 * {@link snapshotUnsafe}. The value is JSON-serializable as it is.
 *
 * **Example** (Printing a tree as JSON)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DynamicSupervisor, Observer, Supervisor } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const app = yield* Supervisor.make([DynamicSupervisor.childSpec({ id: "sessions" })], {
 *     strategy: "oneForOne",
 *     name: "app"
 *   })
 *   const tree = yield* Observer.snapshot(app)
 *   return JSON.parse(JSON.stringify(tree)).children[0].kind
 * })
 * // => "DynamicSupervisor"
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const snapshot = (root: Inspectable): Effect.Effect<Snapshot> => Effect.sync(() => snapshotUnsafe(root))

/**
 * The figures the page plots, computed from a snapshot.
 *
 * @category getters
 * @since 0.1.0
 */
export const figures = (snapshot: Snapshot): Figures => Http.figures(snapshot)

/** A finite duration in milliseconds (> 0, or >= 0 when `zero` is allowed), or InvalidOptions. */
const millisOf = (module: string, field: string, input: unknown, zero: boolean): number | InvalidOptions => {
  const decoded = Duration.fromInput(input as Duration.Input)
  const ms = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : Number.NaN
  return Number.isFinite(ms) && (zero ? ms >= 0 : ms > 0)
    ? ms
    : new InvalidOptions({ module, field, value: input, expected: `a finite duration ${zero ? ">= 0" : "> 0"}` })
}

const integerAtLeast = (module: string, field: string, value: unknown, min: number): InvalidOptions | undefined =>
  typeof value === "number" && Number.isInteger(value) && value >= min
    ? undefined
    : new InvalidOptions({ module, field, value, expected: `an integer >= ${min}` })

/**
 * Options of {@link events}.
 *
 * @category models
 * @since 0.1.0
 */
export interface EventsOptions {
  /**
   * Events buffered for a reader that is behind (default 1024). When the
   * buffer is full the oldest event is dropped and counted; the reader gets a
   * {@link Dropped} marker in its place.
   */
  readonly capacity?: number | undefined
  /**
   * How long a woken reader waits (on the `Clock`) before taking what has
   * arrived, so that busy periods come in fewer, bigger batches: fewer
   * wake-ups of the reader, less cost to the supervisors (default 0: only the
   * fibers already scheduled run first). The page reads with 50 ms.
   */
  readonly batch?: Duration.Input | undefined
}

/**
 * A `Stream` of the events of `root` and of every supervisor, pool and
 * limiter below it, including those started later (a restarted child
 * supervisor is followed into its new incarnation).
 *
 * **Details**
 *
 * The stream subscribes when it starts and unsubscribes when it ends. Events
 * wait in a ring of `capacity` (default 1024) for the reader: a reader that is
 * too slow never makes memory grow nor slows a supervisor down. When the ring
 * is full the **oldest** event is dropped (the newest are what a live view
 * needs) and counted; the next batch the reader gets starts with a
 * {@link Dropped} marker telling how many were lost there and in total.
 *
 * **Example** (Watching a crash and its restart)
 *
 * ```ts
 * import { Deferred, Effect, Fiber, Stream } from "effect"
 * import { ChildSpec, DynamicSupervisor, Observer } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const sup = yield* DynamicSupervisor.make({ name: "sessions" })
 *   const seen = yield* Observer.events(sup).pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
 *   yield* Effect.yieldNow
 *   const crash = yield* Deferred.make<void, string>()
 *   yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ id: "alice", start: Effect.void, run: () => Deferred.await(crash) }))
 *   yield* Deferred.fail(crash, "boom")
 *   const events = yield* Fiber.join(seen)
 *   return events.map((e) => (e._tag === "Exited" ? `${e._tag} ${e.reason}` : e._tag))
 * })
 * // => ["Started", "Exited crash", "Restarted"]
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const events = (root: Inspectable, options?: EventsOptions): Stream.Stream<StreamEvent, InvalidOptions> => {
  const capacity = options?.capacity ?? 1024
  const error = integerAtLeast("Observer.events", "capacity", capacity, 1)
  if (error) return Stream.fail(error)
  const batch = millisOf("Observer.events", "batch", options?.batch ?? 0, true)
  if (batch instanceof InvalidOptions) return Stream.fail(batch)
  return Inspect.isInspectable(root)
    ? Reader.stream(root, capacity, batch)
    : Stream.fail(notInspectable("Observer.events", root))
}

/**
 * Options of the web page, {@link layerHttp} and {@link serve}.
 *
 * @category models
 * @since 0.1.0
 */
export interface PageOptions {
  /** Where the page is mounted (default `"/observer"`); its data is under `path + "/events"`, `"/snapshot.json"`. */
  readonly path?: string | undefined
  /** The page's title (default `"effect-otp observer"`). */
  readonly title?: string | undefined
  /**
   * Let the page terminate children of a `Supervisor` or `DynamicSupervisor`
   * and restart children of a `Supervisor` (default `false`).
   */
  readonly actions?: boolean | undefined
  /** Answer clients that are not on this machine (default `false`: anyone else gets 403). */
  readonly allowRemote?: boolean | undefined
  /** How often the page gets a fresh snapshot and a point on each plot (default 1 second). */
  readonly interval?: Duration.Input | undefined
  /** Events buffered per open page (default 1024; the oldest are dropped and counted beyond). */
  readonly capacity?: number | undefined
  /** Children shown per node (default 200; the page says how many more there are). */
  readonly maxChildrenShown?: number | undefined
}

const resolve = (module: string, o: PageOptions): Http.Resolved | InvalidOptions => {
  const path = o.path ?? "/observer"
  if (typeof path !== "string" || !path.startsWith("/") || /[?#\s]/.test(path)) {
    return new InvalidOptions({ module, field: "path", value: path, expected: 'a path starting with "/"' })
  }
  const capacity = o.capacity ?? 1024
  const maxChildrenShown = o.maxChildrenShown ?? 200
  const error =
    integerAtLeast(module, "capacity", capacity, 1) ?? integerAtLeast(module, "maxChildrenShown", maxChildrenShown, 1)
  if (error) return error
  const decoded = Duration.fromInput(o.interval ?? "1 second")
  const interval = Option.isSome(decoded) ? decoded.value : undefined
  if (interval === undefined || !(Duration.toMillis(interval) > 0) || !Number.isFinite(Duration.toMillis(interval))) {
    return new InvalidOptions({ module, field: "interval", value: o.interval, expected: "a finite duration > 0" })
  }
  return {
    path: path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path,
    title: o.title ?? "effect-otp observer",
    actions: o.actions === true,
    allowRemote: o.allowRemote === true,
    interval,
    capacity,
    maxChildrenShown
  }
}

type Found =
  | { readonly _tag: "Supervisor"; readonly sup: Supervisor.Supervisor; readonly id: string }
  | {
      readonly _tag: "DynamicSupervisor"
      readonly sup: DynamicSupervisor.DynamicSupervisor<any>
      readonly info: DynamicSupervisor.ChildInfo
    }

/** Finds the child running as `pid` under `root`, through the live handles. */
const findChild = (root: unknown, pid: number): Found | undefined => {
  const queue: Array<unknown> = [root]
  while (queue.length > 0) {
    const h = queue.shift()
    if (Supervisor.isSupervisor(h)) {
      for (const c of Supervisor.whichChildrenUnsafe(h) ?? []) {
        if (typeof c.child === "string") continue
        if (c.child.pid === pid) return { _tag: "Supervisor", sup: h, id: c.id }
        queue.push(c.child.handle)
      }
    } else if (DynamicSupervisor.isDynamicSupervisor(h)) {
      for (const c of DynamicSupervisor.whichChildrenUnsafe(h) ?? []) {
        if (c.child === "restarting") continue
        if (c.pid === pid) return { _tag: "DynamicSupervisor", sup: h, info: c }
        queue.push(c.child.handle)
      }
    }
  }
  return undefined
}

const act =
  (root: Inspectable): Http.Act =>
  (op, pid) =>
    Effect.suspend(() => {
      const found = findChild(root, pid)
      if (found === undefined) return Effect.fail(`no child #${pid} under a Supervisor or DynamicSupervisor`)
      const what = found._tag === "Supervisor" ? found.id : (found.info.id ?? `#${pid}`)
      if (op === "terminate") {
        const done =
          found._tag === "Supervisor"
            ? Supervisor.terminateChild(found.sup, found.id)
            : DynamicSupervisor.terminateChild(found.sup, found.info)
        return Effect.mapError(Effect.as(done, `terminated ${what}`), (e) => e.message)
      }
      if (op === "restart") {
        if (found._tag !== "Supervisor") {
          return Effect.fail("restart is for children of a Supervisor (a DynamicSupervisor has no restartChild)")
        }
        return Supervisor.terminateChild(found.sup, found.id).pipe(
          Effect.andThen(Supervisor.restartChild(found.sup, found.id)),
          Effect.map((c) => `restarted ${what} as #${c.pid}`),
          Effect.mapError((e) => e.message)
        )
      }
      return Effect.fail(`unknown action ${JSON.stringify(op)} (terminate or restart)`)
    })

const routesLayer = (root: Inspect.Inspectable, o: Http.Resolved): Layer.Layer<never, never, HttpRouter.HttpRouter> =>
  Layer.effectDiscard(Http.routes(root, o, act(root)))

/**
 * Options of {@link layerHttp}: the page's, and the `root` to observe (a
 * value, or an effect that gives it, such as a supervisor's `Service` tag).
 *
 * @category models
 * @since 0.1.0
 */
export interface HttpOptions<E, R> extends PageOptions {
  readonly root: Inspectable | Effect.Effect<Inspectable, E, R>
}

/**
 * Mounts the Observer page on your own `effect/http` server, under `path`
 * (default `/observer`): the page, `path/events` (Server-Sent Events) and
 * `path/snapshot.json`.
 *
 * **Details**
 *
 * The layer adds its routes to the `HttpRouter` in context, so it goes into
 * `HttpRouter.serve` beside your own routes. Each open page holds one event
 * subscription, released when the page closes. Requests from other machines
 * are refused (403) unless `allowRemote` is set; `POST path/action`
 * (terminate or restart a child) answers 403 unless `actions` is set.
 *
 * **Example** (On a Node HTTP server, beside the app's own routes)
 *
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * import { DynamicSupervisor, Observer } from "effect-otp"
 * import { createServer } from "node:http"
 *
 * class Sessions extends DynamicSupervisor.Service<Sessions>()("app/Sessions", {}) {}
 *
 * const Routes = Layer.mergeAll(
 *   HttpRouter.add("GET", "/", HttpServerResponse.text("hello")),
 *   Observer.layerHttp({ path: "/observer", root: Sessions })
 * )
 *
 * const Server = HttpRouter.serve(Routes).pipe(
 *   Layer.provide(Sessions.layer),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
 * )
 * Layer.isLayer(Server) // => true
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerHttp = <E = never, R = never>(
  options: HttpOptions<E, R>
): Layer.Layer<never, E | InvalidOptions, HttpRouter.HttpRouter | Exclude<R, Scope.Scope>> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const o = resolve("Observer.layerHttp", options)
      if (o instanceof InvalidOptions) return yield* o
      const root = Effect.isEffect(options.root) ? yield* options.root : options.root
      if (!Inspect.isInspectable(root)) return yield* notInspectable("Observer.layerHttp", root)
      return routesLayer(root, o)
    })
  ) as Layer.Layer<never, E | InvalidOptions, HttpRouter.HttpRouter | Exclude<R, Scope.Scope>>

/**
 * Options of {@link serve}.
 *
 * @category models
 * @since 0.1.0
 */
export interface ServeOptions extends PageOptions {
  /** The interface to bind (default `"127.0.0.1"`). */
  readonly host?: string | undefined
  /** The port (default `0`: any free port; read it from the result). */
  readonly port?: number | undefined
}

/**
 * The standalone server {@link serve} started.
 *
 * @category models
 * @since 0.1.0
 */
export interface Server {
  /** The page's address, e.g. `http://127.0.0.1:41233/observer/`. */
  readonly url: string
  readonly host: string
  readonly port: number
}

/**
 * A standalone server for a quick look, without an `effect/http` server of
 * your own: serves the page of `root` with `node:http` on `host` (default
 * 127.0.0.1) and `port` (default any free one) until the Scope closes (open
 * pages are disconnected then).
 *
 * **Example** (A quick look at a supervisor)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DynamicSupervisor, Observer } from "effect-otp"
 *
 * const program = Effect.gen(function* () {
 *   const sup = yield* DynamicSupervisor.make({ name: "sessions" })
 *   const server = yield* Observer.serve(sup, { port: 0 })
 *   const response = yield* Effect.promise(() => fetch(`${server.url}snapshot.json`))
 *   const tree = (yield* Effect.promise(() => response.json())) as Observer.Snapshot
 *   return tree.kind
 * })
 * // => "DynamicSupervisor"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const serve = (
  root: Inspectable,
  options: ServeOptions = {}
): Effect.Effect<Server, InvalidOptions | ServeFailed, Scope.Scope> =>
  Effect.suspend((): Effect.Effect<Server, InvalidOptions | ServeFailed, Scope.Scope> => {
    const o = resolve("Observer.serve", options)
    if (o instanceof InvalidOptions) return Effect.fail(o)
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? 0
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return Effect.fail(
        new InvalidOptions({ module: "Observer.serve", field: "port", value: port, expected: "an integer in 0..65535" })
      )
    }
    if (!Inspect.isInspectable(root)) return Effect.fail(notInspectable("Observer.serve", root))
    return Http.listen(routesLayer(root, o), host, port, o.allowRemote).pipe(
      Effect.mapError((cause) => new ServeFailed({ host, port, cause })),
      Effect.map((bound): Server => {
        const shown = host.includes(":") ? `[${host}]` : host
        return { host, port: bound, url: `http://${shown}:${bound}${o.path === "/" ? "" : o.path}/` }
      })
    )
  })

/**
 * {@link serve} could not listen (the port is taken, the host is not an
 * address of this machine…).
 *
 * @category errors
 * @since 0.1.0
 */
export class ServeFailed extends Data.TaggedError("ServeFailed")<{
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message(): string {
    return `Observer.serve could not listen on ${this.host}:${this.port}: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}
