/**
 * The one inspection protocol. Every supervisor kind (Supervisor,
 * DynamicSupervisor, TaskSupervisor, RateLimitedSupervisor), the Pool (as the
 * supervisor of its connections), the Registry and the RateLimiter carry an
 * {@link Inspector} under {@link TypeId}. `Supervisor.tree`, the Observer's
 * snapshot, event stream and web page all read the live system through it and
 * nothing else.
 *
 * Rules every implementation keeps:
 *
 * - `snapshot()` is synchronous and returns plain JSON-serializable data
 *   (no functions, no classes, no bigint, no cycles). It descends into every
 *   child whose handle is itself {@link Inspectable}.
 * - Nothing is paid while nobody looks: a host keeps its listeners in a
 *   {@link Listeners} value that is `undefined` until the first `subscribe`, so
 *   emitting is one `undefined` check (build the event only behind it).
 * - Events of a host are about *its own* children; to follow a tree, subscribe
 *   to every inspectable node (see {@link subscribeTree}).
 * - Times are epoch milliseconds read from the host's Effect `Clock`
 *   (`currentTimeMillisUnsafe`), so `TestClock` drives them.
 *
 * @internal
 */

/** The property under which a value carries its {@link Inspector}. @internal */
export const TypeId = "~effect-otp/Inspectable" as const

/** @internal */
export type TypeId = typeof TypeId

/** What can be looked into. @internal */
export type InspectableKind =
  | "Supervisor"
  | "DynamicSupervisor"
  | "TaskSupervisor"
  | "RateLimitedSupervisor"
  | "Pool"
  | "Registry"
  | "RateLimiter"
  | "Server"
  | "Agent"
  | "ClusterSupervisor"
  | "ClusterRegistry"

/**
 * The kind of a node: an inspectable kind, or a leaf (`"Worker"`: a plain
 * child; `"Task"`: a TaskSupervisor task; `"Connection"`: a pool connection).
 *
 * @internal
 */
export type NodeKind = InspectableKind | "Worker" | "Task" | "Connection"

/** @internal */
export type NodeState = "starting" | "running" | "restarting" | "stopping" | "stopped" | "failed"

/** A stat value: JSON scalars only. @internal */
export type Stat = number | string | boolean | null

/** Elixir's `count_children` figures. @internal */
export interface NodeCounts {
  readonly specs: number
  readonly active: number
  readonly supervisors: number
  readonly workers: number
}

/**
 * One node of the live tree, as plain data.
 *
 * For a child, `id`/`pid`/`restarts`/`state` are what its supervisor knows
 * about it; when its handle is inspectable the node also carries that
 * handle's `kind`, `name`, `counts`, `stats` and `children`.
 *
 * @internal
 */
export interface NodeSnapshot {
  readonly kind: NodeKind
  /** `"supervisor"` when the node supervises others (OTP's child type) */
  readonly type: "worker" | "supervisor"
  /** the name given in the options of an inspectable node */
  readonly name?: string | undefined
  /** the child id (spec id) under its parent; for a root, its name */
  readonly id?: string | undefined
  /** the current incarnation's pid, when one runs */
  readonly pid?: number | undefined
  readonly state: NodeState
  /** restarts of this child since it was first started (0 for a root) */
  readonly restarts: number
  /** when the current incarnation started, epoch ms on the host's Clock */
  readonly startedAt?: number | undefined
  readonly counts?: NodeCounts | undefined
  /**
   * Per kind figures: pool `open`/`idle`/`inUse`/`waiting`, limiter
   * `admitted`/`queued`/`inWindow`, task supervisor `tasks`/`abandoned`,
   * registry `names`/`keys`…
   */
  readonly stats?: Readonly<Record<string, Stat>> | undefined
  readonly children: ReadonlyArray<NodeSnapshot>
}

/** What every event carries: who (supervisor name and kind), which child, when. @internal */
export interface EventBase {
  /** the name of the supervisor (or pool, …) that emitted it */
  readonly supervisor: string
  readonly supervisorKind: InspectableKind
  readonly id: string | undefined
  readonly pid: number | undefined
  /** epoch ms on the host's Clock */
  readonly at: number
}

/** A child's incarnation finished `start` (a first start; restarts emit {@link Restarted}). @internal */
export interface Started extends EventBase {
  readonly _tag: "Started"
}

/** An incarnation ended. `cause` is the pretty-printed cause of a crash. @internal */
export interface Exited extends EventBase {
  readonly _tag: "Exited"
  readonly reason: "normal" | "shutdown" | "crash"
  readonly cause?: string | undefined
}

/** A new incarnation replaced `previousPid` (its start succeeded); `attempt` counts from 1. @internal */
export interface Restarted extends EventBase {
  readonly _tag: "Restarted"
  readonly previousPid: number
  readonly attempt: number
}

/** The supervisor gave up (restart intensity or backoff schedule exhausted) because of child `id`/`pid`. @internal */
export interface GaveUp extends EventBase {
  readonly _tag: "GaveUp"
  readonly reason: "intensity" | "backoff"
  readonly maxRestarts: number
  readonly maxSeconds: number
}

/** A child did not stop within its shutdown policy and is no longer waited for. @internal */
export interface Abandoned extends EventBase {
  readonly _tag: "Abandoned"
  readonly shutdownMillis: number
}

/** @internal */
export type InspectEvent = Started | Exited | Restarted | GaveUp | Abandoned

/** @internal */
export interface Inspector {
  readonly kind: InspectableKind
  readonly name: string | undefined
  /** The node as of now, descending into inspectable children. Synchronous. */
  snapshot(): NodeSnapshot
  /** Listens to this node's own events until the returned function is called. */
  subscribe(listener: (event: InspectEvent) => void): () => void
  /** The inspectors of the live children whose handles are inspectable (for {@link subscribeTree}). */
  childInspectors(): ReadonlyArray<Inspector>
}

/** @internal */
export interface Inspectable {
  readonly [TypeId]: Inspector
}

/** @internal */
export const isInspectable = (u: unknown): u is Inspectable =>
  typeof u === "object" && u !== null && TypeId in u && typeof (u as any)[TypeId]?.snapshot === "function"

/** The inspector of a value, if it has one. @internal */
export const inspectorOf = (u: unknown): Inspector | undefined => (isInspectable(u) ? u[TypeId] : undefined)

/**
 * The node of a supervised child: what its supervisor knows (`base`), merged
 * with its handle's own snapshot when the handle is inspectable.
 *
 * @internal
 */
export const childNode = (
  base: {
    readonly kind: NodeKind
    readonly type: "worker" | "supervisor"
    readonly id: string | undefined
    readonly pid: number | undefined
    readonly state: NodeState
    readonly restarts: number
    readonly startedAt?: number | undefined
  },
  handle: unknown
): NodeSnapshot => {
  const inspector = base.state === "running" ? inspectorOf(handle) : undefined
  if (inspector === undefined) return { ...base, children: [] }
  const inner = inspector.snapshot()
  return {
    ...inner,
    type: base.type,
    id: base.id,
    pid: base.pid,
    restarts: base.restarts,
    startedAt: base.startedAt,
    // a running child whose own node says stopping/stopped shows that
    state: inner.state === "running" ? base.state : inner.state
  }
}

/**
 * Listener bookkeeping for a host: `undefined` until someone subscribes, so
 * an emit site is `if (host.listeners !== undefined) emit(host.listeners, …)`.
 * A listener that throws is dropped from that delivery only (it cannot break
 * the supervisor).
 *
 * @internal
 */
export type Listeners = Set<(event: InspectEvent) => void> | undefined

/** Adds a listener to a host's {@link Listeners}; returns the unsubscribe function. @internal */
export const addListener = (owner: { listeners: Listeners }, listener: (event: InspectEvent) => void): (() => void) => {
  const set = (owner.listeners ??= new Set())
  const wrapped = (event: InspectEvent) => listener(event)
  set.add(wrapped)
  return () => {
    set.delete(wrapped)
    if (set.size === 0 && owner.listeners === set) owner.listeners = undefined
  }
}

/** Delivers an event to every listener. @internal */
export const emit = (listeners: ReadonlySet<(event: InspectEvent) => void>, event: InspectEvent): void => {
  for (const listener of listeners) {
    try {
      listener(event)
    } catch {
      // an observer's bug must not break supervision
    }
  }
}

/**
 * Subscribes to `root` and to every inspectable node below it, following the
 * tree as it changes: after every `Started`/`Restarted`/`Exited` event the
 * live tree is walked again (through {@link Inspector.childInspectors}); new
 * inspectable nodes are subscribed and gone ones dropped. Returns the
 * unsubscribe function.
 *
 * @internal
 */
export const subscribeTree = (root: Inspectable, listener: (event: InspectEvent) => void): (() => void) => {
  const subs = new Map<Inspector, () => void>()
  let closed = false
  const onEvent = (event: InspectEvent) => {
    listener(event)
    if (event._tag !== "Abandoned" && event._tag !== "GaveUp") rescan()
  }
  const rescan = () => {
    if (closed) return
    const live = new Set<Inspector>()
    const visit = (i: Inspector) => {
      if (live.has(i)) return
      live.add(i)
      for (const c of i.childInspectors()) visit(c)
    }
    visit(root[TypeId])
    for (const [i, unsubscribe] of subs) {
      if (!live.has(i)) {
        unsubscribe()
        subs.delete(i)
      }
    }
    for (const i of live) if (!subs.has(i)) subs.set(i, i.subscribe(onEvent))
  }
  rescan()
  return () => {
    closed = true
    for (const unsubscribe of subs.values()) unsubscribe()
    subs.clear()
  }
}

/**
 * Renders a node as indented lines, one per child:
 * `id #pid state (kind) restarts: n`, the root as `name (kind)`.
 *
 * @internal
 */
export const formatNode = (node: NodeSnapshot): string => {
  const lines = [`${node.name ?? node.id ?? "?"} (${node.kind})`]
  const walk = (children: ReadonlyArray<NodeSnapshot>, prefix: string) => {
    children.forEach((c, i) => {
      const last = i === children.length - 1
      const pid = c.pid === undefined ? "" : ` #${c.pid}`
      const kind = c.kind === "Worker" || c.kind === "Task" || c.kind === "Connection" ? "" : ` (${c.kind})`
      const restarts = c.restarts ? ` restarts: ${c.restarts}` : ""
      lines.push(`${prefix}${last ? "└─" : "├─"} ${c.id ?? c.name ?? "?"}${pid} ${c.state}${kind}${restarts}`)
      walk(c.children, `${prefix}${last ? "   " : "│  "}`)
    })
  }
  walk(node.children, "")
  return lines.join("\n")
}
