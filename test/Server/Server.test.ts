/**
 * Server: OTP's GenServer. The applicable cases of Elixir's gen_server_test.exs
 * (call/cast/stop, start and start_link, via names, `:noproc`, call timeouts,
 * child_spec) named for the rule, and the rules of issue 11: a call waiting on
 * an incarnation that ends fails at once with ServerDown; a call by name
 * reaches the current incarnation; interruption withdraws a pending request
 * and never cuts a running handler short.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Logger,
  Metric,
  References,
  Scheduler,
  Schema,
  Scope,
  Tracer
} from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { TestClock } from "effect/testing"
import { DynamicSupervisor, RateLimitedSupervisor, Registry, Server, Supervisor } from "effect-otp"
import { eventually, settle } from "../utils/lifecycle.ts"

// ---- a Stack, as gen_server_test.exs has -------------------------------------------------

const Pop = Rpc.make("Pop", { success: Schema.String, error: Schema.Literal("empty") })
const Push = Rpc.make("Push", { payload: { item: Schema.String } })
const NoReply = Rpc.make("NoReply", { success: Schema.String })
const Crash = Rpc.make("Crash")
const Size = Rpc.make("Size", { success: Schema.Number })

interface Probe {
  starts: number
  live: number
  handled: Array<string>
}
const probe = (): Probe => ({ starts: 0, live: 0, handled: [] })

/** The tag of a call's error (the Rpc's own errors here are string literals). */
const tagOf = (e: string | { readonly _tag: string }): string => (typeof e === "string" ? e : e._tag)

const stackOf = (p: Probe) =>
  Server.make("Stack", [Pop, Push, NoReply, Crash, Size], {
    init: (items: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        p.starts++
        yield* Effect.acquireRelease(
          Effect.sync(() => p.live++),
          () => Effect.sync(() => p.live--)
        )
        const stack = [...items]
        return {
          Pop: () =>
            Effect.suspend(() => {
              p.handled.push("Pop")
              const top = stack.shift()
              return top === undefined ? Effect.fail("empty" as const) : Effect.succeed(top)
            }),
          Push: ({ item }) => Effect.sync(() => void (p.handled.push(`Push ${item}`), stack.unshift(item))),
          NoReply: () => Effect.never,
          Crash: () => Effect.die("boom"),
          Size: () => Effect.sync(() => stack.length)
        }
      })
  })

describe("Server.childSpec", () => {
  it.effect("generates a child spec: id is the definition's name, restart and shutdown are the caller's", () =>
    Effect.sync(() => {
      const Stack = stackOf(probe())
      const spec = Server.childSpec(Stack, ["hello"])
      assert.strictEqual(spec.id, "Stack")
      assert.strictEqual(spec.restart, "permanent")
      assert.deepStrictEqual(spec.shutdown, { _tag: "Timeout", millis: 5000 })
      const custom = Server.childSpec(Stack, ["hello"], { id: "id", restart: "temporary", shutdown: "infinity" })
      assert.strictEqual(custom.id, "id")
      assert.strictEqual(custom.restart, "temporary")
      assert.deepStrictEqual(custom.shutdown, { _tag: "Infinity" })
    })
  )

  it.effect("init runs in the child's Scope: what it acquires is released when the incarnation ends", () =>
    Effect.gen(function* () {
      const p = probe()
      const sup = yield* DynamicSupervisor.make()
      const child = yield* DynamicSupervisor.startChild(sup, Server.childSpec(stackOf(p), ["hello"]))
      assert.strictEqual(p.live, 1)
      yield* DynamicSupervisor.terminateChild(sup, child)
      assert.strictEqual(p.live, 0)
    }).pipe(Effect.scoped)
  )

  it.effect("a failing init fails startChild with its error and leaves nothing behind", () =>
    Effect.gen(function* () {
      let live = 0
      const Broken = Server.make("Broken", [Size], {
        init: () =>
          Effect.andThen(
            Effect.acquireRelease(
              Effect.sync(() => live++),
              () => Effect.sync(() => live--)
            ),
            Effect.fail("no db" as const)
          )
      })
      const sup = yield* DynamicSupervisor.make()
      const error = yield* Effect.flip(DynamicSupervisor.startChild(sup, Server.childSpec(Broken)))
      assert.strictEqual(error, "no db")
      assert.strictEqual(live, 0)
      assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).active, 0)
    }).pipe(Effect.scoped)
  )

  it.effect("bad options fail the start with InvalidOptions naming the field and value", () =>
    Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make()
      const Stack = stackOf(probe())
      const e1 = yield* Effect.flip(
        DynamicSupervisor.startChild(sup, Server.childSpec(Stack, [], { mailboxCapacity: 0 }))
      )
      assert.strictEqual(e1._tag, "InvalidOptions")
      if (e1._tag === "InvalidOptions") {
        assert.strictEqual(e1.field, "mailboxCapacity")
        assert.strictEqual(e1.value, 0)
      }
      const Bad = Server.make("Bad", [Size], { init: () => Effect.die("never"), mailboxCapacity: 1.5 })
      const e2 = yield* Effect.flip(DynamicSupervisor.startChild(sup, Server.childSpec(Bad)))
      assert.strictEqual(e2._tag, "InvalidOptions")
      if (e2._tag === "InvalidOptions") assert.strictEqual(e2.field, "mailboxCapacity")
      const e3 = yield* Effect.flip(Server.start(Server.make("", [Size], { init: () => Effect.die("never") })))
      assert.strictEqual(e3._tag, "InvalidOptions")
      const e4 = yield* Effect.exit(
        Server.call(yield* Server.start(Stack, []), "Size", undefined, { timeout: -1 as unknown as "1 second" })
      )
      assert.isTrue(Exit.isFailure(e4))
    }).pipe(Effect.scoped)
  )

  it.effect("runs under every supervisor kind: Supervisor (static), DynamicSupervisor, and unsupervised start", () =>
    Effect.gen(function* () {
      const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof stackOf>>>({ keys: "unique" })
      const Stack = stackOf(probe())
      yield* Supervisor.make([Registry.via(names, "static", Server.childSpec(Stack, ["s"]))], {
        strategy: "oneForOne"
      })
      const dyn = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(dyn, Registry.via(names, "dynamic", Server.childSpec(Stack, ["d"])))
      const alone = yield* Server.start(Stack, ["u"])
      assert.strictEqual(yield* Server.call(Server.via(names, "static"), "Pop"), "s")
      assert.strictEqual(yield* Server.call(Server.via(names, "dynamic"), "Pop"), "d")
      assert.strictEqual(yield* Server.call(alone, "Pop"), "u")
    }).pipe(Effect.scoped)
  )
})

describe("Server.make with an RpcGroup", () => {
  it.effect("runs a protocol given as an RpcGroup.make group, as it runs a list of Rpcs", () =>
    Effect.gen(function* () {
      const Echo = Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String })
      const server = yield* Server.start(
        Server.make("Echo", RpcGroup.make(Echo), {
          init: () => Effect.succeed({ Echo: ({ text }: { readonly text: string }) => Effect.succeed(text) })
        }),
        undefined
      )
      assert.strictEqual(yield* Server.call(server, "Echo", { text: "hi" }), "hi")
    }).pipe(Effect.scoped)
  )
})

describe("restart types", () => {
  it.effect("temporary: a crashed server is not restarted, and its name answers NoServer", () =>
    Effect.gen(function* () {
      const p = probe()
      const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof stackOf>>>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(
        sup,
        Registry.via(names, "s", Server.childSpec(stackOf(p), [], { restart: "temporary" }))
      )
      assert.strictEqual((yield* Effect.flip(Server.call(Server.via(names, "s"), "Crash")))._tag, "ServerDown")
      yield* settle
      assert.strictEqual(p.starts, 1)
      assert.strictEqual((yield* Effect.flip(Server.call(Server.via(names, "s"), "Size")))._tag, "NoServer")
      assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).specs, 0)
    }).pipe(Effect.scoped)
  )

  it.effect("transient: restarted after a crash, not after a normal stop; under a RateLimitedSupervisor too", () =>
    Effect.gen(function* () {
      const p = probe()
      const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof stackOf>>>({ keys: "unique" })
      const sup = yield* RateLimitedSupervisor.make({ limit: 100, window: "1 second" })
      yield* RateLimitedSupervisor.startChild(
        sup,
        Registry.via(names, "s", Server.childSpec(stackOf(p), ["x"], { restart: "transient" }))
      )
      const s = Server.via(names, "s")
      yield* Effect.flip(Server.call(s, "Crash"))
      yield* eventually(() => p.starts === 2 && Registry.whereisUnsafe(names, "s") !== undefined)
      assert.strictEqual(yield* Server.call(s, "Pop"), "x")
      yield* Server.stop(s)
      yield* settle
      assert.strictEqual(p.starts, 2)
      assert.strictEqual(p.live, 0)
    }).pipe(Effect.scoped)
  )

  it.effect("a typed client calls, casts and stops by name", () =>
    Effect.gen(function* () {
      const p = probe()
      const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof stackOf>>>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(
        sup,
        Registry.via(names, "s", Server.childSpec(stackOf(p), [], { restart: "transient" }))
      )
      const stack = Server.client(Server.via(names, "s"))
      yield* stack.cast.Push({ item: "a" })
      assert.strictEqual(yield* stack.call.Pop(), "a")
      assert.strictEqual(yield* stack.call.Size(undefined, { timeout: "1 second" }), 0)
      yield* stack.stop()
      assert.strictEqual(tagOf(yield* Effect.flip(stack.call.Pop())), "NoServer")
    }).pipe(Effect.scoped)
  )
})

describe("Server.call and Server.cast", () => {
  it.effect("start_link, call and cast: replies come back, casts are handled in order before later calls", () =>
    Effect.gen(function* () {
      const p = probe()
      const sup = yield* DynamicSupervisor.make()
      const stack = (yield* DynamicSupervisor.startChild(sup, Server.childSpec(stackOf(p), ["hello"]))).handle
      assert.strictEqual(yield* Server.call(stack, "Pop"), "hello")
      yield* Server.cast(stack, "Push", { item: "world" })
      yield* Server.cast(stack, "Push", { item: "again" })
      assert.strictEqual(yield* Server.call(stack, "Pop"), "again")
      assert.strictEqual(yield* Server.call(stack, "Pop"), "world")
      assert.deepStrictEqual(p.handled, ["Pop", "Push world", "Push again", "Pop", "Pop"])
    }).pipe(Effect.scoped)
  )

  it.effect("a failure with the Rpc's error is the reply: the server goes on", () =>
    Effect.gen(function* () {
      const p = probe()
      const stack = yield* Server.start(stackOf(p), [])
      const error = yield* Effect.flip(Server.call(stack, "Pop"))
      assert.strictEqual(error, "empty")
      yield* Server.cast(stack, "Push", { item: "x" })
      assert.strictEqual(yield* Server.call(stack, "Pop"), "x")
      assert.strictEqual(p.starts, 1)
    }).pipe(Effect.scoped)
  )

  it.effect("a cast never runs the handler in the caller's turn", () =>
    Effect.gen(function* () {
      const p = probe()
      const stack = yield* Server.start(stackOf(p), [])
      yield* Server.cast(stack, "Push", { item: "x" })
      assert.deepStrictEqual(p.handled, [])
      yield* eventually(() => p.handled.length === 1)
    }).pipe(Effect.scoped)
  )

  it.effect("cast to a name with no server is dropped without error, as GenServer.cast", () =>
    Effect.gen(function* () {
      const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof stackOf>>>({ keys: "unique" })
      yield* Server.cast(Server.via(names, "nobody"), "Push", { item: "x" })
    }).pipe(Effect.scoped)
  )

  it.effect("handles one message at a time, in arrival order, even when handlers suspend", () =>
    Effect.gen(function* () {
      const Slow = Rpc.make("Slow", { payload: { n: Schema.Number }, success: Schema.Number })
      const log: Array<string> = []
      let running = 0
      let maxRunning = 0
      const Server1 = Server.make("Serial", [Slow], {
        init: () =>
          Effect.succeed({
            Slow: ({ n }) =>
              Effect.gen(function* () {
                running++
                maxRunning = Math.max(maxRunning, running)
                log.push(`start ${n}`)
                yield* Effect.sleep(`${10 - n} millis`)
                log.push(`end ${n}`)
                running--
                return n
              })
          })
      })
      const server = yield* Server.start(Server1)
      const fibers = []
      for (let n = 0; n < 5; n++) fibers.push(yield* Effect.forkChild(Server.call(server, "Slow", { n })))
      yield* TestClock.adjust("1 second")
      const replies = []
      for (const f of fibers) replies.push(yield* Fiber.join(f))
      assert.deepStrictEqual(replies, [0, 1, 2, 3, 4])
      assert.strictEqual(maxRunning, 1)
      assert.deepStrictEqual(
        log,
        [0, 1, 2, 3, 4].flatMap((n) => [`start ${n}`, `end ${n}`])
      )
    }).pipe(Effect.scoped)
  )

  it.effect("handlers run in the server's own context, not the caller's", () =>
    Effect.gen(function* () {
      class Tenant extends Context.Service<Tenant, string>()("Tenant") {}
      const Who = Rpc.make("Who", { success: Schema.String })
      const Ctx = Server.make("Ctx", [Who], {
        init: () =>
          Effect.succeed({
            Who: () =>
              Effect.gen(function* () {
                const self = yield* Server.CurrentServer
                const annotations = yield* References.CurrentLogAnnotations
                return `${yield* Tenant} ${self.name} ${String(annotations["caller"] ?? "-")}`
              })
          })
      })
      const server = yield* Server.start(Ctx).pipe(Effect.provideService(Tenant, "server's tenant"))
      const who = yield* Server.call(server, "Who").pipe(
        Effect.provideService(Tenant, "caller's tenant"),
        Effect.annotateLogs({ caller: "yes" })
      )
      assert.strictEqual(who, "server's tenant Ctx -")
    }).pipe(Effect.scoped)
  )

  it.effect("a call to a server that has ended fails with NoServer (Elixir :noproc)", () =>
    Effect.gen(function* () {
      const stack = yield* Server.start(stackOf(probe()), ["a"])
      yield* Server.stop(stack)
      const error = yield* Effect.flip(Server.call(stack, "Size"))
      assert.strictEqual(error._tag, "NoServer")
      const again = yield* Effect.flip(Server.stop(stack))
      assert.strictEqual(again._tag, "NoServer")
    }).pipe(Effect.scoped)
  )

  it.effect("a call to a name with no live server fails with NoServer carrying the name", () =>
    Effect.gen(function* () {
      const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof stackOf>>>({ keys: "unique" })
      const error = yield* Effect.flip(Server.call(Server.via(names, "nobody"), "Size"))
      assert.strictEqual(error._tag, "NoServer")
      if (error._tag === "NoServer") assert.strictEqual(error.name, "nobody")
    }).pipe(Effect.scoped)
  )

  it.effect("a call times out after 5 seconds by default with CallTimeout, and the request is withdrawn", () =>
    Effect.gen(function* () {
      const p = probe()
      const stack = yield* Server.start(stackOf(p), ["a"])
      const blocked = yield* Effect.forkChild(Server.call(stack, "NoReply"))
      yield* settle
      const queued = yield* Effect.forkChild(Server.call(stack, "Pop"))
      yield* settle
      yield* TestClock.adjust("4999 millis")
      assert.isUndefined(blocked.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const e1 = yield* Effect.flip(Fiber.join(blocked))
      const e2 = yield* Effect.flip(Fiber.join(queued))
      assert.strictEqual(e1._tag, "CallTimeout")
      assert.strictEqual(tagOf(e2), "CallTimeout")
      if (e1._tag === "CallTimeout") assert.strictEqual(e1.tag, "NoReply")
      // the queued Pop timed out before it started: it never runs
      yield* settle
      assert.deepStrictEqual(p.handled, [])
    }).pipe(Effect.scoped)
  )

  it.effect("a call's timeout is its own option", () =>
    Effect.gen(function* () {
      const stack = yield* Server.start(stackOf(probe()), [])
      const f = yield* Effect.forkChild(Server.call(stack, "NoReply", undefined, { timeout: "1 millis" }))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Effect.flip(Fiber.join(f)))._tag, "CallTimeout")
    }).pipe(Effect.scoped)
  )

  // the one test on the real clock: with Effect's default Clock a call's timeout is a plain setTimeout
  it.live("with the default Clock a call still times out with CallTimeout (its timer is a plain setTimeout)", () =>
    Effect.gen(function* () {
      const stack = yield* Server.start(stackOf(probe()), ["a"])
      const error = yield* Effect.flip(Server.call(stack, "NoReply", undefined, { timeout: "1 millis" }))
      assert.strictEqual(tagOf(error), "CallTimeout")
    }).pipe(Effect.scoped)
  )

  it.effect("a caller interrupted while its request waits withdraws it: the handler never runs", () =>
    Effect.gen(function* () {
      const p = probe()
      const stack = yield* Server.start(stackOf(p), ["a", "b"])
      // occupy the server with a handler that suspends
      yield* Effect.forkChild(Server.call(stack, "NoReply", undefined, { timeout: "infinity" }))
      yield* settle
      const waiting = yield* Effect.forkChild(Server.call(stack, "Pop"))
      yield* settle
      yield* Fiber.interrupt(waiting)
      yield* settle
      assert.deepStrictEqual(p.handled, [])
      const depth = (yield* Metric.snapshot).find(
        (m) => m.id === "effect_otp_server_mailbox_depth" && m.attributes?.["server"] === "Stack"
      )
      assert.deepStrictEqual(depth?.state, { value: 0 })
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("a caller's interruption never cuts a running handler short", () =>
    Effect.gen(function* () {
      const Work = Rpc.make("Work", { success: Schema.Number })
      const Count = Rpc.make("Count", { success: Schema.Number })
      let finished = 0
      const Worker = Server.make("Worker", [Work, Count], {
        init: () =>
          Effect.succeed({
            Work: () =>
              Effect.as(
                Effect.andThen(
                  Effect.sleep("10 millis"),
                  Effect.sync(() => finished++)
                ),
                1
              ),
            Count: () => Effect.sync(() => finished)
          })
      })
      const server = yield* Server.start(Worker)
      const caller = yield* Effect.forkChild(Server.call(server, "Work"))
      yield* settle
      yield* Fiber.interrupt(caller)
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(yield* Server.call(server, "Count"), 1)
    }).pipe(Effect.scoped)
  )
})

describe("crashes and ServerDown", () => {
  it.effect("a handler's defect crashes the server, not the caller: the caller gets ServerDown with the cause", () =>
    Effect.gen(function* () {
      const p = probe()
      const sup = yield* DynamicSupervisor.make()
      const child = yield* DynamicSupervisor.startChild(sup, Server.childSpec(stackOf(p), ["a"]))
      const error = yield* Effect.flip(Server.call(child.handle, "Crash"))
      assert.strictEqual(error._tag, "ServerDown")
      if (error._tag === "ServerDown") {
        assert.strictEqual(error.reason._tag, "Crashed")
        if (error.reason._tag === "Crashed") assert.isTrue(error.reason.cause.reasons.some((r) => r._tag === "Die"))
      }
      // the supervisor restarted it (permanent): a new incarnation, the old handle is dead
      yield* eventually(() => p.starts === 2)
      assert.strictEqual((yield* Effect.flip(Server.call(child.handle, "Size")))._tag, "NoServer")
    }).pipe(Effect.scoped)
  )

  it.effect("callers waiting in the mailbox fail with ServerDown at once when an earlier message crashes it", () =>
    Effect.gen(function* () {
      const Hold = Rpc.make("Hold")
      const Boom = Rpc.make("Boom")
      const Ask = Rpc.make("Ask", { success: Schema.String })
      const gate = yield* Deferred.make<void>()
      const Fragile = Server.make("Fragile", [Hold, Boom, Ask], {
        init: () =>
          Effect.succeed({
            Hold: () => Deferred.await(gate),
            Boom: () => Effect.die("boom"),
            Ask: () => Effect.succeed("answer")
          })
      })
      const server = yield* Server.start(Fragile)
      const hold = yield* Effect.forkChild(Server.call(server, "Hold"))
      yield* settle
      const boom = yield* Effect.forkChild(Server.call(server, "Boom"))
      const asks = []
      for (let i = 0; i < 3; i++)
        asks.push(yield* Effect.forkChild(Server.call(server, "Ask", undefined, { timeout: "infinity" })))
      yield* settle
      // release Hold: Boom runs and crashes; every Ask behind it is settled in the same turn
      Deferred.doneUnsafe(gate, Exit.void)
      assert.isDefined(hold.pollUnsafe())
      assert.isDefined(boom.pollUnsafe())
      for (const ask of asks) {
        const exit = ask.pollUnsafe()
        assert.isDefined(exit)
        assert.isTrue(exit !== undefined && Exit.isFailure(exit))
      }
      const e = yield* Effect.flip(Fiber.join(asks[0]!))
      assert.strictEqual(e._tag, "ServerDown")
    }).pipe(Effect.scoped)
  )

  it.effect("a call in flight when its server crashes fails with ServerDown in the same turn, not at its timeout", () =>
    Effect.gen(function* () {
      const Wait = Rpc.make("Wait", { success: Schema.String })
      const gate = yield* Deferred.make<void>()
      const Dying = Server.make("Dying", [Wait], {
        init: () => Effect.succeed({ Wait: () => Effect.andThen(Deferred.await(gate), Effect.die("died mid-call")) })
      })
      const server = yield* Server.start(Dying)
      const call = yield* Effect.forkChild(Server.call(server, "Wait"))
      yield* settle
      assert.isUndefined(call.pollUnsafe())
      Deferred.doneUnsafe(gate, Exit.void)
      const exit = call.pollUnsafe()
      assert.isDefined(exit)
      const e = yield* Effect.flip(Fiber.join(call))
      assert.strictEqual(e._tag, "ServerDown")
    }).pipe(Effect.scoped)
  )

  it.effect("the same holds under forced scheduler yields: ServerDown arrives in the step of the crash", () =>
    Effect.gen(function* () {
      for (const ops of [1, 2, 3, 5, 8]) {
        const outcome = yield* Effect.gen(function* () {
          const Wait = Rpc.make("Wait", { success: Schema.String })
          const gate = yield* Deferred.make<void>()
          const Dying = Server.make("Dying", [Wait], {
            init: () =>
              Effect.succeed({ Wait: () => Effect.andThen(Deferred.await(gate), Effect.die("died mid-call")) })
          })
          const server = yield* Server.start(Dying)
          const first = yield* Effect.forkChild(Server.call(server, "Wait", undefined, { timeout: "infinity" }))
          yield* settle
          const queued = yield* Effect.forkChild(Server.call(server, "Wait", undefined, { timeout: "infinity" }))
          yield* settle
          Deferred.doneUnsafe(gate, Exit.void)
          // the crash may come a few steps later (the handler yields too); the
          // moment the first caller learns of it, the queued one has too
          let rounds = 0
          while (first.pollUnsafe() === undefined && rounds++ < 100) yield* Effect.yieldNow
          return [first.pollUnsafe() !== undefined, queued.pollUnsafe() !== undefined, rounds < 100]
        }).pipe(Effect.scoped, Effect.provideService(Scheduler.MaxOpsBeforeYield, ops))
        assert.deepStrictEqual(outcome, [true, true, true], `MaxOpsBeforeYield ${ops}`)
      }
    })
  )

  it.effect("a call by name reaches the current incarnation after a restart", () =>
    Effect.gen(function* () {
      const p = probe()
      const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof stackOf>>>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(sup, Registry.via(names, "stack", Server.childSpec(stackOf(p), ["first"])))
      const stack = Server.via(names, "stack")
      yield* Server.cast(stack, "Push", { item: "lost with the crash" })
      assert.strictEqual((yield* Effect.flip(Server.call(stack, "Crash")))._tag, "ServerDown")
      // the restarted incarnation starts from its args again
      assert.strictEqual(yield* Server.call(stack, "Pop"), "first")
      assert.strictEqual(p.starts, 2)
      assert.strictEqual(p.live, 1)
    }).pipe(Effect.scoped)
  )

  it.effect(
    "closing the supervisor fails waiting callers with ServerDown (Shutdown) and interrupts the running handler",
    () =>
      Effect.gen(function* () {
        const Hang = Rpc.make("Hang", { success: Schema.String })
        const Ask = Rpc.make("Ask", { success: Schema.String })
        let interrupted = 0
        const Hanging = Server.make("Hanging", [Hang, Ask], {
          init: () =>
            Effect.succeed({
              Hang: () => Effect.onInterrupt(Effect.never, () => Effect.sync(() => interrupted++)),
              Ask: () => Effect.succeed("never")
            })
        })
        const scope = yield* Scope.make()
        const sup = yield* DynamicSupervisor.make().pipe(Scope.provide(scope))
        const server = (yield* DynamicSupervisor.startChild(sup, Server.childSpec(Hanging))).handle
        const hang = yield* Effect.forkChild(Server.call(server, "Hang", undefined, { timeout: "infinity" }))
        yield* settle
        const ask = yield* Effect.forkChild(Server.call(server, "Ask", undefined, { timeout: "infinity" }))
        yield* settle
        yield* Scope.close(scope, Exit.void)
        const e1 = yield* Effect.flip(Fiber.join(hang))
        const e2 = yield* Effect.flip(Fiber.join(ask))
        assert.strictEqual(e1._tag, "ServerDown")
        assert.strictEqual(e2._tag, "ServerDown")
        if (e2._tag === "ServerDown") assert.strictEqual(e2.reason._tag, "Shutdown")
        assert.strictEqual(interrupted, 1)
      })
  )
})

describe("server-side: reply later, messages and timers to self, stop", () => {
  it.effect("a handler may reply later through a Deferred; the server handles the next message meanwhile", () =>
    Effect.gen(function* () {
      const Slow = Rpc.make("Slow", { success: Schema.String })
      const Release = Rpc.make("Release")
      const Later = Server.make("Later", [Slow, Release], {
        init: () =>
          Effect.sync(() => {
            const pending: Array<Deferred.Deferred<string>> = []
            return {
              Slow: () =>
                Effect.map(Deferred.make<string>(), (d) => {
                  pending.push(d)
                  return d
                }),
              Release: () =>
                Effect.forEach(pending.splice(0), (d) => Deferred.succeed(d, "released"), { discard: true })
            }
          })
      })
      const server = yield* Server.start(Later)
      const slow = yield* Effect.forkChild(Server.call(server, "Slow"))
      yield* settle
      assert.isUndefined(slow.pollUnsafe())
      yield* Server.call(server, "Release")
      assert.strictEqual(yield* Fiber.join(slow), "released")
    }).pipe(Effect.scoped)
  )

  it.effect("a reply still pending when the server crashes fails with ServerDown", () =>
    Effect.gen(function* () {
      const Slow = Rpc.make("Slow", { success: Schema.String })
      const Later = Server.make("Later", [Slow, Crash], {
        init: () => Effect.succeed({ Slow: () => Deferred.make<string>(), Crash: () => Effect.die("boom") })
      })
      const server = yield* Server.start(Later)
      const slow = yield* Effect.forkChild(Server.call(server, "Slow"))
      yield* settle
      yield* Effect.flip(Server.call(server, "Crash"))
      assert.strictEqual((yield* Effect.flip(Fiber.join(slow)))._tag, "ServerDown")
    }).pipe(Effect.scoped)
  )

  it.effect("messages and timers to self are handled as casts, after what is already in the mailbox", () =>
    Effect.gen(function* () {
      const Tick = Rpc.make("Tick")
      const Kick = Rpc.make("Kick")
      const Ticks = Rpc.make("Ticks", { success: Schema.Array(Schema.String) })
      const Ticker = Server.make("Ticker", [Tick, Kick, Ticks], {
        init: () =>
          Effect.gen(function* () {
            const self = yield* Server.self<typeof Tick | typeof Kick | typeof Ticks>()
            const seen: Array<string> = []
            yield* self.sendAfter("1 second", "Tick")
            return {
              Tick: (_, me) =>
                Effect.asVoid(
                  Effect.andThen(
                    Effect.sync(() => seen.push("tick")),
                    me.sendAfter("1 second", "Tick")
                  )
                ),
              Kick: (_, me) =>
                Effect.andThen(
                  Effect.sync(() => seen.push("kick")),
                  me.cast("Tick")
                ),
              Ticks: () => Effect.sync(() => [...seen])
            }
          })
      })
      const server = yield* Server.start(Ticker)
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* Server.call(server, "Ticks"), ["tick", "tick"])
      yield* Server.call(server, "Kick")
      assert.deepStrictEqual(yield* Server.call(server, "Ticks"), ["tick", "tick", "kick", "tick"])
    }).pipe(Effect.scoped)
  )

  it.effect("a timer can be cancelled, and timers end with their incarnation", () =>
    Effect.gen(function* () {
      const Tick = Rpc.make("Tick")
      const Count = Rpc.make("Count", { success: Schema.Number })
      let ticks = 0
      const Timed = Server.make("Timed", [Tick, Count], {
        init: () =>
          Effect.gen(function* () {
            const self = yield* Server.self<typeof Tick | typeof Count>()
            const cancelled = yield* self.sendAfter("1 second", "Tick")
            assert.isTrue(yield* cancelled.cancel)
            assert.isFalse(yield* cancelled.cancel)
            yield* self.sendAfter("2 seconds", "Tick")
            return { Tick: () => Effect.sync(() => void ticks++), Count: () => Effect.sync(() => ticks) }
          })
      })
      const scope = yield* Scope.make()
      yield* Server.start(Timed).pipe(Scope.provide(scope))
      yield* TestClock.adjust("1500 millis")
      assert.strictEqual(ticks, 0)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(ticks, 0)
    })
  )

  it.effect(
    "self.stop ends the incarnation after the current reply; a transient server stopped normally is not restarted",
    () =>
      Effect.gen(function* () {
        const Quit = Rpc.make("Quit", { success: Schema.String })
        const Ask = Rpc.make("Ask", { success: Schema.String })
        let starts = 0
        const Quitter = Server.make("Quitter", [Quit, Ask], {
          init: (reason: unknown) =>
            Effect.sync(() => {
              starts++
              return {
                Quit: (_, self) => Effect.as(self.stop(reason), "bye"),
                Ask: () => Effect.succeed("here")
              }
            })
        })
        const sup = yield* DynamicSupervisor.make()
        const normal = (yield* DynamicSupervisor.startChild(
          sup,
          Server.childSpec(Quitter, "normal", { restart: "transient" })
        )).handle
        assert.strictEqual(yield* Server.call(normal, "Quit"), "bye")
        yield* settle
        assert.strictEqual((yield* DynamicSupervisor.countChildren(sup)).active, 0)
        assert.strictEqual(starts, 1)
        // an abnormal reason: the transient server is restarted
        const abnormal = (yield* DynamicSupervisor.startChild(
          sup,
          Server.childSpec(Quitter, "boom", { restart: "transient" })
        )).handle
        const queued = yield* Effect.forkChild(Server.call(abnormal, "Ask", undefined, { timeout: "infinity" }))
        assert.strictEqual(yield* Server.call(abnormal, "Quit"), "bye")
        void queued
        yield* eventually(() => starts === 3)
      }).pipe(Effect.scoped)
  )

  it.effect("messages behind a stop fail with ServerDown carrying the stop reason", () =>
    Effect.gen(function* () {
      const Hold = Rpc.make("Hold")
      const Ask = Rpc.make("Ask", { success: Schema.String })
      const gate = yield* Deferred.make<void>()
      const Stoppable = Server.make("Stoppable", [Hold, Ask], {
        init: () => Effect.succeed({ Hold: () => Deferred.await(gate), Ask: () => Effect.succeed("answer") })
      })
      const server = yield* Server.start(Stoppable)
      yield* Effect.forkChild(Server.call(server, "Hold", undefined, { timeout: "infinity" }))
      yield* settle
      const stopping = yield* Effect.forkChild(Server.stop(server, "maintenance"))
      const behind = yield* Effect.forkChild(Server.call(server, "Ask", undefined, { timeout: "infinity" }))
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(stopping)
      const e = yield* Effect.flip(Fiber.join(behind))
      assert.strictEqual(e._tag, "ServerDown")
      if (e._tag === "ServerDown") assert.deepStrictEqual(e.reason, { _tag: "Stopped", reason: "maintenance" })
    }).pipe(Effect.scoped)
  )

  it.effect("stop by name waits until the server has ended, its finalizers run (GenServer.stop/3)", () =>
    Effect.gen(function* () {
      const p = probe()
      const names = yield* Registry.make<string, Server.RefOf<ReturnType<typeof stackOf>>>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(
        sup,
        Registry.via(names, "stack", Server.childSpec(stackOf(p), [], { restart: "transient" }))
      )
      yield* Server.stop(Server.via(names, "stack"))
      assert.strictEqual(p.live, 0)
      assert.strictEqual((yield* Effect.flip(Server.stop(Server.via(names, "stack"))))._tag, "NoServer")
    }).pipe(Effect.scoped)
  )
})

describe("bounded mailbox", () => {
  it.effect("beyond mailboxCapacity, call and cast fail at once with MailboxFull", () =>
    Effect.gen(function* () {
      const stack = yield* Server.start(stackOf(probe()), [], { mailboxCapacity: 2 })
      yield* Effect.forkChild(Server.call(stack, "NoReply", undefined, { timeout: "infinity" }))
      yield* settle
      yield* Server.cast(stack, "Push", { item: "1" })
      yield* Server.cast(stack, "Push", { item: "2" })
      const e1 = yield* Effect.flip(Server.cast(stack, "Push", { item: "3" }))
      const e2 = yield* Effect.flip(Server.call(stack, "Size"))
      assert.strictEqual(e1._tag, "MailboxFull")
      assert.strictEqual(e2._tag, "MailboxFull")
      if (e2._tag === "MailboxFull") assert.strictEqual(e2.capacity, 2)
    }).pipe(Effect.scoped)
  )
})

describe("observability", () => {
  it.effect("metrics: mailbox depth, call latency, calls failed by reason", () =>
    Effect.gen(function* () {
      const Stack = Server.make("MetricStack", [Pop, NoReply], {
        init: () => Effect.succeed({ Pop: () => Effect.fail("empty" as const), NoReply: () => Effect.never })
      })
      const stack = yield* Server.start(Stack)
      yield* Effect.flip(Server.call(stack, "Pop"))
      const blocked = yield* Effect.forkChild(Server.call(stack, "NoReply", undefined, { timeout: "1 second" }))
      yield* settle
      yield* Effect.forkChild(Server.call(stack, "Pop", undefined, { timeout: "1 second" }))
      yield* settle
      const snapshot = () =>
        Metric.snapshot.pipe(Effect.map((all) => all.filter((m) => m.attributes?.["server"] === "MetricStack")))
      const depth = (yield* snapshot()).find((m) => m.id === "effect_otp_server_mailbox_depth")
      assert.deepStrictEqual(depth?.state, { value: 1 })
      yield* TestClock.adjust("1 second")
      yield* Fiber.await(blocked)
      const all = yield* snapshot()
      const failed = all.filter((m) => m.id === "effect_otp_server_calls_failed_total")
      const byReason = Object.fromEntries(
        failed.map((m) => [m.attributes?.["reason"], (m.state as { count: number }).count])
      )
      assert.deepStrictEqual(byReason, { error: 1, timeout: 2 })
      const latency = all.find((m) => m.id === "effect_otp_server_call_duration_millis")
      assert.strictEqual((latency?.state as { count: number } | undefined)?.count, 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect(
    "a span per handled call: a child of the server's own trace, never the caller's, linked to the caller's span",
    () => {
      const spans: Array<Tracer.NativeSpan> = []
      const recording = Tracer.make({
        span: (options) => {
          const span = new Tracer.NativeSpan(options)
          spans.push(span)
          return span
        }
      })
      return Effect.gen(function* () {
        const Ping = Rpc.make("Ping", { success: Schema.String })
        const Traced = Server.make("Traced", [Ping], {
          init: () =>
            Effect.succeed({ Ping: () => Effect.map(Effect.currentSpan, (span) => span.name).pipe(Effect.orDie) })
        })
        const server = yield* Server.start(Traced).pipe(Effect.withSpan("starter"))
        const inside = yield* Server.call(server, "Ping").pipe(Effect.withSpan("caller"))
        assert.strictEqual(inside, "Traced.Ping")
        const handled = spans.find((s) => s.name === "Traced.Ping")!
        const caller = spans.find((s) => s.name === "caller")!
        assert.isTrue(handled.parent._tag === "None", "not a child of the caller (nor of the starter)")
        assert.deepStrictEqual(
          handled.links.map((l) => l.span),
          [caller]
        )
        assert.strictEqual(handled.kind, "server")
        assert.strictEqual(handled.status._tag, "Ended")
      }).pipe(Effect.scoped, Effect.provideService(Tracer.Tracer, recording))
    }
  )

  it.effect("a crash is reported once, by the supervisor, with the handler's cause", () => {
    const lines: Array<string> = []
    const logger = Logger.make((o) => {
      if (o.cause.reasons.length > 0) lines.push(String(o.message))
    })
    return Effect.gen(function* () {
      const sup = yield* DynamicSupervisor.make()
      const child = yield* DynamicSupervisor.startChild(sup, Server.childSpec(stackOf(probe()), []))
      yield* Effect.flip(Server.call(child.handle, "Crash"))
      yield* settle
      assert.strictEqual(lines.length, 1)
    }).pipe(Effect.scoped, Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
  })
})
