/**
 * Test kit for supervision tests: an event log of lifecycle events, a
 * scripted child, a capturing logger, and `eventually` for conditions that
 * settle after the scheduler has run the forked fibers.
 */
import { Deferred, type Duration, Effect, Fiber, Logger, Ref } from "effect"
import type * as Scope from "effect/Scope"
import { ChildSpec } from "effect-otp"

/** An append-only log of lifecycle events, for order assertions (technique B.3). */
export interface EventLog {
  readonly events: Array<string>
  readonly add: (event: string) => Effect.Effect<void>
}

export const makeEventLog = (): EventLog => {
  const events: Array<string> = []
  return { events, add: (e) => Effect.sync(() => void events.push(e)) }
}

/**
 * Runs `check` after letting queued fibers run, up to `rounds` times, and
 * fails the test with `message` if it never holds. No real time passes.
 */
export const eventually = (check: () => boolean, message = "condition never held", rounds = 200) =>
  Effect.gen(function* () {
    for (let i = 0; i < rounds; i++) {
      if (check()) return
      yield* Effect.yieldNow
    }
    return yield* Effect.die(new Error(`eventually: ${message}`))
  })

/** Lets every queued fiber run for a while (for asserting that something did NOT happen). */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/**
 * TestClock's own warnings, logged through the test's loggers when about 1 s
 * of real time passes between a sleep and the next `TestClock.adjust` (or
 * while a woken fiber runs): on a loaded machine they land among the lines
 * under test, so the capturing logger leaves them out.
 */
const testClockWarnings = [
  "A test is using time, but is not advancing the test clock",
  "A fiber woken by the test clock"
]

/** A logger that records each log line's level, message and whether it carries a cause (not TestClock's own warnings). */
export const makeCapturingLogger = () => {
  const lines: Array<{ level: string; message: string; hasCause: boolean }> = []
  const logger = Logger.make((o) => {
    const msg = Array.isArray(o.message) ? o.message.map(String).join(" ") : String(o.message)
    if (testClockWarnings.some((w) => msg.startsWith(w))) return
    lines.push({ level: o.logLevel, message: msg, hasCause: o.cause.reasons.length > 0 })
  })
  const provide = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.provideService(self, Logger.CurrentLoggers, new Set([logger]))
  return { lines, provide }
}

/**
 * A child whose every incarnation records `start:<name>#n` and `stop:<name>#n`
 * (its Scope's finalizer) in the log, and whose handle is its incarnation number.
 * `counter` counts live incarnations (acquired minus released).
 */
export const trackedChild = <E = never, R = never>(
  log: EventLog,
  name: string,
  options: {
    readonly run?: (n: number) => Effect.Effect<unknown, E, R>
    readonly restart?: ChildSpec.Restart
    readonly shutdown?: ChildSpec.Shutdown
    readonly failStart?: (n: number) => boolean
    readonly live?: Ref.Ref<number>
  } = {}
) => {
  let n = 0
  const start: Effect.Effect<number, string, Scope.Scope> = Effect.gen(function* () {
    const k = ++n
    yield* Effect.acquireRelease(
      Effect.andThen(
        log.add(`start:${name}#${k}`),
        options.live ? Ref.update(options.live, (x) => x + 1) : Effect.void
      ),
      () =>
        Effect.andThen(
          log.add(`stop:${name}#${k}`),
          options.live ? Ref.update(options.live, (x) => x - 1) : Effect.void
        )
    )
    if (options.failStart?.(k)) return yield* Effect.fail(`start failed: ${name}#${k}`)
    return k
  })
  return ChildSpec.make({
    id: name,
    start,
    run: options.run,
    restart: options.restart,
    shutdown: options.shutdown
  })
}

/** The handle of a {@link controllable} child: its incarnation number and a switch that ends its body. */
export interface Control {
  readonly n: number
  /** succeed → normal exit, fail → abnormal exit, die → defect, interrupt → shutdown-like exit */
  readonly exit: Deferred.Deferred<void, string>
}

/**
 * A child whose body waits for its handle's `exit` switch, logging
 * `start:<name>#n` and `stop:<name>#n`. Tests end it with
 * `Deferred.fail(child.handle.exit, "boom")` and friends.
 */
export const controllable = (
  log: EventLog,
  name: string,
  options: {
    readonly restart?: ChildSpec.Restart
    readonly shutdown?: ChildSpec.Shutdown
    readonly type?: ChildSpec.ChildType
    readonly failStart?: (n: number) => boolean
  } = {}
) => {
  let n = 0
  return ChildSpec.make({
    id: name,
    start: Effect.gen(function* () {
      const k = ++n
      yield* Effect.acquireRelease(log.add(`start:${name}#${k}`), () => log.add(`stop:${name}#${k}`))
      if (options.failStart?.(k)) return yield* Effect.fail(`start failed: ${name}#${k}`)
      const exit = yield* Deferred.make<void, string>()
      return { n: k, exit } satisfies Control
    }),
    run: (h: Control) => Deferred.await(h.exit),
    restart: options.restart,
    shutdown: options.shutdown,
    type: options.type
  })
}

/**
 * Sleeps on a detached fiber and waits for it. Use this, not `Effect.sleep`,
 * inside a finalizer that must "take time" under TestClock: the finalizers of
 * an interrupted fiber run in that fiber, and TestClock's `sleep` briefly
 * makes a region interruptible (to fork its warning fiber), so a pending
 * interruption cuts a plain `Effect.sleep` short there. With the real Clock
 * a plain sleep is fine.
 */
export const finalizerSleep = (duration: Duration.Input) =>
  Effect.flatMap(Effect.forkDetach(Effect.sleep(duration)), Fiber.join)

/** The `countChildren` result expected for `specs` children of which `active` run (all workers by default). */
export const counts = (specs: number, active: number, workers = specs, supervisors = 0) => ({
  specs,
  active,
  supervisors,
  workers
})
