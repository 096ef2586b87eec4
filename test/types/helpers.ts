// Type-level helpers for the compile-time tests: compare an Effect, a Layer or a ChildSpec by its type parameters
// (expectTypeOf's deep comparison of Effect's internal structure is not reliable; its parameters are what we pin).
import type { Effect, Layer, Stream } from "effect"
import type { ChildSpec } from "effect-otp"

/** `[A, E, R]` of an Effect. */
export type EffectParts<T> = T extends Effect.Effect<infer A, infer E, infer R> ? [A, E, R] : never

/** `[ROut, E, RIn]` of a Layer. */
export type LayerParts<T> = T extends Layer.Layer<infer ROut, infer E, infer RIn> ? [ROut, E, RIn] : never

/** `[A, E, R]` of a Stream. */
export type StreamParts<T> = T extends Stream.Stream<infer A, infer E, infer R> ? [A, E, R] : never

/** `[A, E, R]` of a ChildSpec: its handle, its start error, its requirements. */
export type SpecParts<T> = T extends ChildSpec.ChildSpec<infer A, infer E, infer R> ? [A, E, R] : never
