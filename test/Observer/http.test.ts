/**
 * The Observer's HTTP side, in process: the page (self-contained), the JSON
 * snapshot, the Server-Sent Events a page reads, who may ask (loopback only
 * unless allowed), actions off by default, and bad options.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Logger, Option, Scope } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { ChildSpec, DynamicSupervisor, Observer } from "effect-otp"
import * as Inspect from "../../src/internal/inspect.ts"
import * as Http from "../../src/Observer/internal/http.ts"
import * as Page from "../../src/Observer/internal/page.ts"

const decoder = new TextDecoder()

/** Reads SSE frames from a fetch response until `done` says so (or 200 frames). */
const readFrames = (response: Response, done: (frames: ReadonlyArray<{ event: string; data: any }>) => boolean) =>
  Effect.promise(async () => {
    const reader = response.body!.getReader()
    const frames: Array<{ event: string; data: any }> = []
    let buffer = ""
    while (!done(frames) && frames.length < 200) {
      const { done: end, value } = await reader.read()
      if (end) break
      buffer += decoder.decode(value, { stream: true })
      let cut: number
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const raw = buffer.slice(0, cut)
        buffer = buffer.slice(cut + 2)
        const event = /^event: (.*)$/m.exec(raw)?.[1] ?? "message"
        const data = /^data: (.*)$/m.exec(raw)?.[1]
        frames.push({ event, data: data === undefined ? undefined : JSON.parse(data) })
      }
    }
    await reader.cancel()
    return frames
  })

describe("the page", () => {
  it("is one self-contained document: no script, style, image or font from anywhere else", () => {
    const html = Page.render({ title: "t", actions: false })
    assert.notMatch(html, /<(script|link|img|iframe)[^>]+(src|href)=/i)
    assert.notMatch(html, /@import|url\(/i)
    assert.notMatch(html, /https?:\/\//i)
    assert.include(html, 'new EventSource(base + "events")')
  })

  it("escapes its title", () => {
    assert.include(Page.render({ title: "<b>&", actions: false }), "<title>&lt;b&gt;&amp;</title>")
  })
})

describe("the page's snapshots", () => {
  it("pages ticking within 100 ms share one snapshot; a frame after events always takes a fresh one", () => {
    let taken = 0
    const root: Inspect.Inspectable = {
      [Inspect.TypeId]: {
        kind: "DynamicSupervisor",
        name: "h",
        snapshot: () => {
          taken++
          return { kind: "DynamicSupervisor", type: "supervisor", state: "running", restarts: taken, children: [] }
        },
        subscribe: () => () => {},
        childInspectors: () => []
      }
    }
    const shared = Http.snapshots(root, {
      path: "/observer",
      title: "t",
      actions: false,
      allowRemote: false,
      interval: Duration.seconds(1),
      capacity: 16,
      maxChildrenShown: 10
    })
    const a = shared(1000, false)
    assert.strictEqual(shared(1050, false), a)
    assert.strictEqual(taken, 1)
    shared(1100, false)
    assert.strictEqual(taken, 2)
    shared(1120, true)
    assert.strictEqual(taken, 3)
    assert.deepStrictEqual(JSON.parse(shared(1130, false)).root.restarts, 3)
  })
})

describe("Observer.serve", () => {
  it.live("binds to 127.0.0.1 and serves the page, the JSON snapshot and the live events of a crash", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make({ name: "sessions" })
      const crash = yield* Deferred.make<void, string>()
      yield* DynamicSupervisor.startChild(
        sup,
        ChildSpec.make({ id: "alice", start: Effect.void, run: () => Deferred.await(crash), restart: "temporary" })
      )
      const server = yield* Observer.serve(sup, { interval: "50 millis" })
      assert.strictEqual(server.host, "127.0.0.1")
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/observer\/$/)

      const page = yield* Effect.promise(() => fetch(server.url))
      assert.strictEqual(page.status, 200)
      assert.include(page.headers.get("content-type") ?? "", "text/html")
      assert.include(yield* Effect.promise(() => page.text()), "effect-otp observer")

      const json = yield* Effect.promise(() => fetch(`${server.url}snapshot.json`).then((r) => r.json()))
      assert.deepStrictEqual(json, JSON.parse(JSON.stringify(Observer.snapshotUnsafe(sup))))

      const events = yield* Effect.promise(() => fetch(`${server.url}events`))
      assert.include(events.headers.get("content-type") ?? "", "text/event-stream")
      const first = yield* readFrames(events, (f) => f.length >= 1)
      assert.strictEqual(first[0]!.event, "snapshot")
      assert.isTrue(first[0]!.data.tick)
      assert.deepStrictEqual(first[0]!.data.figures, { children: 1, restarts: 0, poolWaiting: 0, limiterQueued: 0 })
      assert.strictEqual(first[0]!.data.root.children[0].id, "alice")

      const live = yield* Effect.promise(() => fetch(`${server.url}events`))
      const reading = yield* Effect.forkChild(
        readFrames(live, (f) => f.some((x) => x.event === "inspect" && x.data._tag === "Exited"))
      )
      yield* Effect.sleep("100 millis")
      yield* Deferred.fail(crash, "boom")
      const frames = yield* Fiber.join(reading)
      const exited = frames.find((x) => x.event === "inspect" && x.data._tag === "Exited")!.data
      assert.strictEqual(exited.reason, "crash")
      assert.strictEqual(exited.id, "alice")
      assert.include(exited.cause, "boom")
    }).pipe(Effect.scoped, Effect.provideService(Logger.CurrentLoggers, new Set()))
  )

  it.live("closing its Scope stops the server even while a page is connected", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make({ name: "s" })
      const scope = yield* Scope.make()
      const server = yield* Scope.provide(Observer.serve(sup), scope)
      const events = yield* Effect.promise(() => fetch(`${server.url}events`))
      yield* readFrames(events, (f) => f.length >= 1)
      const open = yield* Effect.promise(() => fetch(`${server.url}events`))
      assert.strictEqual(open.status, 200)
      yield* Scope.close(scope, Exit.void)
      const after = yield* Effect.promise(() =>
        fetch(server.url).then(
          () => "answered",
          () => "refused"
        )
      )
      assert.strictEqual(after, "refused")
    })
  )

  it.live("a page that closes leaves no subscription behind", () =>
    Effect.gen(function* () {
      const owner: { listeners: Inspect.Listeners } = { listeners: undefined }
      const root: Inspect.Inspectable = {
        [Inspect.TypeId]: {
          kind: "DynamicSupervisor",
          name: "h",
          snapshot: () => ({
            kind: "DynamicSupervisor",
            type: "supervisor",
            state: "running",
            restarts: 0,
            children: []
          }),
          subscribe: (l) => Inspect.addListener(owner, l),
          childInspectors: () => []
        }
      }
      const server = yield* Observer.serve(root)
      const pages = yield* Effect.forEach([1, 2, 3], () => Effect.promise(() => fetch(`${server.url}events`)))
      const readers = pages.map((page) => page.body!.getReader())
      // each page got its first frame and holds a subscription
      yield* Effect.forEach(readers, (reader) => Effect.promise(() => reader.read()))
      for (let i = 0; i < 100 && owner.listeners?.size !== 3; i++) yield* Effect.sleep("10 millis")
      assert.strictEqual(owner.listeners?.size, 3)
      yield* Effect.forEach(readers, (reader) => Effect.promise(() => reader.cancel()))
      for (let i = 0; i < 100 && owner.listeners !== undefined; i++) yield* Effect.sleep("10 millis")
      assert.isUndefined(owner.listeners, "every page's subscription was released")
    }).pipe(Effect.scoped)
  )

  it.effect("bad options are InvalidOptions naming the field", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make()
      const cases: Array<[Observer.ServeOptions, string]> = [
        [{ port: -1 }, "port"],
        [{ port: 70000 }, "port"],
        [{ path: "observer" }, "path"],
        [{ interval: 0 }, "interval"],
        [{ capacity: 0 }, "capacity"],
        [{ maxChildrenShown: 0.5 }, "maxChildrenShown"]
      ]
      for (const [options, field] of cases) {
        const error = yield* Effect.flip(Observer.serve(sup, options))
        assert.strictEqual(error._tag, "InvalidOptions")
        assert.strictEqual(error._tag === "InvalidOptions" && error.field, field)
      }
      const notRoot = yield* Effect.flip(Observer.serve({}))
      assert.strictEqual(notRoot._tag === "InvalidOptions" && notRoot.field, "root")
    })
  )
})

describe("Observer.layerHttp", () => {
  /** The router's handler for one request, as a remote or local client. */
  const request = (
    layer: Layer.Layer<never, unknown, HttpRouter.HttpRouter>,
    method: string,
    url: string,
    remoteAddress: string,
    body?: unknown
  ) =>
    Effect.gen(function* () {
      const handler = yield* HttpRouter.toHttpEffect(layer)
      const init: RequestInit =
        body === undefined
          ? { method }
          : { method, body: JSON.stringify(body), headers: { "content-type": "application/json" } }
      const req = HttpServerRequest.fromWeb(new Request(`http://host${url}`, init)).modify({
        remoteAddress: Option.some(remoteAddress)
      })
      const response = yield* handler.pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, req))
      return HttpServerResponse.toWeb(response)
    })

  it.effect("mounts under its path on the app's router; answers loopback clients only unless allowRemote", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make({ name: "s" })
      const layer = Observer.layerHttp({ path: "/ops/observer", root: sup })
      const local = yield* request(layer, "GET", "/ops/observer", "127.0.0.1")
      assert.strictEqual(local.status, 200)
      const v6 = yield* request(layer, "GET", "/ops/observer/snapshot.json", "::1")
      assert.strictEqual(v6.status, 200)
      const remote = yield* request(layer, "GET", "/ops/observer/snapshot.json", "10.0.0.7")
      assert.strictEqual(remote.status, 403)
      const open = Observer.layerHttp({ path: "/ops/observer", root: sup, allowRemote: true })
      assert.strictEqual((yield* request(open, "GET", "/ops/observer/snapshot.json", "10.0.0.7")).status, 200)
    })
  )

  it.effect("actions are refused (403) unless enabled", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make({ name: "s" })
      const response = yield* request(Observer.layerHttp({ root: sup }), "POST", "/observer/action", "127.0.0.1")
      assert.strictEqual(response.status, 403)
    })
  )

  it.effect("with actions on, terminate stops the child with that pid through its supervisor", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make({ name: "s" })
      const a = yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ id: "a", start: Effect.void }))
      const b = yield* DynamicSupervisor.startChild(sup, ChildSpec.make({ id: "b", start: Effect.void }))
      const layer = Observer.layerHttp({ root: sup, actions: true })
      const ok = yield* request(layer, "POST", "/observer/action", "127.0.0.1", { op: "terminate", pid: a.pid })
      assert.strictEqual(ok.status, 200, yield* Effect.promise(() => ok.text()))
      assert.deepStrictEqual(
        DynamicSupervisor.whichChildrenUnsafe(sup)?.map((c) => c.pid),
        [b.pid]
      )
      const gone = yield* request(layer, "POST", "/observer/action", "127.0.0.1", { op: "terminate", pid: a.pid })
      assert.strictEqual(gone.status, 400)
      const unknown = yield* request(layer, "POST", "/observer/action", "127.0.0.1", { op: "explode", pid: b.pid })
      assert.strictEqual(unknown.status, 400)
    })
  )

  it.effect(
    "its root may be an effect, such as a supervisor's Service tag; a value that cannot be inspected is InvalidOptions",
    () =>
      Effect.gen(function* () {
        class Sessions extends DynamicSupervisor.Service<Sessions>()("test/Sessions", {}) {}
        const layer = Observer.layerHttp({ root: Sessions }).pipe(Layer.provide(Sessions.layer))
        assert.strictEqual((yield* request(layer, "GET", "/observer/snapshot.json", "127.0.0.1")).status, 200)
        const bad = yield* Effect.flip(
          Layer.build(Observer.layerHttp({ root: {} }).pipe(Layer.provide(HttpRouter.layer)))
        )
        assert.strictEqual(bad._tag === "InvalidOptions" && bad.field, "root")
      })
  )
})
