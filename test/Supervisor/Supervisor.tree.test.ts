/**
 * Supervision trees: supervisors under supervisors, escalation, ordered tree
 * shutdown, and applications declared as Layers (reliability C.1 #21, #22).
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Layer, Scope } from "effect"
import { ChildSpec, DynamicSupervisor, Supervisor } from "effect-otp"
import { type Control, controllable, eventually, type EventLog, makeEventLog, settle } from "../utils/lifecycle.ts"

/** The running incarnation of child `id`. */
const childOf = <A>(sup: Supervisor.Supervisor, id: string): Supervisor.Child<A> => {
  const c = Supervisor.whichChildrenUnsafe(sup)?.find((c) => c.id === id)
  if (c === undefined || typeof c.child === "string") throw new Error(`child ${id} is not running`)
  return c.child as Supervisor.Child<A>
}

const crash = (sup: Supervisor.Supervisor, id: string) => Deferred.fail(childOf<Control>(sup, id).handle.exit, "boom")

/** A supervisor child that logs its own stop after its children's. */
const logged = (log: EventLog, name: string, spec: ChildSpec.ChildSpec<Supervisor.Supervisor, any, never>) =>
  ChildSpec.make({
    id: name,
    start: Effect.andThen(
      Effect.addFinalizer(() => log.add(`stop:${name}`)),
      spec.start
    ),
    run: spec.run!,
    type: "supervisor",
    restart: spec.restart
  })

describe("childSpec", () => {
  it.effect("a Supervisor, a DynamicSupervisor and workers under one root; counted as supervisors (C.1 #15)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const root = yield* Supervisor.make(
        [
          Supervisor.childSpec([controllable(log, "w1")], { id: "inner", strategy: "oneForOne" }),
          DynamicSupervisor.childSpec({ id: "dyn" }),
          controllable(log, "w2")
        ],
        { strategy: "oneForOne" }
      )
      assert.deepStrictEqual(yield* Supervisor.countChildren(root), { specs: 3, active: 3, supervisors: 2, workers: 1 })
      const inner = childOf<Supervisor.Supervisor>(root, "inner").handle
      assert.isTrue(Supervisor.isSupervisor(inner))
      assert.strictEqual(inner.name, "inner")
      const dyn = childOf<DynamicSupervisor.DynamicSupervisor>(root, "dyn").handle
      assert.isTrue(DynamicSupervisor.isDynamicSupervisor(dyn))
      assert.deepStrictEqual(log.events, ["start:w1#1", "start:w2#1"])
    })
  )

  it.effect("shutting down a tree stops leaves before their parents, in reverse start order at every level", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const scope = yield* Scope.make()
      const branch = (name: string) =>
        logged(
          log,
          name,
          Supervisor.childSpec([controllable(log, `${name}.a`), controllable(log, `${name}.b`)], {
            strategy: "oneForOne"
          })
        )
      yield* Supervisor.make([branch("L"), controllable(log, "mid"), branch("R")], { strategy: "oneForOne" }).pipe(
        Scope.provide(scope)
      )
      log.events.length = 0
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(log.events, [
        "stop:R.b#1",
        "stop:R.a#1",
        "stop:R",
        "stop:mid#1",
        "stop:L.b#1",
        "stop:L.a#1",
        "stop:L"
      ])
    })
  )
})

describe("escalation", () => {
  it.effect("a child supervisor that gives up makes its parent apply its strategy (C.1 #21)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const top = yield* Supervisor.make(
        [
          Supervisor.childSpec([controllable(log, "s1.a"), controllable(log, "s1.b")], {
            id: "S1",
            strategy: "oneForOne",
            maxRestarts: 4
          }),
          DynamicSupervisor.childSpec({ id: "S2", maxRestarts: 4 })
        ],
        { strategy: "oneForAll" }
      )
      const s1 = childOf<Supervisor.Supervisor>(top, "S1")
      const s2 = childOf<DynamicSupervisor.DynamicSupervisor>(top, "S2")
      // S2 gets a dynamic child that fails on every restart
      yield* DynamicSupervisor.startChild(s2.handle, controllable(log, "dyn", { failStart: (n) => n > 1 }))
      yield* DynamicSupervisor.startChild(s2.handle, controllable(log, "dyn2"))
      const [first] = yield* DynamicSupervisor.whichChildren(s2.handle)
      yield* Deferred.fail((first!.child as DynamicSupervisor.Child<Control>).handle.exit, "boom")
      yield* eventually(() => {
        const now = Supervisor.whichChildrenUnsafe(top)
        return (
          now !== undefined &&
          now.every((c) => typeof c.child !== "string" && c.child.pid !== s1.pid && c.child.pid !== s2.pid)
        )
      }, "S1 and S2 restarted")
      // S1's static children came back as new incarnations; S2's dynamic children are gone
      const newS1 = childOf<Supervisor.Supervisor>(top, "S1").handle
      const newS2 = childOf<DynamicSupervisor.DynamicSupervisor>(top, "S2").handle
      assert.deepStrictEqual(
        (yield* Supervisor.whichChildren(newS1)).map((c) => (c.child as Supervisor.Child<Control>).handle.n),
        [2, 2]
      )
      assert.deepStrictEqual((yield* DynamicSupervisor.countChildren(newS2)).specs, 0)
      assert.includeMembers(log.events, ["stop:s1.b#1", "stop:s1.a#1", "start:s1.a#2", "start:s1.b#2", "stop:dyn2#1"])
    })
  )

  it.effect("escalation through three levels: each level gives up in turn until one can restart (C.1 #21)", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const l3 = Supervisor.childSpec([controllable(log, "leaf")], { id: "L3", strategy: "oneForOne", maxRestarts: 1 })
      const l2 = Supervisor.childSpec([l3, controllable(log, "l2.sibling")], {
        id: "L2",
        strategy: "oneForOne",
        maxRestarts: 0
      })
      const root = yield* Supervisor.make([l2, controllable(log, "root.sibling")], {
        strategy: "oneForOne",
        maxRestarts: 1
      })
      const levels = () => {
        const L2 = childOf<Supervisor.Supervisor>(root, "L2")
        const L3 = childOf<Supervisor.Supervisor>(L2.handle, "L3")
        return { L2, L3, leaf: childOf<Control>(L3.handle, "leaf") }
      }
      const before = levels()
      // first leaf crash: L3 restarts it
      yield* crash(before.L3.handle, "leaf")
      yield* eventually(
        () =>
          Supervisor.whichChildrenUnsafe(before.L3.handle)?.[0]?.child !== "restarting" && levels().leaf.handle.n === 2
      )
      // second: L3 gives up; L2 (maxRestarts 0) gives up too; root restarts L2
      yield* crash(before.L3.handle, "leaf")
      yield* eventually(() => {
        try {
          return levels().L2.pid !== before.L2.pid
        } catch {
          return false
        }
      }, "root restarted L2")
      yield* eventually(() => {
        try {
          return levels().leaf.handle.n === 3
        } catch {
          return false
        }
      })
      const after = levels()
      assert.notStrictEqual(after.L3.pid, before.L3.pid)
      assert.isUndefined(Supervisor.countChildrenUnsafe(before.L2.handle))
      assert.isUndefined(Supervisor.countChildrenUnsafe(before.L3.handle))
      // root's other child kept its incarnation
      assert.strictEqual(childOf<Control>(root, "root.sibling").handle.n, 1)
      assert.includeMembers(log.events, ["stop:l2.sibling#1", "start:l2.sibling#2"])
      // root's own intensity (1): the next escalation within the window ends the root
      const again = levels()
      yield* crash(again.L3.handle, "leaf")
      yield* eventually(() => levels().leaf.handle.n === 4)
      yield* crash(levels().L3.handle, "leaf")
      const error = yield* Effect.flip(Supervisor.await(root))
      assert.strictEqual(error._tag, "RestartIntensityExceeded")
      assert.strictEqual(error.child, "L2")
    })
  )

  it.effect(
    "a significant child supervisor that shuts down automatically ends its parent only if significant there (C.1 #22)",
    () =>
      Effect.gen(function* () {
        for (const significantInParent of [true, false]) {
          const log = makeEventLog()
          const inner = Supervisor.childSpec(
            [ChildSpec.make({ ...controllable(log, "job", { restart: "temporary" }), significant: true } as any)],
            {
              id: "inner",
              strategy: "oneForOne",
              autoShutdown: "anySignificant",
              restart: "transient",
              significant: significantInParent
            }
          )
          const parent = yield* Supervisor.make([controllable(log, "other"), inner], {
            strategy: "oneForOne",
            autoShutdown: "anySignificant"
          })
          const innerSup = childOf<Supervisor.Supervisor>(parent, "inner").handle
          yield* crash(innerSup, "job")
          yield* Supervisor.await(innerSup)
          yield* settle
          if (significantInParent) {
            yield* Supervisor.await(parent)
            assert.isUndefined(Supervisor.countChildrenUnsafe(parent))
          } else {
            // a transient child that exited normally: kept, not restarted
            assert.deepStrictEqual(
              Supervisor.whichChildrenUnsafe(parent)?.map((c) => [c.id, typeof c.child]),
              [
                ["inner", "string"],
                ["other", "object"]
              ]
            )
          }
        }
      })
  )
})

describe("Service and layer", () => {
  it.effect("a Service class declares an application tree; releasing its layer stops it in order", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      class App extends Supervisor.Service<App>()(
        "test/App",
        [
          controllable(log, "registry"),
          Supervisor.childSpec([controllable(log, "s.a")], { id: "sessions", strategy: "oneForOne" }),
          controllable(log, "web")
        ],
        { strategy: "restForOne" }
      ) {}
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(App.layer, scope)
      const app = Context.get(context, App)
      assert.strictEqual(app.name, "test/App")
      assert.strictEqual(app.strategy, "restForOne")
      assert.deepStrictEqual(log.events, ["start:registry#1", "start:s.a#1", "start:web#1"])
      // a registry crash takes its dependents with it
      yield* crash(app, "registry")
      yield* eventually(() => log.events.includes("start:web#2"))
      log.events.length = 0
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(log.events, ["stop:web#2", "stop:s.a#2", "stop:registry#2"])
    })
  )

  it.effect("launch fails with RestartIntensityExceeded when the root gives up", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      let crashes = 0
      class App extends Supervisor.Service<App>()(
        "test/Crashy",
        [
          ChildSpec.make({
            id: "crashy",
            start: Effect.void,
            run: () => Effect.fail(`crash ${++crashes}`)
          }),
          controllable(log, "bystander")
        ],
        { strategy: "oneForOne", maxRestarts: 2 }
      ) {}
      const error = yield* Effect.flip(App.launch)
      assert.strictEqual((error as Supervisor.RestartIntensityExceeded)._tag, "RestartIntensityExceeded")
      assert.strictEqual(crashes, 3)
      assert.deepStrictEqual(log.events, ["start:bystander#1", "stop:bystander#1"])
    })
  )

  it.effect("layer provides the supervisor under a key and fails to build when a child fails to start", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const Key = Context.Service<Supervisor.Supervisor>("test/Key")
      const ok = Supervisor.layer(Key, [controllable(log, "a")], { strategy: "oneForOne" })
      const sup = yield* Effect.provide(Effect.service(Key), ok)
      assert.isTrue(Supervisor.isSupervisor(sup))
      const bad = Supervisor.layer(Key, [controllable(log, "b"), controllable(log, "c", { failStart: () => true })], {
        strategy: "oneForOne"
      })
      const error = yield* Effect.flip(Effect.provide(Effect.service(Key), bad))
      assert.strictEqual(error, "start failed: c#1")
      assert.deepStrictEqual(log.events.slice(-4), ["start:b#1", "start:c#1", "stop:c#1", "stop:b#1"])
    })
  )
})

describe("tree", () => {
  it.effect("shows the live tree in start order with states, pids and restart counts", () =>
    Effect.gen(function* () {
      const log = makeEventLog()
      const root = yield* Supervisor.make(
        [
          controllable(log, "config"),
          Supervisor.childSpec([controllable(log, "w1"), controllable(log, "w2")], {
            id: "workers",
            strategy: "oneForAll"
          }),
          DynamicSupervisor.childSpec({ id: "sessions" }),
          controllable(log, "t", { restart: "transient" })
        ],
        { name: "app", strategy: "oneForOne" }
      )
      const sessions = childOf<DynamicSupervisor.DynamicSupervisor>(root, "sessions").handle
      yield* DynamicSupervisor.startChild(sessions, controllable(log, "alice"))
      const workers = childOf<Supervisor.Supervisor>(root, "workers").handle
      yield* crash(workers, "w2")
      yield* eventually(() => childOf<Control>(workers, "w2").handle.n === 2)
      yield* Deferred.succeed(childOf<Control>(root, "t").handle.exit, undefined)
      yield* eventually(() => Supervisor.whichChildrenUnsafe(root)![0]!.child === "undefined")
      const node = yield* Supervisor.tree(root)
      const shape = (n: Supervisor.TreeNode): unknown => [n.id, n.state, n.kind, n.restarts, n.children.map(shape)]
      assert.deepStrictEqual(shape(node), [
        "app",
        "running",
        "Supervisor",
        0,
        [
          ["config", "running", "Worker", 0, []],
          [
            "workers",
            "running",
            "Supervisor",
            0,
            [
              ["w1", "running", "Worker", 1, []],
              ["w2", "running", "Worker", 1, []]
            ]
          ],
          ["sessions", "running", "DynamicSupervisor", 0, [["alice", "running", "Worker", 0, []]]],
          // a transient child that exited normally: not running, not restarted (OTP's :undefined)
          ["t", "stopped", "Worker", 0, []]
        ]
      ])
      assert.deepStrictEqual(shape(JSON.parse(JSON.stringify(node))), shape(node), "plain JSON data")
      const text = Supervisor.formatTree(node)
      assert.include(text, "app (Supervisor)")
      assert.include(text, "│  └─ w2 #")
      assert.include(text, "running restarts: 1")
      assert.include(text, "└─ t stopped")
    })
  )
})

describe("Layer.launch under NodeRuntime.runMain", () => {
  it("examples/app-tree.ts runs the tree and SIGINT stops it in order, leaves first", () => {
    const here = fileURLToPath(new URL("../..", import.meta.url))
    const r = spawnSync(process.execPath, ["--import", "tsx", "examples/app-tree.ts"], {
      cwd: here,
      encoding: "utf8",
      timeout: 20_000
    })
    assert.strictEqual(r.status, 0, r.stderr)
    const out = r.stdout
    const tail = out
      .slice(out.indexOf("5. SIGINT"))
      .split("\n")
      .map((l) => l.trim())
    assert.deepStrictEqual(tail.slice(1, 5), [
      "stopped task supervisor",
      "stopped session carol",
      "stopped sessions supervisor",
      "stopped registry"
    ])
    assert.include(out, "stopped cleanly")
  }, 30_000)
})
