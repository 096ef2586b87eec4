/**
 * A bounded, drop-oldest event buffer between the supervisors (which emit
 * synchronously, from their own fibers) and one reader (a Stream pulled at
 * its own pace).
 *
 * The listener never blocks and never allocates beyond the ring: when the
 * ring is full the oldest event is overwritten and counted. The reader gets
 * every buffered event in one batch, preceded by a `Dropped` marker when
 * events were lost since its previous batch, so it always knows there is a
 * gap and how big it was.
 *
 * @internal
 */
import * as Channel from "effect/Channel"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Inspect from "../../internal/inspect.ts"
import { follow } from "./follow.ts"

/** @internal */
export interface Dropped {
  readonly _tag: "Dropped"
  /** events lost just before this marker (the oldest ones were overwritten) */
  readonly count: number
  /** events lost by this reader since it started */
  readonly total: number
}

/** @internal */
export type ReaderEvent = Inspect.InspectEvent | Dropped

/** @internal */
export class Ring {
  private readonly items: Array<Inspect.InspectEvent | undefined>
  private head = 0
  size = 0
  /** events overwritten since the reader started */
  dropped = 0
  private reported = 0
  private waiter: (() => void) | undefined = undefined

  /** what a woken reader does before taking the batch: one yield, or a sleep of the batch window */
  private readonly settle: Effect.Effect<void>

  constructor(
    readonly capacity: number,
    batchMillis = 0
  ) {
    this.items = new Array(capacity)
    this.settle = batchMillis > 0 ? Effect.sleep(batchMillis) : Effect.yieldNow
  }

  readonly push = (event: Inspect.InspectEvent): void => {
    if (this.size === this.capacity) {
      this.items[this.head] = event
      this.head = (this.head + 1) % this.capacity
      this.dropped++
    } else {
      this.items[(this.head + this.size) % this.capacity] = event
      this.size++
    }
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter()
    }
  }

  private takeWith(batch: Array<ReaderEvent>): ReadonlyArray<ReaderEvent> {
    if (this.dropped > this.reported) {
      batch.unshift({ _tag: "Dropped", count: this.dropped - this.reported, total: this.dropped })
      this.reported = this.dropped
    }
    return batch
  }

  /** Everything buffered (with a `Dropped` marker first when needed); empties the ring. */
  take(): ReadonlyArray<ReaderEvent> {
    const batch: Array<ReaderEvent> = new Array(this.size)
    for (let i = 0; i < this.size; i++) {
      const at = (this.head + i) % this.capacity
      batch[i] = this.items[at]!
      this.items[at] = undefined
    }
    this.head = 0
    this.size = 0
    return this.takeWith(batch)
  }

  /**
   * Waits for at least one event. A woken reader first lets the fibers
   * already scheduled run (one `yieldNow`, or the batch window on the Clock),
   * so that events emitted together (a crash, then its restart) come in one
   * batch: a reader costs the emitters one wake-up per burst, not one per
   * event.
   */
  readonly next: Effect.Effect<ReadonlyArray<ReaderEvent>> = Effect.suspend(() =>
    this.size > 0 || this.dropped > this.reported
      ? Effect.succeed(this.take())
      : Effect.andThen(
          Effect.callback<void>((resume) => {
            this.waiter = () => resume(Effect.void)
            return Effect.sync(() => {
              this.waiter = undefined
            })
          }),
          Effect.andThen(
            this.settle,
            Effect.sync(() => this.take())
          )
        )
  )
}

/**
 * A Stream of the events of `root` and of every inspectable node below it,
 * through a {@link Ring} of `capacity` events. Subscribes when the stream
 * starts, unsubscribes when it ends.
 *
 * @internal
 */
export const stream = (
  root: Inspect.Inspectable,
  capacity: number,
  batchMillis = 0,
  onStart?: (ring: Ring) => void
): Stream.Stream<ReaderEvent> =>
  Stream.fromChannel(
    Channel.fromTransform((_, scope) =>
      Effect.suspend(() => {
        const ring = new Ring(capacity, batchMillis)
        const unsubscribe = follow(root, ring.push)
        onStart?.(ring)
        return Effect.as(
          Scope.addFinalizer(scope, Effect.sync(unsubscribe)),
          ring.next as Effect.Effect<readonly [ReaderEvent, ...Array<ReaderEvent>]>
        )
      })
    )
  )
