/**
 * The library's reliances on the shape of Effect's runtime (src/internal/effectInternals.ts).
 * Each test is named after one reliance: when an Effect upgrade breaks it, the
 * failing test says which, and the fix goes in effectInternals.ts only.
 */
import { assert, describe, it } from "@effect/vitest"
import * as util from "node:util"
import { Cause, Clock, Console, Context, Effect, Exit, Fiber, Logger, Metric, References, Runtime, Scope } from "effect"
import { TestClock } from "effect/testing"
import {
  failFiber,
  fiberLineage,
  hasForkedChildren,
  installAnnotationRecord,
  installScope,
  metricHooks,
  monotonicMillis,
  openWithFinalizer,
  scopeEmptyState,
  scopeTypeIds
} from "../../src/internal/effectInternals.ts"

describe("Effect internals the library relies on", () => {
  it.effect("reliance 1: FiberImpl keeps the fibers it forked in _children", () =>
    Effect.gen(function* () {
      const seen: Array<boolean> = []
      const parent = yield* Effect.forkChild(
        Effect.gen(function* () {
          const child = yield* Effect.forkChild(Effect.never)
          seen.push(yield* Effect.withFiber((f) => Effect.succeed(hasForkedChildren(f))))
          yield* Fiber.interrupt(child)
          seen.push(yield* Effect.withFiber((f) => Effect.succeed(hasForkedChildren(f))))
        })
      )
      yield* Fiber.join(parent)
      assert.deepStrictEqual(seen, [true, false])
    })
  )

  it.effect(
    "reliance 2: an object with Scope's type ids, strategy, parent and a state accessor is a Scope to Effect",
    () =>
      Effect.gen(function* () {
        assert.strictEqual(scopeTypeIds.length, 2, "Scope carries two ~effect/Scope type-id keys")
        const State = Symbol("state")
        class Mine {
          [State]: unknown = scopeEmptyState
        }
        installScope(Mine, State)
        const mine = new Mine() as unknown as Scope.Closeable
        const log: Array<string> = []
        yield* Effect.addFinalizer(() => Effect.sync(() => log.push("outer"))).pipe(
          Effect.provideService(Scope.Scope, mine)
        )
        const inner = yield* Scope.fork(mine)
        yield* Scope.addFinalizer(
          inner,
          Effect.sync(() => log.push("inner"))
        )
        yield* Scope.close(mine, Exit.void)
        assert.deepStrictEqual(log, ["inner", "outer"])
        assert.strictEqual((mine as any).state._tag, "Closed")
        assert.deepStrictEqual(Object.keys(mine), [], "its state is no own enumerable key")
      })
  )

  it.effect(
    "reliance 3: a metric exposes its series' hooks through hook(context); registerUnsafe accepts plain-number state",
    () =>
      Effect.gen(function* () {
        const counter = Metric.counter("effect_otp_internals_probe_total", { incremental: true })
        const context = yield* Effect.context<never>()
        const hooks = metricHooks(counter, context)
        assert.isDefined(hooks)
        assert.strictEqual(typeof hooks!.get, "function")
        let n = 41
        Metric.registerUnsafe(counter, context, {
          get: () => ({ count: n, incremental: true }),
          update: () => {},
          modify: () => {}
        })
        n++
        const state = yield* Metric.value(counter)
        assert.strictEqual(state.count, 42)
      })
  )

  it.effect(
    "reliance 4: loggers read annotations as own enumerable string keys (symbols and prototype accessors are not shown)",
    () =>
      Effect.gen(function* () {
        const lines: Array<Record<string, unknown>> = []
        const logger = Logger.make((o) => {
          const out: Record<string, unknown> = {}
          for (const [k, v] of Object.entries(o.fiber.getRef(References.CurrentLogAnnotations))) out[k] = v
          lines.push(out)
        })
        class Note {
          readonly supervisor = "sup"
          readonly pid = 7
          constructor() {
            ;(this as any)[Symbol.for("hidden")] = "no"
          }
          get handle() {
            return "no"
          }
        }
        yield* Effect.log("x").pipe(
          Effect.provideService(References.CurrentLogAnnotations, new Note() as any),
          Effect.provideService(Logger.CurrentLoggers, new Set([logger]))
        )
        assert.deepStrictEqual(lines, [{ supervisor: "sup", pid: 7 }])
        // and the logfmt logger prints the same keys
        const text = Logger.formatLogFmt.log({
          message: "x",
          logLevel: "Info",
          cause: (Exit.fail(1) as any).cause,
          fiber: {
            getRef: (ref: any) =>
              ref === References.CurrentLogAnnotations ? new Note() : Context.get(Context.empty(), ref)
          } as any,
          date: new Date(0)
        } as any)
        assert.include(text, "supervisor=sup")
        assert.notInclude(text, "handle")
      })
  )

  it.effect(
    "reliance 4: Effect's defaultLogger passes the annotation record itself to console.log; installAnnotationRecord makes it print as its annotations only",
    () =>
      Effect.gen(function* () {
        const printed: Array<Array<unknown>> = []
        const console = new Proxy({} as Console.Console, {
          get:
            (_, method) =>
            (...args: Array<unknown>) => {
              if (method === "log" || method === "error") printed.push(args)
            }
        })
        class Note {
          readonly supervisor = "sup"
          readonly pid = 7
          constructor() {
            ;(this as any)[Symbol.for("hidden")] = "no"
          }
        }
        installAnnotationRecord(Note)
        const note = new Note()
        assert.include(util.inspect({ ...note }), "Symbol(hidden)", "without the hook the symbol field would print")
        yield* Effect.log("x").pipe(
          Effect.provideService(References.CurrentLogAnnotations, note as any),
          Effect.provideService(Logger.CurrentLoggers, new Set([Logger.defaultLogger])),
          Effect.provideService(Console.Console, console)
        )
        assert.strictEqual(printed.length, 1)
        assert.strictEqual(printed[0]!.at(-1), note, "the record itself is printed")
        assert.strictEqual(util.inspect(note), util.inspect({ supervisor: "sup", pid: 7 }))
      })
  )

  it.effect(
    "reliance 5: the default Clock is one class whose monotonic reading is process.hrtime; TestClock's moves only with adjust",
    () =>
      Effect.gen(function* () {
        const live = Context.get(Context.empty(), Clock.Clock)
        const read = monotonicMillis(live)
        const a = read()
        const h = Number(live.monotonicTimeNanosUnsafe()) / 1e6
        const until = Date.now() + 20
        while (Date.now() < until) {
          // let both clocks move
        }
        const da = read() - a
        const dh = Number(live.monotonicTimeNanosUnsafe()) / 1e6 - h
        assert.isTrue(da >= 19 && Math.abs(da - dh) < 5, `both advance together (${da} vs ${dh} ms)`)
        const test = yield* Clock.Clock
        const now = monotonicMillis(test)
        const before = now()
        yield* TestClock.setTime(test.currentTimeMillisUnsafe() - 3_600_000)
        assert.strictEqual(now(), before, "setTime does not move the monotonic clock")
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(now(), before + 10_000)
      })
  )

  it.effect(
    "reliance 6: a fiber fails at its next interruptible point with FiberImpl._interruptedCause; _parent links a forked fiber to its forker while it runs",
    () =>
      Effect.gen(function* () {
        let finalized = 0
        const victim = yield* Effect.forkChild(Effect.onExit(Effect.never, () => Effect.sync(() => void finalized++)))
        yield* Effect.yieldNow
        failFiber(victim, "gave up", Context.make(Runtime.InterruptExitCode, 1))
        const exit = yield* Fiber.await(victim)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined, "gave up")
        assert.strictEqual(finalized, 1)
        const lineage = yield* Effect.withFiber((self) =>
          Effect.map(
            Effect.forkChild(Effect.withFiber((child) => Effect.succeed(fiberLineage(child)))),
            (child) => [self, child] as const
          )
        ).pipe(Effect.flatMap(([self, child]) => Effect.map(Fiber.join(child), (l) => [self, l] as const)))
        assert.strictEqual(lineage[1][1], lineage[0], "the forked fiber's lineage names the fiber that forked it")
      })
  )

  it.effect(
    "reliance 2 (state): a fresh Scope given the Open state Effect writes runs that finalizer once when closed, and forgets it when released first",
    () =>
      Effect.gen(function* () {
        const parent = Scope.makeUnsafe()
        const exits: Array<Exit.Exit<unknown, unknown>> = []
        const link = Scope.forkUnsafe(parent)
        openWithFinalizer(link, "key", (exit) => Effect.sync(() => void exits.push(exit)))
        yield* Scope.close(parent, Exit.void)
        assert.strictEqual(exits.length, 1)
        assert.isTrue(Exit.isSuccess(exits[0]!))
        // a finalizer added the public way afterwards still runs (the state is the one Effect keeps)
        const other = Scope.makeUnsafe()
        const link2 = Scope.forkUnsafe(other)
        let ran = 0
        openWithFinalizer(link2, "key2", () => Effect.sync(() => void ran++))
        yield* Scope.addFinalizer(
          link2,
          Effect.sync(() => void ran++)
        )
        yield* Scope.close(other, Exit.void)
        assert.strictEqual(ran, 2)
      })
  )
})
