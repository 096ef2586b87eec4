/**
 * The Observer's HTTP side: the routes (page, JSON snapshot, Server-Sent
 * Events, actions) as an `effect/http` router layer, and a standalone
 * `node:http` server that runs the same router.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Inspect from "../../internal/inspect.ts"
import * as Page from "./page.ts"
import * as Reader from "./reader.ts"

/** @internal */
export interface Figures {
  /** children below the root that are running now */
  readonly children: number
  /** sum of every node's restart count */
  readonly restarts: number
  /** callers waiting for a pool connection, over every pool */
  readonly poolWaiting: number
  /** callers queued by a limiter, over every limiter and rate-limited supervisor */
  readonly limiterQueued: number
}

const num = (v: Inspect.Stat | undefined): number => (typeof v === "number" && Number.isFinite(v) ? v : 0)

/** @internal */
export const figures = (root: Inspect.NodeSnapshot): Figures => {
  let children = 0
  let restarts = 0
  let poolWaiting = 0
  let limiterQueued = 0
  const stack: Array<Inspect.NodeSnapshot> = [root]
  while (stack.length > 0) {
    const node = stack.pop()!
    if (node !== root && node.state === "running") children++
    restarts += node.restarts
    if (node.kind === "Pool") poolWaiting += num(node.stats?.waiting)
    else if (node.kind === "RateLimiter" || node.kind === "RateLimitedSupervisor") {
      limiterQueued += num(node.stats?.queued)
    }
    for (const c of node.children) stack.push(c)
  }
  return { children, restarts, poolWaiting, limiterQueued }
}

/** A node with at most `max` children per node; the rest are counted in `omitted`. @internal */
export type Pruned = Omit<Inspect.NodeSnapshot, "children"> & {
  readonly children: ReadonlyArray<Pruned>
  readonly omitted?: number
}

/** @internal */
export const prune = (node: Inspect.NodeSnapshot, max: number): Pruned => {
  const kids = node.children
  if (kids.length === 0) return node
  const shown = kids.length > max ? kids.slice(0, max) : kids
  const children = shown.map((c) => prune(c, max))
  return kids.length > max ? { ...node, children, omitted: kids.length - max } : { ...node, children }
}

/** @internal */
export interface Resolved {
  readonly path: string
  readonly title: string
  readonly actions: boolean
  readonly allowRemote: boolean
  readonly interval: Duration.Duration
  readonly capacity: number
  readonly maxChildrenShown: number
}

const encoder = new TextEncoder()
const frame = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

/** Wakes one waiter; notifications while nobody waits collapse into one. */
class Signal {
  private pending = false
  private waiter: (() => void) | undefined
  readonly notify = () => {
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter()
    } else this.pending = true
  }
  readonly wait: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.pending) {
      this.pending = false
      resume(Effect.void)
      return
    }
    this.waiter = () => resume(Effect.void)
    return Effect.sync(() => {
      this.waiter = undefined
    })
  })
}

const pageBatchMillis = 50

/**
 * The snapshot part of a page's frame (`{"figures":…,"root":…}`), shared by
 * every open page: the periodic frames of pages that tick within 100 ms of
 * each other reuse one snapshot (a big tree is walked once per tick, not once
 * per page). A frame sent after events (`fresh`) always takes a new one.
 *
 * @internal
 */
export type Snapshots = (at: number, fresh: boolean) => string

/** @internal */
export const snapshots = (root: Inspect.Inspectable, o: Resolved): Snapshots => {
  let cached: { readonly at: number; readonly body: string } | undefined
  return (at, fresh) => {
    if (fresh || cached === undefined || at - cached.at >= 100 || at < cached.at) {
      const tree = root[Inspect.TypeId].snapshot()
      cached = { at, body: JSON.stringify({ figures: figures(tree), root: prune(tree, o.maxChildrenShown) }) }
    }
    return cached.body
  }
}

/** How long after an event the page gets a fresh snapshot (events come in bursts: a crash, then its restart). */
const settle = Duration.millis(30)

/**
 * The Server-Sent Events of one page: a snapshot every `interval` (the first
 * at once, marked `tick` for the plots), the events as they come (through a
 * bounded reader: `dropped` frames say how many it lost), and a fresh snapshot
 * shortly after each burst of events.
 *
 * @internal
 */
export const sse = (root: Inspect.Inspectable, o: Resolved, shared: Snapshots): Stream.Stream<Uint8Array> =>
  Stream.unwrap(
    Effect.sync(() => {
      const changed = new Signal()
      const snapshot = (tick: boolean) =>
        Effect.map(
          Clock.currentTimeMillis,
          (at) => `event: snapshot\ndata: {"at":${at},"tick":${tick},${shared(at, !tick).slice(1)}\n\n`
        )
      const ticks = Stream.mapEffect(Stream.tick(o.interval), () => snapshot(true))
      const refresh = Stream.fromEffectRepeat(
        Effect.andThen(changed.wait, Effect.andThen(Effect.sleep(settle), snapshot(false)))
      )
      // one write per batch of events, however many it holds
      // a page needs no sub-50 ms latency: bursts come in one batch (fewer wake-ups, less cost to the emitters)
      const events = Stream.mapArray(Reader.stream(root, o.capacity, pageBatchMillis), (batch) => {
        changed.notify()
        let text = ""
        for (const e of batch) text += e._tag === "Dropped" ? frame("dropped", e) : frame("inspect", e)
        return [text] as const
      })
      return Stream.merge(ticks, Stream.merge(events, refresh)).pipe(Stream.map((s) => encoder.encode(s)))
    })
  )

const isLoopback = (address: string): boolean =>
  address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.") || address === "localhost"

const forbidden = HttpServerResponse.text("the Observer answers only to 127.0.0.1 (allowRemote is off)", {
  status: 403
})

const guarded =
  (
    o: Resolved,
    f: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  ) =>
  (request: HttpServerRequest.HttpServerRequest): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
    o.allowRemote || Option.match(request.remoteAddress, { onNone: () => true, onSome: isLoopback })
      ? f(request)
      : Effect.succeed(forbidden)

/** @internal */
export type Act = (op: string, pid: number) => Effect.Effect<string, string>

/** The routes, added to the router in context. @internal */
export const routes = (root: Inspect.Inspectable, o: Resolved, act: Act) =>
  Effect.gen(function* () {
    const router = yield* HttpRouter.HttpRouter
    const html = Page.render({ title: o.title, actions: o.actions })
    const shared = snapshots(root, o)
    const page = guarded(o, () => Effect.succeed(HttpServerResponse.html(html)))
    const base = (o.path === "/" ? "" : o.path) as "" | `/${string}`
    // the router ignores a trailing slash: this serves `base` and `base/`
    yield* router.add("GET", base === "" ? "/" : base, page)
    yield* router.add(
      "GET",
      `${base}/snapshot.json`,
      guarded(o, () => Effect.sync(() => HttpServerResponse.jsonUnsafe(root[Inspect.TypeId].snapshot())))
    )
    yield* router.add(
      "GET",
      `${base}/events`,
      guarded(o, () =>
        Effect.succeed(
          HttpServerResponse.stream(sse(root, o, shared), {
            contentType: "text/event-stream",
            headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
          })
        )
      )
    )
    yield* router.add(
      "POST",
      `${base}/action`,
      guarded(o, (request) =>
        !o.actions
          ? Effect.succeed(HttpServerResponse.text("actions are off (Observer option actions: true)", { status: 403 }))
          : request.json.pipe(
              Effect.flatMap((body) => {
                const b = body as { readonly op?: unknown; readonly pid?: unknown }
                return typeof b.op === "string" && typeof b.pid === "number"
                  ? act(b.op, b.pid)
                  : Effect.fail("expected { op, pid }")
              }),
              Effect.match({
                onFailure: (e) => HttpServerResponse.text(typeof e === "string" ? e : "bad request", { status: 400 }),
                onSuccess: (message) => HttpServerResponse.text(message)
              })
            )
      )
    )
  })

/**
 * Serves `layer` (a router layer) with `node:http` on `host:port`, closed
 * with the Scope (open event streams included). Returns the port bound.
 *
 * @internal
 */
export const listen = (
  layer: Layer.Layer<never, never, HttpRouter.HttpRouter>,
  host: string,
  port: number,
  allowRemote: boolean
): Effect.Effect<number, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const http = yield* Effect.promise(() => import("node:http"))
    const { Readable } = yield* Effect.promise(() => import("node:stream"))
    const web = HttpRouter.toWebHandler(layer, { disableLogger: true })
    yield* Effect.addFinalizer(() => Effect.promise(() => web.dispose()))
    const server = http.createServer((req, res) => {
      if (!allowRemote && !isLoopback(req.socket.remoteAddress ?? "")) {
        res.writeHead(403).end("the Observer answers only to 127.0.0.1 (allowRemote is off)")
        return
      }
      const controller = new AbortController()
      res.on("close", () => controller.abort())
      const headers = new Headers()
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string") headers.set(k, v)
        else if (Array.isArray(v)) for (const x of v) headers.append(k, x)
      }
      const hasBody = req.method !== "GET" && req.method !== "HEAD"
      const request = new Request(`http://${req.headers.host ?? `${host}:${port}`}${req.url ?? "/"}`, {
        method: req.method ?? "GET",
        headers,
        signal: controller.signal,
        ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: "half" } : {})
      } as RequestInit)
      web.handler(request).then(
        async (response) => {
          res.writeHead(response.status, Object.fromEntries(response.headers))
          if (response.body === null) return void res.end()
          res.flushHeaders()
          const reader = response.body.getReader()
          res.on("close", () => void reader.cancel().catch(() => {}))
          try {
            while (true) {
              const { done, value } = await reader.read()
              if (done) break
              // a slow reader: wait for the socket instead of buffering without bound
              if (!res.write(value)) await new Promise((resolve) => res.once("drain", resolve))
            }
          } catch {
            // the client went away
          }
          res.end()
        },
        (error) => {
          if (!res.headersSent) res.writeHead(500)
          res.end(String(error))
        }
      )
    })
    yield* Effect.addFinalizer(() =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
    )
    return yield* Effect.callback<number, Error>((resume) => {
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(port, host, () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : port))
      })
    })
  })
