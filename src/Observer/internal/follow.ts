/**
 * Follows a tree's events: subscribes to the root and to every inspectable
 * node below it, and keeps the set of subscriptions in step as nodes start,
 * restart and stop.
 *
 * `Inspect.subscribeTree` walks the whole tree after every event. That is
 * right for small trees and ruinous for a DynamicSupervisor of 100k workers
 * (each start would walk the 100k). Here only the node that emitted is
 * walked again (its `childInspectors()`), and only while that is cheap:
 *
 * - a node whose last walk took under 5 µs (a few dozen children), or under
 *   100 µs when it has inspectable children (a supervisor of supervisors), is
 *   walked on every Started/Restarted event: nothing is missed (children that
 *   stopped are dropped by the next walk; they emit nothing meanwhile);
 * - a bigger node (typically many workers, which have nothing to subscribe
 *   to) is walked at most once per 20 walk-durations, on its next event or by
 *   a timer, so walks take at most ~5 % of the time. A new inspectable child
 *   of such a node is followed that much later (milliseconds).
 *
 * A walk's cost is the least of its last four measures (two at the start),
 * so a walk that was preempted or hit a GC pause does not make a small node
 * look big. An inspector that offers `childInspector(pid)` (one lookup) is
 * asked that instead of being walked.
 *
 * @internal
 */
import { performance } from "node:perf_hooks"
import * as Inspect from "../../internal/inspect.ts"

/** An inspector that can find one child's inspector by pid (optional in the protocol). */
interface WithLookup extends Inspect.Inspector {
  childInspector(pid: number): Inspect.Inspector | undefined
}

interface Followed {
  unsubscribe: () => void
  children: ReadonlyArray<Inspect.Inspector>
  /** how long the last walk of this node's children took (ms) */
  walkMs: number
  /** the last few walk durations (ms) */
  samples: Array<number>
  walkedAt: number
  /** children by pid, when the inspector can look one up (`childInspector`) */
  byPid: Map<number, Inspect.Inspector> | undefined
  timer: ReturnType<typeof setTimeout> | undefined
}

/** Walks shorter than this are done on every event. */
const cheapMs = 0.005
/** ... and this for a node that has inspectable children (where a missed child matters most). */
const cheapParentMs = 0.1
/** A postponed walk waits this many times its own duration: walks take at most 1/20 of the time. */
const spacing = 20

/** @internal */
export const follow = (root: Inspect.Inspectable, listener: (event: Inspect.InspectEvent) => void): (() => void) => {
  const nodes = new Map<Inspect.Inspector, Followed>()
  let closed = false

  const walk = (inspector: Inspect.Inspector, node: Followed) => {
    if (node.timer !== undefined) {
      clearTimeout(node.timer)
      node.timer = undefined
    }
    const t0 = performance.now()
    const children = inspector.childInspectors()
    node.walkedAt = performance.now()
    record(node, node.walkedAt - t0)
    if (children.length === 0 && node.children.length === 0) return // the common case: workers only
    const now = new Set(children)
    for (const c of node.children) if (!now.has(c)) remove(c)
    node.children = children
    for (const c of children) add(c)
  }

  /**
   * A walk's cost is the least of the last few measured: a walk preempted by
   * another process or a GC pause does not make a small node look big.
   */
  const record = (node: Followed, ms: number) => {
    node.samples.push(ms)
    if (node.samples.length > 4) node.samples.shift()
    node.walkMs = Math.min(...node.samples)
  }

  const remove = (inspector: Inspect.Inspector) => {
    const node = nodes.get(inspector)
    if (node === undefined) return
    nodes.delete(inspector)
    if (node.timer !== undefined) clearTimeout(node.timer)
    node.unsubscribe()
    for (const c of node.children) remove(c)
  }

  const onEvent = (inspector: Inspect.Inspector, node: Followed, event: Inspect.InspectEvent) => {
    listener(event)
    if (closed || !nodes.has(inspector)) return
    if (node.byPid !== undefined) return lookup(inspector as WithLookup, node, event)
    // only a start can bring a new inspectable child; the gone ones are dropped by the next walk
    if (event._tag !== "Started" && event._tag !== "Restarted") return
    const cheap = node.walkMs < (node.children.length > 0 ? cheapParentMs : cheapMs)
    if (cheap || performance.now() - node.walkedAt >= spacing * node.walkMs) {
      walk(inspector, node)
    } else if (node.timer === undefined) {
      const wait = Math.max(0, node.walkedAt + spacing * node.walkMs - performance.now())
      node.timer = setTimeout(() => {
        node.timer = undefined
        if (!closed && nodes.has(inspector)) walk(inspector, node)
      }, wait)
      node.timer.unref?.()
    }
  }

  const lookup = (inspector: WithLookup, node: Followed, event: Inspect.InspectEvent) => {
    const byPid = node.byPid!
    const previous = event._tag === "Restarted" ? event.previousPid : event._tag === "Exited" ? event.pid : undefined
    if (previous !== undefined && byPid.has(previous)) {
      remove(byPid.get(previous)!)
      byPid.delete(previous)
    }
    if ((event._tag === "Started" || event._tag === "Restarted") && event.pid !== undefined) {
      const child = inspector.childInspector(event.pid)
      if (child !== undefined) {
        byPid.set(event.pid, child)
        add(child)
      }
    }
  }

  const add = (inspector: Inspect.Inspector) => {
    if (closed || nodes.has(inspector)) return
    const node: Followed = {
      unsubscribe: () => {},
      children: [],
      walkMs: 0,
      samples: [],
      walkedAt: 0,
      byPid: undefined,
      timer: undefined
    }
    nodes.set(inspector, node)
    node.unsubscribe = inspector.subscribe((event) => onEvent(inspector, node, event))
    walk(inspector, node)
    // a second measure at once, so that one unlucky first walk does not decide
    const t0 = performance.now()
    inspector.childInspectors()
    record(node, performance.now() - t0)
    if (typeof (inspector as Partial<WithLookup>).childInspector === "function") {
      // the first walk found the current children; later ones are looked up one by one (a stopped
      // child found by that walk stays subscribed until the end: it emits nothing more)
      node.byPid = new Map()
    }
  }

  add(root[Inspect.TypeId])
  return () => {
    closed = true
    for (const inspector of [...nodes.keys()]) remove(inspector)
  }
}
