/**
 * A mutable map whose keys compare with Effect's structural equality
 * (`Equal.equals`), with a fast path for primitive keys.
 *
 * Primitive keys (strings, numbers, booleans, bigints, symbols, `null`,
 * `undefined`) go straight to a native `Map`: for them `Equal.equals` is `===`
 * (plus `NaN` equal to itself, which `Map`'s SameValueZero also gives), so the
 * lookup costs one `Map.get`. Objects (tuples such as `["session", 42]`,
 * records, `Data` classes, anything implementing `Equal`) are bucketed by
 * `Hash.hash` and compared with `Equal.equals`.
 *
 * @internal
 */
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"

interface Hashed<K, V> {
  readonly key: K
  value: V
}

/** @internal */
export interface KeyMap<K, V> {
  readonly prim: Map<K, V>
  readonly hashed: Map<number, Array<Hashed<K, V>>>
  hashedSize: number
}

/** @internal */
export const isPrimitive = (key: unknown): boolean =>
  key === null || (typeof key !== "object" && typeof key !== "function")

/** @internal */
export const make = <K, V>(): KeyMap<K, V> => ({ prim: new Map(), hashed: new Map(), hashedSize: 0 })

/** @internal */
export const size = <K, V>(self: KeyMap<K, V>): number => self.prim.size + self.hashedSize

const findHashed = <K, V>(bucket: Array<Hashed<K, V>>, key: K): number => {
  for (let i = 0; i < bucket.length; i++) {
    if (Equal.equals(bucket[i]!.key, key)) return i
  }
  return -1
}

/** @internal */
export const get = <K, V>(self: KeyMap<K, V>, key: K): V | undefined => {
  if (isPrimitive(key)) return self.prim.get(key)
  const bucket = self.hashed.get(Hash.hash(key))
  if (bucket === undefined) return undefined
  const i = findHashed(bucket, key)
  return i < 0 ? undefined : bucket[i]!.value
}

/** @internal */
export const set = <K, V>(self: KeyMap<K, V>, key: K, value: V): void => {
  if (isPrimitive(key)) {
    self.prim.set(key, value)
    return
  }
  const h = Hash.hash(key)
  const bucket = self.hashed.get(h)
  if (bucket === undefined) {
    self.hashed.set(h, [{ key, value }])
    self.hashedSize++
    return
  }
  const i = findHashed(bucket, key)
  if (i < 0) {
    bucket.push({ key, value })
    self.hashedSize++
  } else {
    bucket[i]!.value = value
  }
}

/** @internal */
export const remove = <K, V>(self: KeyMap<K, V>, key: K): boolean => {
  if (isPrimitive(key)) return self.prim.delete(key)
  const h = Hash.hash(key)
  const bucket = self.hashed.get(h)
  if (bucket === undefined) return false
  const i = findHashed(bucket, key)
  if (i < 0) return false
  if (bucket.length === 1) self.hashed.delete(h)
  else bucket.splice(i, 1)
  self.hashedSize--
  return true
}

/** @internal */
export const forEach = <K, V>(self: KeyMap<K, V>, f: (value: V, key: K) => void): void => {
  self.prim.forEach(f)
  for (const bucket of self.hashed.values()) {
    for (const e of bucket) f(e.value, e.key)
  }
}

/** @internal */
export const clear = <K, V>(self: KeyMap<K, V>): void => {
  self.prim.clear()
  self.hashed.clear()
  self.hashedSize = 0
}
