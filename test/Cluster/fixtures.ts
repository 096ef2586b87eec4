/**
 * A Server definition and supervisors shared by the in-process tests.
 */
import { Effect, Ref, Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { ClusterSupervisor } from "../../src/Cluster/index.ts"
import * as Server from "../../src/Server/Server.ts"

export class Refused extends Schema.TaggedError<Refused>()("Refused", { text: Schema.String }) {}

export const Say = Rpc.make("Say", {
  payload: { text: Schema.String },
  success: Schema.Struct({ reply: Schema.String, seen: Schema.Number, incarnation: Schema.Number }),
  error: Refused
})
export const Crash = Rpc.make("Crash")
export const Get = Rpc.make("Get", { success: Schema.Number })

export const Session = RpcGroup.make(Say, Crash, Get)

/** Counters the tests read: inits and finalizers per id. */
export interface Probe {
  readonly inits: Map<string, number>
  readonly finalized: Map<string, number>
}

export const makeProbe = (): Probe => ({ inits: new Map(), finalized: new Map() })

const bump = (map: Map<string, number>, id: string) => map.set(id, (map.get(id) ?? 0) + 1)

/** A session: counts `seen` in memory; "no" is refused (a typed error); Crash dies. */
export const sessionServer = (probe: Probe, options?: { readonly initDies?: (id: string) => boolean }) =>
  Server.make("UserSession", [Say, Crash, Get], {
    init: (id: string) =>
      Effect.gen(function* () {
        bump(probe.inits, id)
        if (options?.initDies?.(id)) return yield* Effect.die(`init of ${id} dies`)
        const child = yield* ClusterSupervisor.CurrentChild
        yield* Effect.addFinalizer(() => Effect.sync(() => bump(probe.finalized, id)))
        const seen = yield* Ref.make(0)
        return {
          Say: ({ text }) =>
            text === "no"
              ? Effect.fail(new Refused({ text }))
              : Effect.map(
                  Ref.updateAndGet(seen, (n) => n + 1),
                  (n) => ({
                    reply: `${id}: ${text}`,
                    seen: n,
                    incarnation: child.incarnation
                  })
                ),
          Crash: () => Effect.die("boom"),
          Get: () => Ref.get(seen)
        }
      })
  })
