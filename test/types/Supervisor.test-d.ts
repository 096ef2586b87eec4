// Compile-time tests (vitest typecheck mode, `npm run test:types`, part of `npm test`): child specs and supervisors
// keep their handle, error and requirements, written the way the README writes them (issue 15 item 3).
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Queue, Ref } from "effect"
import type { Scope } from "effect"
import { ChildSpec, DynamicSupervisor, Errors, Supervisor } from "effect-otp"
import { describe, expectTypeOf, it } from "vitest"
import type { EffectParts, LayerParts, SpecParts } from "./helpers.ts"

class Db extends Context.Service<Db, { readonly query: (sql: string) => Effect.Effect<number> }>()("test/Db") {}
class Mailer extends Context.Service<Mailer, { readonly send: (to: string) => Effect.Effect<void> }>()("test/Mailer") {}
class ConfigError extends Errors.InvalidOptions {}
const configError = new ConfigError({ module: "test", field: "port", value: -1, expected: "a port" })

describe("ChildSpec.make", () => {
  it("the handle is start's success, the error start's error, the requirements start's and run's without Scope", () => {
    const spec = ChildSpec.make({
      id: "db-user",
      start: Effect.flatMap(Effect.service(Db), (db) => db.query("select 1")),
      run: () => Effect.flatMap(Effect.service(Mailer), (m) => m.send("ops"))
    })
    expectTypeOf<SpecParts<typeof spec>>().toEqualTypeOf<[number, never, Db | Mailer]>()
    const scoped = ChildSpec.make({
      start: Effect.acquireRelease(Effect.succeed({ connected: true }), () => Effect.log("disconnected"))
    })
    expectTypeOf<SpecParts<typeof scoped>>().toEqualTypeOf<[{ connected: boolean }, never, never]>()
  })

  it("run's parameter is the handle when start is a plain effect (the README's worker)", () => {
    const worker = (arg: string) =>
      ChildSpec.make({
        id: arg,
        start: Queue.unbounded<string>(),
        run: (inbox) => {
          expectTypeOf(inbox).toEqualTypeOf<Queue.Queue<string>>()
          return Effect.forever(Effect.flatMap(Queue.take(inbox), (msg) => Effect.log(`${arg}: ${msg}`)))
        }
      })
    expectTypeOf<SpecParts<ReturnType<typeof worker>>>().toEqualTypeOf<[Queue.Queue<string>, never, never]>()
  })

  it("run's parameter is inferred when start is piped", () => {
    const spec = ChildSpec.make({
      start: Queue.unbounded<string>().pipe(Effect.tap((q) => Queue.offer(q, "hello"))),
      run: (inbox) => {
        expectTypeOf(inbox).toEqualTypeOf<Queue.Queue<string>>()
        return Queue.take(inbox)
      }
    })
    expectTypeOf<SpecParts<typeof spec>>().toEqualTypeOf<[Queue.Queue<string>, never, never]>()
  })

  it("run's parameter is inferred when start is an Effect.gen", () => {
    const spec = ChildSpec.make({
      start: Effect.gen(function* () {
        const inbox = yield* Queue.unbounded<string>()
        yield* Queue.offer(inbox, "hello")
        return inbox
      }),
      run: (inbox) => {
        expectTypeOf(inbox).toEqualTypeOf<Queue.Queue<string>>()
        return Queue.take(inbox)
      }
    })
    expectTypeOf<SpecParts<typeof spec>>().toEqualTypeOf<[Queue.Queue<string>, never, never]>()
  })

  it("an inline data-first dual call as start: an annotated run parameter gives the handle its type", () => {
    const spec = ChildSpec.make({
      start: Effect.tap(Queue.unbounded<string>(), (q) => Queue.offer(q, "hello")),
      run: (inbox: Queue.Queue<string>) => Queue.take(inbox)
    })
    expectTypeOf<SpecParts<typeof spec>>().toEqualTypeOf<[Queue.Queue<string>, never, never]>()
  })

  it("an inline data-first dual call as start with an unannotated run: the parameter is unknown, never any", () => {
    // TypeScript fixes run's parameter before it checks a generic call that returns a function overload (dual) in
    // the same object, so this cannot be inferred; what matters is that it is an error in run, not a silent any.
    ChildSpec.make({
      start: Effect.as(Ref.make(0), 41),
      run: (n) => {
        expectTypeOf(n).toBeUnknown()
        return Effect.void
      }
    })
  })

  it("ChildSpec.task has no handle and keeps the effect's requirements", () => {
    const job = ChildSpec.task(Effect.flatMap(Effect.service(Mailer), (m) => m.send("x")))
    expectTypeOf<SpecParts<typeof job>>().toEqualTypeOf<[void, never, Mailer]>()
  })
})

describe("Supervisor.make with inline child specs", () => {
  it("the README's Supervisor example needs nothing but a Scope (no any)", () => {
    const loadConfig = Effect.succeed({ port: 8080 })
    const connect = Effect.acquireRelease(Effect.succeed({ connected: true }), () => Effect.log("disconnected"))
    const worker = (id: string) => ChildSpec.make({ id, start: Effect.void, run: () => Effect.never })

    const program = Effect.gen(function* () {
      const sup = yield* Supervisor.make(
        [
          ChildSpec.make({ id: "config", start: loadConfig }),
          ChildSpec.make({ id: "db", start: connect, shutdown: "10 seconds" }),
          Supervisor.childSpec([worker("a"), worker("b")], { id: "workers", strategy: "oneForAll" }),
          DynamicSupervisor.childSpec({ id: "sessions" })
        ],
        { strategy: "restForOne", maxRestarts: 3, maxSeconds: 5 }
      )
      return (yield* Supervisor.whichChildren(sup)).map((c) => c.id)
    })
    expectTypeOf<EffectParts<typeof program>>().toEqualTypeOf<
      [Array<string>, Errors.InvalidOptions | Errors.SupervisorStopped, Scope.Scope]
    >()
  })

  it("the requirements are the union of the inline children's, the error the union of their start errors", () => {
    const make = Supervisor.make(
      [
        ChildSpec.make({ id: "db", start: Effect.service(Db) }),
        ChildSpec.make({
          id: "mail",
          start: Effect.flatMap(Effect.service(Db), (db) =>
            db === undefined ? Effect.fail(configError) : Effect.void
          ),
          run: () => Effect.service(Mailer)
        })
      ],
      { strategy: "oneForOne" }
    )
    expectTypeOf<EffectParts<typeof make>>().toEqualTypeOf<
      [Supervisor.Supervisor, ConfigError | Errors.InvalidOptions, Db | Mailer | Scope.Scope]
    >()
  })

  it("ChildrenError and ChildrenServices read a list of specs", () => {
    type Cs = readonly [ChildSpec.ChildSpec<number, ConfigError, Db>, ChildSpec.ChildSpec<string, never, Mailer>]
    expectTypeOf<Supervisor.ChildrenError<Cs>>().toEqualTypeOf<ConfigError>()
    expectTypeOf<Supervisor.ChildrenServices<Cs>>().toEqualTypeOf<Db | Mailer>()
  })

  it("a Service class with inline specs launches under NodeRuntime.runMain", () => {
    class App extends Supervisor.Service<App>()(
      "app",
      [
        ChildSpec.make({ id: "config", start: Effect.succeed({ port: 8080 }) }),
        ChildSpec.make({ id: "inbox", start: Queue.unbounded<string>(), run: (q) => Queue.take(q) }),
        DynamicSupervisor.childSpec({ id: "sessions" })
      ],
      { strategy: "oneForOne" }
    ) {}
    expectTypeOf<EffectParts<typeof App.launch>>().toEqualTypeOf<
      [void, Errors.InvalidOptions | Errors.RestartIntensityExceeded, never]
    >()
    // the layer provides App and needs nothing (its error channel is the give-up policy's business, issue 15 item 1)
    expectTypeOf<LayerParts<typeof App.layer>[0]>().toEqualTypeOf<App>()
    expectTypeOf<LayerParts<typeof App.layer>[2]>().toEqualTypeOf<never>()
    expectTypeOf(NodeRuntime.runMain).toBeCallableWith(App.launch)
  })

  it("a Service class whose children need a service carries it in launch and layer", () => {
    class App extends Supervisor.Service<App>()(
      "app",
      [ChildSpec.make({ id: "db", start: Effect.service(Db), run: (db) => db.query("listen") })],
      { strategy: "oneForOne" }
    ) {}
    expectTypeOf<EffectParts<typeof App.launch>[2]>().toEqualTypeOf<Db>()
    expectTypeOf<LayerParts<typeof App.layer>[2]>().toEqualTypeOf<Db>()
  })
})
