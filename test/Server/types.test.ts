import { Context, Effect, Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { describe, expectTypeOf, it } from "vitest"
import { Server } from "effect-otp"

const Say = Rpc.make("Say", { payload: { text: Schema.String }, success: Schema.String, error: Schema.Number })
const Crash = Rpc.make("Crash")
class Db extends Context.Service<Db, { readonly get: Effect.Effect<number> }>()("Db") {}
class Clock2 extends Context.Service<Clock2, number>()("Clock2") {}

describe("Server.make inference", () => {
  it("types payloads, args, errors and services from the Rpcs and init, without any", () => {
    const Session = Server.make("Session", [Say, Crash], {
      init: (userId: string) =>
        Effect.gen(function* () {
          const clock = yield* Clock2
          let seen = 0
          return {
            Say: ({ text }, self) => {
              expectTypeOf(text).toEqualTypeOf<string>()
              expectTypeOf(self).toEqualTypeOf<Server.Self<typeof Say | typeof Crash>>()
              return text === "" ? Effect.fail(-1) : Effect.map(Db, () => `${userId}#${++seen + clock}`)
            },
            Crash: () => Effect.die("boom")
          }
        })
    })
    expectTypeOf(Session).toEqualTypeOf<
      Server.Definition<"Session", typeof Say | typeof Crash, string, never, Clock2 | Db>
    >()
    expectTypeOf<Server.Rpcs<typeof Session>>().toEqualTypeOf<typeof Say | typeof Crash>()
    expectTypeOf<Server.Args<typeof Session>>().toEqualTypeOf<string>()
  })

  it("accepts an RpcGroup as the protocol", () => {
    const Group = RpcGroup.make(Say, Crash)
    const S = Server.make("S", Group, {
      init: () =>
        Effect.succeed({
          Say: ({ text }: { readonly text: string }) => Effect.succeed(text),
          Crash: () => Effect.die("x")
        })
    })
    expectTypeOf(S.protocol).toEqualTypeOf<RpcGroup.RpcGroup<typeof Say | typeof Crash>>()
  })

  it("rejects a handler whose error or success is not the Rpc's, and a missing handler", () => {
    Server.make("Bad", [Say, Crash], {
      // @ts-expect-error a string error is not Say's error (a number)
      init: () => Effect.succeed({ Say: () => Effect.fail("nope"), Crash: () => Effect.void })
    })
    Server.make("Bad", [Say, Crash], {
      // @ts-expect-error Say must succeed with a string
      init: () => Effect.succeed({ Say: () => Effect.succeed(1), Crash: () => Effect.void })
    })
    Server.make("Bad", [Say, Crash], {
      // @ts-expect-error Crash has no handler
      init: () => Effect.succeed({ Say: () => Effect.succeed("") })
    })
  })

  it("types self: tags and payloads of its own protocol", () => {
    Server.make("Selfish", [Say, Crash], {
      init: () =>
        Effect.gen(function* () {
          const self = yield* Server.self<typeof Say | typeof Crash>()
          yield* self.cast("Say", { text: "hi" })
          yield* self.cast("Crash")
          // @ts-expect-error unknown tag
          yield* self.cast("Nope")
          // @ts-expect-error wrong payload
          yield* self.cast("Say", { text: 1 })
          return { Say: () => Effect.succeed(""), Crash: () => Effect.void }
        })
    })
  })

  it("types calls, casts and clients from the target: payloads, replies and errors", () => {
    const Session = Server.make("Session", [Say, Crash], {
      init: () =>
        Effect.succeed({
          Say: ({ text }: { readonly text: string }) => Effect.succeed(text),
          Crash: () => Effect.die("x")
        })
    })
    const check = (ref: Server.RefOf<typeof Session>) => {
      expectTypeOf(Server.call(ref, "Say", { text: "hi" })).toEqualTypeOf<
        Effect.Effect<string, number | Server.CallError>
      >()
      expectTypeOf(Server.call(ref, "Crash")).toEqualTypeOf<Effect.Effect<void, Server.CallError>>()
      expectTypeOf(Server.cast(ref, "Say", { text: "hi" })).toEqualTypeOf<Effect.Effect<void, Server.MailboxFull>>()
      const client = Server.client(ref)
      expectTypeOf(client.call.Say({ text: "hi" }, { timeout: "1 second" })).toEqualTypeOf<
        Effect.Effect<string, number | Server.CallError>
      >()
      expectTypeOf(client.cast.Crash()).toEqualTypeOf<Effect.Effect<void, Server.MailboxFull>>()
      // @ts-expect-error a payload is required
      void Server.call(ref, "Say")
      // @ts-expect-error unknown request
      void Server.call(ref, "Nope")
      // @ts-expect-error wrong payload
      void client.call.Say({ text: 1 })
    }
    void check
  })
})
