/**
 * Agent: the applicable cases of Elixir's agent_test.exs (supervised directly,
 * child_spec, the start/get/update/get_and_update/stop workflow, a registered
 * name with cast) and the rules an agent inherits from Server.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { Agent, DynamicSupervisor, Registry, Supervisor } from "effect-otp"
import { eventually, settle } from "../utils/lifecycle.ts"

describe("Agent", () => {
  it.effect("can be supervised directly", () =>
    Effect.gen(function* () {
      const sup = yield* Supervisor.make([Agent.childSpec(() => "ok")], { strategy: "oneForOne" })
      const [info] = yield* Supervisor.whichChildren(sup)
      assert.strictEqual(info?.id, "Agent")
    }).pipe(Effect.scoped)
  )

  it.effect("generates a child spec: id from the name, restart and shutdown as given", () =>
    Effect.sync(() => {
      assert.strictEqual(Agent.childSpec(() => 0).id, "Agent")
      const custom = Agent.childSpec(() => 0, { name: "Counter", restart: "temporary", shutdown: "infinity" })
      assert.strictEqual(custom.id, "Counter")
      assert.strictEqual(custom.restart, "temporary")
      assert.deepStrictEqual(custom.shutdown, { _tag: "Infinity" })
    })
  )

  it.effect("start, update, get, getAndUpdate and stop, as Agent.start_link's workflow", () =>
    Effect.gen(function* () {
      const agent = yield* Agent.start(() => new Map<string, string>())
      yield* Agent.update(agent, (m) => new Map(m).set("hello", "world"))
      assert.strictEqual(yield* Agent.get(agent, (m) => m.get("hello"), { timeout: "3 seconds" }), "world")
      const popped = yield* Agent.getAndUpdate(agent, (m) => {
        const next = new Map(m)
        const value = next.get("hello")
        next.delete("hello")
        return [value, next] as const
      })
      assert.strictEqual(popped, "world")
      assert.strictEqual(yield* Agent.get(agent, (m) => m.size), 0)
      yield* Agent.stop(agent)
      assert.strictEqual((yield* Effect.flip(Agent.get(agent, (m) => m.size)))._tag, "NoServer")
    }).pipe(Effect.scoped)
  )

  it.effect("a registered name: cast, get and stop by name; the name is gone once stopped", () =>
    Effect.gen(function* () {
      const names = yield* Registry.make<string, Agent.Agent<Map<string, string>>>({ keys: "unique" })
      const sup = yield* DynamicSupervisor.make()
      yield* DynamicSupervisor.startChild(
        sup,
        Registry.via(
          names,
          "agent",
          Agent.childSpec(() => new Map<string, string>(), { restart: "transient" })
        )
      )
      const agent = Agent.via(names, "agent")
      yield* Agent.cast(agent, (m) => new Map(m).set("hello", "world"))
      assert.strictEqual(yield* Agent.get(agent, (m) => m.get("hello")), "world")
      yield* Agent.stop(agent)
      assert.strictEqual(Registry.whereisUnsafe(names, "agent"), undefined)
    }).pipe(Effect.scoped)
  )

  it.effect("the initial state may be an Effect, computed again at each restart", () =>
    Effect.gen(function* () {
      let inits = 0
      const sup = yield* DynamicSupervisor.make()
      const names = yield* Registry.make<string, Agent.Agent<number>>({ keys: "unique" })
      yield* DynamicSupervisor.startChild(
        sup,
        Registry.via(names, "n", Agent.childSpec(Effect.sync(() => ++inits * 100)))
      )
      const agent = Agent.via(names, "n")
      yield* Agent.update(agent, (n) => n + 1)
      assert.strictEqual(yield* Agent.get(agent, (n) => n), 101)
      // a function that throws crashes the agent; the caller gets ServerDown, the supervisor restarts it
      const error = yield* Effect.flip(
        Agent.get(agent, () => {
          throw new Error("bad function")
        })
      )
      assert.strictEqual(error._tag, "ServerDown")
      yield* eventually(() => inits === 2)
      assert.strictEqual(yield* Agent.get(agent, (n) => n), 200)
    }).pipe(Effect.scoped)
  )

  it.effect("functions run one at a time: concurrent read-modify-write updates never interleave", () =>
    Effect.gen(function* () {
      const agent = yield* Agent.start(() => 0)
      const fibers = []
      for (let i = 0; i < 100; i++) {
        fibers.push(yield* Effect.forkChild(Agent.update(agent, (n) => n + 1)))
        fibers.push(yield* Effect.forkChild(Agent.cast(agent, (n) => n + 1)))
      }
      yield* Fiber.joinAll(fibers)
      assert.strictEqual(yield* Agent.get(agent, (n) => n), 200)
    }).pipe(Effect.scoped)
  )

  it.effect("a bounded mailbox: a cast beyond mailboxCapacity fails with MailboxFull", () =>
    Effect.gen(function* () {
      const agent = yield* Agent.start(() => 0, { mailboxCapacity: 1 })
      yield* Agent.cast(agent, (n) => n + 1) // waits in the mailbox until the agent's next turn
      const error = yield* Effect.flip(Agent.cast(agent, (n) => n + 1))
      assert.strictEqual(error._tag, "MailboxFull")
      yield* settle // the agent takes the cast in its next turn
      assert.strictEqual(yield* Agent.get(agent, (n) => n), 1)
    }).pipe(Effect.scoped)
  )
})
