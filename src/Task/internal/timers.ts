/**
 * One timer for many timeouts. `Task.await` arms a 5 s timeout per call, and
 * a timer fiber per call (a `setTimeout` plus a fiber) costs about as much as
 * the task itself. Here every timeout of a supervisor goes into a FIFO per
 * duration — deadlines of one duration grow with the clock, so each FIFO is
 * sorted — and one fiber sleeps (on Effect's Clock, so TestClock drives it)
 * until the earliest deadline. Cancelling marks the entry; dead entries are
 * dropped from the front, and the FIFO is compacted when they pile up
 * behind a long-lived one.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import { monotonicMillis } from "../../internal/effectInternals.ts"

/** @internal */
export interface Entry {
  readonly deadline: number
  fire: (() => void) | undefined
  readonly fifo: Fifo
}

interface Fifo {
  readonly entries: Array<Entry>
  head: number
  /** cancelled entries still in `entries` past `head` */
  dead: number
}

/** @internal */
export class Timers {
  readonly fifos = new Map<number, Fifo>()
  sleeper: Fiber.Fiber<void> | undefined = undefined
  /** the deadline the sleeper wakes at (Infinity: no sleeper) */
  wakeAt = Infinity

  /** monotonic milliseconds: a wall-clock step moves no deadline */
  readonly now: () => number

  constructor(
    readonly clock: Clock.Clock,
    readonly context: Context.Context<never>
  ) {
    this.now = monotonicMillis(clock)
  }

  /** Calls `fire` after `millis`, unless cancelled first. */
  add(millis: number, fire: () => void): Entry {
    let fifo = this.fifos.get(millis)
    if (fifo === undefined) {
      fifo = { entries: [], head: 0, dead: 0 }
      this.fifos.set(millis, fifo)
    } else {
      trim(fifo)
    }
    const entry: Entry = { deadline: this.now() + millis, fire, fifo }
    fifo.entries.push(entry)
    if (entry.deadline < this.wakeAt) this.restart()
    return entry
  }

  cancel(entry: Entry): void {
    if (entry.fire === undefined) return
    entry.fire = undefined
    entry.fifo.dead++
  }

  /** the earliest live entry, after dropping dead ones */
  earliest(): Entry | undefined {
    let best: Entry | undefined
    for (const [millis, fifo] of this.fifos) {
      trim(fifo)
      const entry = fifo.entries[fifo.head]
      if (entry === undefined) {
        this.fifos.delete(millis)
        continue
      }
      if (best === undefined || entry.deadline < best.deadline) best = entry
    }
    return best
  }

  restart(): void {
    this.sleeper?.interruptUnsafe()
    // while the new loop runs synchronously, timeouts added by what it fires do not restart it
    this.wakeAt = -Infinity
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      const next = this.earliest()
      if (next === undefined) {
        this.wakeAt = Infinity
        return Effect.void
      }
      const now = this.now()
      if (now >= next.deadline) {
        const fire = next.fire!
        next.fire = undefined
        next.fifo.head++
        fire()
        return loop
      }
      this.wakeAt = next.deadline
      return Effect.andThen(this.clock.sleep(Duration.millis(next.deadline - now)), loop)
    })
    this.sleeper = Effect.runForkWith(this.context)(loop)
  }

  /** Stops the sleeper (the supervisor stopped): no timer keeps the process alive. */
  close(): void {
    this.sleeper?.interruptUnsafe()
    this.sleeper = undefined
    this.wakeAt = Infinity
    this.fifos.clear()
  }
}

const trim = (fifo: Fifo): void => {
  const entries = fifo.entries
  while (fifo.head < entries.length && entries[fifo.head]!.fire === undefined) {
    fifo.head++
    fifo.dead--
  }
  if (fifo.head === entries.length) {
    entries.length = 0
    fifo.head = 0
    fifo.dead = 0
  } else if (fifo.dead > 1024 && fifo.dead * 2 > entries.length - fifo.head) {
    // cancelled entries pile up behind a long-lived one: keep only the live
    const kept = entries.filter((e, i) => i >= fifo.head && e.fire !== undefined)
    entries.length = 0
    entries.push(...kept)
    fifo.head = 0
    fifo.dead = 0
  }
}
