// Compile-time tests (issue 14 item 8): the dual operations type the same data-first and piped, extraArguments
// reach startChild typed, Registry.make records its kind, asyncStream's items are what the options say.
import { Data, Effect, Exit, Stream } from "effect"
import type { Scope } from "effect"
import {
  ChildSpec,
  DynamicSupervisor,
  Errors,
  Pool,
  RateLimiter,
  Registry,
  Supervisor,
  Task,
  TaskSupervisor
} from "effect-otp"
import { describe, expectTypeOf, it } from "vitest"
import type { EffectParts, SpecParts, StreamParts } from "./helpers.ts"

interface Conn {
  readonly query: (sql: string) => Effect.Effect<number, QueryError>
}
class QueryError extends Data.TaggedError("QueryError")<{ readonly sql: string }> {}
class ConnectError extends Data.TaggedError("ConnectError")<{ readonly host: string }> {}

declare const dyn: DynamicSupervisor.DynamicSupervisor
declare const sup: Supervisor.Supervisor
declare const tasks: TaskSupervisor.TaskSupervisor
declare const pool: Pool.Pool<Conn, ConnectError>
declare const limiter: RateLimiter.RateLimiter
declare const names: Registry.Registry<string, number, "unique">
declare const task: Task.Task<number, QueryError>
const counter = ChildSpec.make({ id: "counter", start: Effect.succeed(41) })

describe("dual operations: data-first and piped have the same type", () => {
  it("DynamicSupervisor.startChild", () => {
    const first = DynamicSupervisor.startChild(dyn, counter)
    const piped = dyn.pipe(DynamicSupervisor.startChild(counter))
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<EffectParts<typeof piped>>()
    expectTypeOf<EffectParts<typeof first>[0]>().toEqualTypeOf<DynamicSupervisor.Child<number>>()
  })

  it("Supervisor.startChild", () => {
    const first = Supervisor.startChild(sup, counter)
    const piped = sup.pipe(Supervisor.startChild(counter))
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<EffectParts<typeof piped>>()
    expectTypeOf<EffectParts<typeof first>[0]>().toEqualTypeOf<Supervisor.Child<number>>()
  })

  it("Pool.withConnection: the piped callback's connection is the pool's; a connect error is not the caller's", () => {
    const first = Pool.withConnection(pool, (conn) => conn.query("select 1"))
    const piped = pool.pipe(
      Pool.withConnection((conn) => {
        expectTypeOf(conn).toEqualTypeOf<Conn>()
        return conn.query("select 1")
      })
    )
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<EffectParts<typeof piped>>()
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<
      [number, QueryError | Pool.PoolTimeout | Pool.PoolFull | Pool.PoolClosed, never]
    >()
  })

  it("Registry.register and Registry.lookup", () => {
    const first = Registry.register(names, "alice", 1)
    const piped = names.pipe(Registry.register("alice", 1))
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<EffectParts<typeof piped>>()
    expectTypeOf<EffectParts<typeof first>[2]>().toEqualTypeOf<Scope.Scope>()
    expectTypeOf<EffectParts<typeof first>[0]>().toEqualTypeOf<Registry.Entry<string, number>>()
    const found = Registry.lookup(names, "alice")
    const foundPiped = names.pipe(Registry.lookup("alice"))
    expectTypeOf<EffectParts<typeof found>>().toEqualTypeOf<EffectParts<typeof foundPiped>>()
    expectTypeOf<EffectParts<typeof found>[0]>().toEqualTypeOf<ReadonlyArray<Registry.Entry<string, number>>>()
    // a value of the wrong type is refused
    // @ts-expect-error the registry holds numbers
    Registry.register(names, "bob", "not a number")
  })

  it("Registry.via, data-first and piped onto a spec", () => {
    const first = Registry.via(names, "counter", counter)
    const piped = Registry.via(names, "counter")(counter)
    expectTypeOf<SpecParts<typeof first>>().toEqualTypeOf<SpecParts<typeof piped>>()
    expectTypeOf<SpecParts<typeof first>>().toEqualTypeOf<[number, Registry.ViaError<number>, never]>()
  })

  it("Task.await, with and without a timeout, and piped", () => {
    const first = Task.await(task)
    const timed = Task.await(task, "1 second")
    const piped = task.pipe(Task.await("1 second"))
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<
      [number, QueryError | Task.TaskTimeout | Errors.InvalidOptions, never]
    >()
    expectTypeOf<EffectParts<typeof timed>>().toEqualTypeOf<EffectParts<typeof first>>()
    expectTypeOf<EffectParts<typeof piped>>().toEqualTypeOf<EffectParts<typeof first>>()
  })

  it("TaskSupervisor.async", () => {
    const work = Effect.succeed("done")
    const first = TaskSupervisor.async(tasks, work)
    const piped = tasks.pipe(TaskSupervisor.async(work))
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<EffectParts<typeof piped>>()
    expectTypeOf<EffectParts<typeof first>[0]>().toEqualTypeOf<Task.Task<string, never>>()
  })

  it("RateLimiter.run keeps the effect's success, error and requirements", () => {
    const job = Effect.fail(new QueryError({ sql: "select" })).pipe(Effect.as(1))
    const first = RateLimiter.run(limiter, job)
    const piped = job.pipe(RateLimiter.run(limiter))
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<EffectParts<typeof piped>>()
    expectTypeOf<EffectParts<typeof first>>().toEqualTypeOf<
      [number, QueryError | RateLimiter.QueueFull | RateLimiter.RateLimiterClosed, never]
    >()
  })
})

describe("extraArguments", () => {
  it("the supervisor's type records them and a spec function receives them typed", () => {
    const program = Effect.gen(function* () {
      const workers = yield* DynamicSupervisor.make({ extraArguments: { region: "eu" as const, port: 8080 } })
      expectTypeOf(workers).toEqualTypeOf<DynamicSupervisor.DynamicSupervisor<{ region: "eu"; port: number }>>()
      const child = yield* DynamicSupervisor.startChild(workers, (extra) => {
        expectTypeOf(extra).toEqualTypeOf<{ region: "eu"; port: number }>()
        return ChildSpec.make({ start: Effect.succeed(`${extra.region}:${extra.port}`) })
      })
      expectTypeOf(child.handle).toEqualTypeOf<string>()
    })
    expectTypeOf<EffectParts<typeof program>[2]>().toEqualTypeOf<Scope.Scope>()
  })

  it("a supervisor without extraArguments passes never, so a function spec cannot use them", () => {
    DynamicSupervisor.startChild(dyn, (extra) => {
      expectTypeOf(extra).toBeNever()
      return counter
    })
  })
})

describe("Registry.make records its kind", () => {
  it('"unique" and "duplicate" are kept in the type; via only takes a unique registry', () => {
    const unique = Registry.make<string, number>({ keys: "unique" })
    const duplicate = Registry.make<string, number>({ keys: "duplicate" })
    expectTypeOf<EffectParts<typeof unique>[0]>().toEqualTypeOf<Registry.Registry<string, number, "unique">>()
    expectTypeOf<EffectParts<typeof duplicate>[0]>().toEqualTypeOf<Registry.Registry<string, number, "duplicate">>()
    expectTypeOf<EffectParts<typeof unique>[1]>().toEqualTypeOf<Errors.InvalidOptions>()
    Effect.gen(function* () {
      const dup = yield* duplicate
      // @ts-expect-error a via name needs a registry with unique keys
      Registry.via(dup, "counter", counter)
    })
  })
})

describe("asyncStream item types", () => {
  const inputs = [1, 2, 3]
  const f = (n: number) => (n > 2 ? Effect.fail(new QueryError({ sql: "select" })) : Effect.succeed(String(n)))

  it("asyncStream emits the task's Exit with only TaskTimeout as its error; the task's error fails the stream", () => {
    const s = TaskSupervisor.asyncStream(tasks, inputs, f)
    expectTypeOf<StreamParts<typeof s>>().toEqualTypeOf<
      [Exit.Exit<string, Task.TaskTimeout>, QueryError | TaskSupervisor.StreamError, never]
    >()
    const piped = Stream.fromIterable(inputs).pipe(TaskSupervisor.asyncStream(tasks, f))
    expectTypeOf<StreamParts<typeof piped>>().toEqualTypeOf<StreamParts<typeof s>>()
  })

  it("zipInputOnExit: a failure carries the input as TaskExited", () => {
    const s = TaskSupervisor.asyncStream(tasks, inputs, f, { zipInputOnExit: true, maxConcurrency: 2 })
    expectTypeOf<StreamParts<typeof s>[0]>().toEqualTypeOf<
      Exit.Exit<string, Task.TaskExited<number, Task.TaskTimeout>>
    >()
  })

  it("asyncStreamNolink emits the task's error as an item instead of failing", () => {
    const s = TaskSupervisor.asyncStreamNolink(tasks, inputs, f)
    expectTypeOf<StreamParts<typeof s>>().toEqualTypeOf<
      [Exit.Exit<string, QueryError | Task.TaskTimeout>, TaskSupervisor.StreamError, never]
    >()
  })
})
