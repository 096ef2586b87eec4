/**
 * Following a tree's events: the subscriptions keep in step with the tree
 * (new inspectable children are subscribed, gone ones dropped) without
 * walking the tree on every event. Hosts here are bare inspectables whose
 * children the test sets, so walks can be counted.
 */
import { assert, describe, it } from "vitest"
import * as Inspect from "../../src/internal/inspect.ts"
import { follow } from "../../src/Observer/internal/follow.ts"

interface Host {
  readonly inspector: Inspect.Inspector & { walks: number }
  readonly owner: { listeners: Inspect.Listeners }
  children: Array<Host>
  readonly emit: (tag: "Started" | "Restarted" | "Exited", pid: number) => void
}

const host = (name: string, lookup = false): Host => {
  const owner: { listeners: Inspect.Listeners } = { listeners: undefined }
  const h: Host = {
    owner,
    children: [],
    inspector: {
      kind: "DynamicSupervisor",
      name,
      walks: 0,
      snapshot: () => ({
        kind: "DynamicSupervisor",
        type: "supervisor",
        name,
        state: "running",
        restarts: 0,
        children: []
      }),
      subscribe: (l) => Inspect.addListener(owner, l),
      childInspectors() {
        this.walks++
        return h.children.map((c) => c.inspector)
      },
      ...(lookup ? { childInspector: (pid: number) => h.children[pid - 1]?.inspector } : {})
    },
    emit: (tag, pid) => {
      if (owner.listeners === undefined) return
      const base = { supervisor: name, supervisorKind: "DynamicSupervisor" as const, id: `c${pid}`, pid, at: 0 }
      Inspect.emit(
        owner.listeners,
        tag === "Exited"
          ? { _tag: "Exited", ...base, reason: "crash", cause: "boom" }
          : tag === "Restarted"
            ? { _tag: "Restarted", ...base, previousPid: pid - 1, attempt: 1 }
            : { _tag: "Started", ...base }
      )
    }
  }
  return h
}

const rootOf = (h: Host): Inspect.Inspectable => ({ [Inspect.TypeId]: h.inspector })

describe("follow", () => {
  it("subscribes to every inspectable node below the root, and lets go of all of them at the end", () => {
    const root = host("root")
    const a = host("a")
    const b = host("b")
    root.children = [a]
    a.children = [b]
    const seen: Array<string> = []
    const stop = follow(rootOf(root), (e) => seen.push(`${e.supervisor}:${e._tag}`))
    b.emit("Started", 1)
    a.emit("Exited", 1)
    assert.deepStrictEqual(seen, ["b:Started", "a:Exited"])
    stop()
    for (const h of [root, a, b]) assert.isUndefined(h.owner.listeners)
  })

  it("a child supervisor started under a small node is followed from the event that announced it", () => {
    const root = host("root")
    const seen: Array<string> = []
    const stop = follow(rootOf(root), (e) => seen.push(`${e.supervisor}:${e._tag}`))
    const child = host("child")
    root.children = [child]
    root.emit("Started", 1)
    child.emit("Started", 1)
    assert.deepStrictEqual(seen, ["root:Started", "child:Started"])
    // replaced by a new incarnation: the new one is followed, the old one dropped at the next walk
    const next = host("child'")
    root.children = [next]
    root.emit("Restarted", 2)
    next.emit("Started", 1)
    assert.isUndefined(child.owner.listeners)
    assert.deepStrictEqual(seen.slice(2), ["root:Restarted", "child':Started"])
    stop()
  })

  it("exits do not walk the node (nothing new can appear on an exit)", () => {
    const root = host("root")
    const stop = follow(rootOf(root), () => {})
    const before = root.inspector.walks
    for (let pid = 1; pid <= 100; pid++) root.emit("Exited", pid)
    assert.strictEqual(root.inspector.walks, before)
    stop()
  })

  it("a node with 100k children is not walked on every start (walks take at most ~5 % of the time)", () => {
    const root = host("root")
    // 100k workers: a walk passes over every one and finds nothing to subscribe to
    const workers = Array.from({ length: 100_000 }, (_, i) => ({ pid: i + 1, handle: undefined as unknown }))
    const inspector = root.inspector as { walks: number; childInspectors: () => ReadonlyArray<Inspect.Inspector> }
    inspector.childInspectors = () => {
      inspector.walks++
      const out: Array<Inspect.Inspector> = []
      for (const w of workers) if (Inspect.isInspectable(w.handle)) out.push(w.handle[Inspect.TypeId])
      return out
    }
    const stop = follow(rootOf(root), () => {})
    const t0 = performance.now()
    for (let pid = 1; pid <= 20_000; pid++) root.emit("Started", pid)
    const elapsed = performance.now() - t0
    // one walk per event would be 20,000 walks of 100k children (seconds); the bound allows a few per 20 walk-times
    assert.isBelow(root.inspector.walks, 200, `walked ${root.inspector.walks} times in ${elapsed.toFixed(0)} ms`)
    stop()
  })

  it("an inspector that can look a child up by pid is asked that, not walked", () => {
    const root = host("root", true)
    const stop = follow(rootOf(root), () => {})
    const walks = root.inspector.walks
    const child = host("child")
    root.children = [child]
    root.emit("Started", 1)
    assert.strictEqual(root.inspector.walks, walks)
    assert.strictEqual(child.owner.listeners?.size, 1, "the new child was found by its pid")
    root.emit("Exited", 1)
    assert.isUndefined(child.owner.listeners, "and dropped when it exited")
    stop()
  })
})
