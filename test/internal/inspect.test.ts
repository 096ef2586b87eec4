/**
 * The inspection protocol's own helpers: listeners cost nothing until someone
 * subscribes, a throwing listener cannot break its host, subscribeTree follows
 * the tree as it changes, formatNode renders any root.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Inspect from "../../src/internal/inspect.ts"

const started = (supervisor: string, pid: number): Inspect.InspectEvent => ({
  _tag: "Started",
  supervisor,
  supervisorKind: "DynamicSupervisor",
  id: undefined,
  pid,
  at: 0
})

const fakeNode = (name: string, children: Array<Inspect.Inspector> = []) => {
  const host = { listeners: undefined as Inspect.Listeners }
  const inspector: Inspect.Inspector = {
    kind: "DynamicSupervisor",
    name,
    snapshot: () => ({
      kind: "DynamicSupervisor",
      type: "supervisor",
      name,
      state: "running",
      restarts: 0,
      children: []
    }),
    subscribe: (listener) => Inspect.addListener(host, listener),
    childInspectors: () => children
  }
  return {
    host,
    inspector,
    children,
    fire: (e: Inspect.InspectEvent) => host.listeners && Inspect.emit(host.listeners, e)
  }
}

describe("listeners", () => {
  it("stay undefined until the first subscribe and return to undefined after the last unsubscribe", () => {
    const node = fakeNode("a")
    assert.isUndefined(node.host.listeners)
    const seen: Array<number | undefined> = []
    const off = node.inspector.subscribe((e) => seen.push(e.pid))
    node.fire(started("a", 1))
    off()
    assert.isUndefined(node.host.listeners)
    node.fire(started("a", 2))
    assert.deepStrictEqual(seen, [1])
  })

  it("a listener that throws does not stop delivery to the others", () => {
    const node = fakeNode("a")
    const seen: Array<number | undefined> = []
    node.inspector.subscribe(() => {
      throw new Error("observer bug")
    })
    node.inspector.subscribe((e) => seen.push(e.pid))
    node.fire(started("a", 1))
    assert.deepStrictEqual(seen, [1])
  })
})

describe("subscribeTree", () => {
  it("subscribes to every inspectable node and picks up a node that appears later", () => {
    const leaf = fakeNode("leaf")
    const late = fakeNode("late")
    const root = fakeNode("root", [leaf.inspector])
    const seen: Array<string> = []
    const off = Inspect.subscribeTree({ [Inspect.TypeId]: root.inspector }, (e) => seen.push(e.supervisor))
    leaf.fire(started("leaf", 1))
    root.children.push(late.inspector)
    root.fire(started("root", 2)) // a new child appeared: the tree is walked again
    late.fire(started("late", 3))
    off()
    leaf.fire(started("leaf", 4))
    assert.deepStrictEqual(seen, ["leaf", "root", "late"])
    assert.isUndefined(root.host.listeners)
    assert.isUndefined(late.host.listeners)
  })
})

describe("formatNode", () => {
  it("prints the root by name and each child as `id #pid state (kind) restarts: n`", () => {
    const text = Inspect.formatNode({
      kind: "TaskSupervisor",
      type: "supervisor",
      name: "tasks",
      state: "running",
      restarts: 0,
      children: [
        { kind: "Task", type: "worker", id: "t1", pid: 7, state: "running", restarts: 0, children: [] },
        {
          kind: "Pool",
          type: "supervisor",
          id: "db",
          pid: 8,
          state: "running",
          restarts: 2,
          children: [{ kind: "Connection", type: "worker", pid: 9, state: "running", restarts: 0, children: [] }]
        }
      ]
    })
    assert.strictEqual(
      text,
      ["tasks (TaskSupervisor)", "├─ t1 #7 running", "└─ db #8 running (Pool) restarts: 2", "   └─ ? #9 running"].join(
        "\n"
      )
    )
  })

  it("a snapshot is JSON data: it survives a JSON round trip unchanged", () => {
    const node: Inspect.NodeSnapshot = {
      kind: "RateLimiter",
      type: "worker",
      name: "api",
      state: "running",
      restarts: 0,
      stats: { admitted: 3, queued: 0, inWindow: 3 },
      children: []
    }
    assert.deepStrictEqual(JSON.parse(JSON.stringify(node)), node)
  })
})
