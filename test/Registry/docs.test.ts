/**
 * The JSDoc examples of src/Registry/Registry.ts, run as tests with their documented
 * output (Elixir runs its docs with `doctest Registry`; T-REG D). Keep them in sync.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import { ChildSpec, DynamicSupervisor, Registry } from "effect-otp"

describe("documented examples", () => {
  it.effect("make: naming a value for the length of a scope", () =>
    Effect.gen(function* () {
      // the example prints with console.log; here the lines are collected
      const logged: Array<unknown> = []
      const console = { log: (x: unknown) => void logged.push(x) }
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* Registry.register(registry, "answer", 42)
            console.log(Registry.lookupUnsafe(registry, "answer").map((e) => e.value))
          })
        )
        console.log(Registry.lookupUnsafe(registry, "answer").length)
      }).pipe(Effect.scoped)
      yield* program
      assert.deepStrictEqual(logged, [[42], 0])
    })
  )

  it.effect("Service: an application-wide session registry", () =>
    Effect.gen(function* () {
      class Sessions extends Registry.Service<Sessions, readonly [string, number], string>()("app/Sessions", {
        keys: "unique"
      }) {}

      const program = Effect.gen(function* () {
        const sessions = yield* Sessions
        return yield* Registry.count(sessions)
      }).pipe(Effect.provide(Sessions.layer))
      assert.deepStrictEqual(yield* program, 0)
    })
  )

  it.effect("register: a unique name", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<readonly [string, number], string>({ keys: "unique" })
        yield* Registry.register(registry, ["session", 1], "alice")
        const error = yield* Effect.flip(Registry.register(registry, ["session", 1], "bob"))
        return error._tag === "AlreadyRegistered" ? error.entry.value : error._tag
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, "alice")
    })
  )

  it.effect("unregister: leaving a topic", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const topics = yield* Registry.make<string, string>({ keys: "duplicate" })
        yield* Registry.register(topics, "news", "a")
        yield* Registry.register(topics, "news", "b")
        yield* Registry.unregister(topics, "news")
        return yield* Registry.count(topics)
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, 0)
    })
  )

  it.effect("unregisterMatch: removing some of a scope's entries", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const topics = yield* Registry.make<string, number>({ keys: "duplicate" })
        yield* Registry.register(topics, "n", 1)
        yield* Registry.register(topics, "n", 2)
        yield* Registry.unregisterMatch(topics, "n", (v) => v > 1)
        return Registry.lookupUnsafe(topics, "n").map((e) => e.value)
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, [1])
    })
  )

  it.effect("updateValue: counting in place", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        yield* Registry.register(registry, "hits", 1)
        return yield* Registry.updateValue(registry, "hits", (n) => n + 1)
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, Option.some([2, 1]))
    })
  )

  it.effect("lookup: finding a session", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<string, string>({ keys: "unique" })
        yield* Registry.register(registry, "alice", "session-1")
        const entries = yield* Registry.lookup(registry, "alice")
        return entries.map((e) => e.value)
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, ["session-1"])
    })
  )

  it.effect("whereis: resolving a name", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        yield* Registry.register(registry, "port", 8080)
        return yield* Registry.whereis(registry, "port")
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, Option.some(8080))
    })
  )

  it.effect("keys: listing a scope's keys", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "duplicate" })
        yield* Registry.register(registry, "a", 1)
        yield* Registry.register(registry, "a", 2)
        return yield* Registry.keys(registry, yield* Effect.scope)
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, ["a", "a"])
    })
  )

  it.effect("match: filtering by value", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const topics = yield* Registry.make<string, { readonly admin: boolean }>({ keys: "duplicate" })
        yield* Registry.register(topics, "room", { admin: true })
        yield* Registry.register(topics, "room", { admin: false })
        const admins = yield* Registry.match(topics, "room", (v) => v.admin)
        return admins.length
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, 1)
    })
  )

  it.effect("select: all sessions of one tenant", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<readonly [string, number], string>({ keys: "unique" })
        yield* Registry.register(registry, ["acme", 1], "a")
        yield* Registry.register(registry, ["acme", 2], "b")
        yield* Registry.register(registry, ["other", 1], "c")
        const rows = yield* Registry.select(registry, (e) => e.key[0] === "acme")
        return rows.map((e) => e.value).sort()
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, ["a", "b"])
    })
  )

  it.effect("dispatch: broadcasting to a topic", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const topics = yield* Registry.make<string, (msg: string) => void>({ keys: "duplicate" })
        const seen: Array<string> = []
        yield* Registry.register(topics, "news", (m) => seen.push(`a:${m}`))
        yield* Registry.register(topics, "news", (m) => seen.push(`b:${m}`))
        yield* Registry.dispatch(topics, "news", (entries) => Effect.sync(() => entries.forEach((e) => e.value("hi"))))
        return seen
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, ["a:hi", "b:hi"])
    })
  )

  it.effect("meta: reading and writing metadata", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<string, string>({ keys: "unique", meta: { region: "eu" } })
        yield* Registry.putMeta(registry, "owner", "ops")
        return [yield* Registry.meta(registry, "region"), yield* Registry.meta(registry, "owner")]
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, [Option.some("eu"), Option.some("ops")])
    })
  )

  it.effect("lock: serializing two updates of one account", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        const log: Array<string> = []
        const update = (who: string) =>
          Registry.lock(
            registry,
            ["account", 7],
            Effect.gen(function* () {
              log.push(`${who} in`)
              yield* Effect.yieldNow
              log.push(`${who} out`)
            })
          )
        yield* Effect.all([update("a"), update("b")], { concurrency: "unbounded" })
        return log
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, ["a in", "a out", "b in", "b out"])
    })
  )

  it.effect("listen: watching registrations", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const registry = yield* Registry.make<string, number>({ keys: "unique" })
        const events = yield* Registry.listen(registry)
        yield* Effect.scoped(Registry.register(registry, "a", 1))
        return yield* events.pipe(
          Stream.take(2),
          Stream.map((e) => e._tag),
          Stream.runCollect
        )
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, ["Registered", "Unregistered"])
    })
  )

  it.effect("via: starting a child under a name", () =>
    Effect.gen(function* () {
      const program = Effect.gen(function* () {
        const sessions = yield* Registry.make<string, string>({ keys: "unique" })
        const sup = yield* DynamicSupervisor.make()
        const spec = ChildSpec.make({ start: Effect.succeed("alice's session") })
        yield* DynamicSupervisor.startChild(sup, Registry.via(sessions, "alice", spec))
        const again = yield* Effect.flip(DynamicSupervisor.startChild(sup, Registry.via(sessions, "alice", spec)))
        return [again._tag, yield* Registry.whereis(sessions, "alice")]
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* program, ["AlreadyStarted", Option.some("alice's session")])
    })
  )
})
