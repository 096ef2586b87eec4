/**
 * The seed's second exercise: spawn workers with rate limiting — max N
 * workers per second, excess requests queued, limits configurable.
 *
 * A `RateLimitedSupervisor` allows 10 starts per second (sliding window) and
 * queues at most 90 requests. The story:
 *
 * 1. a burst of 101 jobs arrives at once: 10 start, 90 queue, and the 101st
 *    is rejected with `QueueFull` (the queue is bounded);
 * 2. the queue drains at 10 starts per second;
 * 3. at 1.5 s the limit is raised to 25 per second: what is queued is
 *    re-planned at once and drains faster;
 * 4. a per-second histogram of the starts shows that no second ever saw more
 *    than the limit in force.
 *
 * Runs on the real clock for about 4.5 seconds. Run with
 * `npm run example:rate-limited-spawner`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Clock, Console, Effect, Fiber } from "effect"
import { ChildSpec, RateLimitedSupervisor } from "effect-otp"

const JOBS = 100

const program = Effect.gen(function* () {
  const sup = yield* RateLimitedSupervisor.make({
    name: "jobs",
    limit: 10,
    window: "1 second",
    maxQueue: JOBS - 10
  })
  const t0 = yield* Clock.currentTimeMillis
  const elapsed = Effect.map(Clock.currentTimeMillis, (now) => (now - t0) / 1000)
  const starts: Array<number> = []

  // each job records when it started, works a little, and is done (a temporary child)
  const job = (n: number) =>
    ChildSpec.make({
      id: `job-${n}`,
      start: Effect.flatMap(elapsed, (t) => Effect.sync(() => void starts.push(t))),
      run: () => Effect.sleep("200 millis"),
      restart: "temporary"
    })

  yield* Console.log(`t=0.0s  a burst of ${JOBS + 1} jobs arrives (limit 10/s, queue holds ${JOBS - 10})`)
  const fibers = yield* Effect.forEach(
    Array.from({ length: JOBS }, (_, i) => i),
    (i) => Effect.forkChild(RateLimitedSupervisor.startChild(sup, job(i)), { startImmediately: true })
  )
  const rejected = yield* Effect.flip(RateLimitedSupervisor.startChild(sup, job(JOBS)))
  yield* Console.log(`        job ${JOBS} rejected: ${rejected._tag} — ${rejected.message}`)

  const report = Effect.gen(function* () {
    const s = yield* RateLimitedSupervisor.stats(sup)
    const t = yield* elapsed
    yield* Console.log(
      `t=${t.toFixed(1)}s  started ${String(s.admitted).padStart(3)}  queued ${String(s.queued).padStart(3)}  ` +
        `${"▮".repeat(Math.round(s.queued / 2))}`
    )
    return s.queued
  })
  yield* report
  let raised = false
  while ((yield* report.pipe(Effect.delay("500 millis"))) > 0) {
    if (!raised && (yield* elapsed) >= 1.4) {
      raised = true
      yield* RateLimitedSupervisor.setLimits(sup, { limit: 25 })
      yield* Console.log(`        limit raised to 25/s: the queue is re-planned at once`)
      yield* report
    }
  }
  yield* Effect.forEach(fibers, Fiber.join, { discard: true })

  yield* Console.log(`\nstarts per second (${starts.length} jobs)`)
  const seconds = Math.floor(Math.max(...starts)) + 1
  for (let s = 0; s < seconds; s++) {
    const n = starts.filter((t) => t >= s && t < s + 1).length
    yield* Console.log(`  ${s}s │${"█".repeat(n)} ${n}`)
  }
  const stats = yield* RateLimitedSupervisor.stats(sup)
  yield* Console.log(`\nadmitted ${stats.admitted}, rejected ${stats.rejected}, still queued ${stats.queued}`)
})

NodeRuntime.runMain(Effect.scoped(program))
