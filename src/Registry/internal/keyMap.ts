/**
 * A mutable map whose keys compare with Effect's structural equality
 * (`Equal.equals`), with a fast path for primitive keys.
 *
 * Primitive keys (strings, numbers, booleans, bigints, symbols, `null`,
 * `undefined`) go straight to a native `Map`: for them `Equal.equals` is `===`
 * (plus `NaN` equal to itself, which `Map`'s SameValueZero also gives), so the
 * lookup costs one `Map.get`. Flat tuples of strings, numbers, booleans,
 * bigints, `null` and `undefined` (the usual `["session", userId]`) are
 * encoded to one injective string and also use a native `Map`; two such tuples
 * are `Equal.equals` exactly when their encodings are equal. Every other object
 * (nested tuples, records, `Data` classes, anything implementing `Equal`) is
 * bucketed by `Hash.hash` and compared with `Equal.equals`.
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
  /** flat tuples of primitives: a trie of native Maps, first keyed by length, leaves hold `{ key, value }` */
  readonly flat: Map<number, Map<unknown, any>>
  flatSize: number
  readonly hashed: Map<number, Array<Hashed<K, V>>>
  hashedSize: number
}

/** @internal */
export const isPrimitive = (key: unknown): boolean =>
  key === null || (typeof key !== "object" && typeof key !== "function")

/** @internal */
export const make = <K, V>(): KeyMap<K, V> => ({
  prim: new Map(),
  flat: new Map(),
  flatSize: 0,
  hashed: new Map(),
  hashedSize: 0
})

/** @internal */
export const size = <K, V>(self: KeyMap<K, V>): number => self.prim.size + self.flatSize + self.hashedSize

/** Whether `key` is a non-empty tuple of primitives (not implementing `Equal`). */
const isFlat = (key: unknown): key is ReadonlyArray<unknown> => {
  if (!Array.isArray(key) || key.length === 0 || Equal.symbol in key) return false
  for (let i = 0; i < key.length; i++) if (!isPrimitive(key[i])) return false
  return true
}

/** The trie node holding the leaf of a flat tuple: one nested `Map` per element, the first level keyed by length. */
const flatNode = <K, V>(
  self: KeyMap<K, V>,
  key: ReadonlyArray<unknown>,
  create: boolean
): Map<unknown, any> | undefined => {
  let node: Map<unknown, any> | undefined = self.flat.get(key.length)
  if (node === undefined) {
    if (!create) return undefined
    node = new Map()
    self.flat.set(key.length, node)
  }
  for (let i = 0; i < key.length - 1; i++) {
    let next: Map<unknown, any> | undefined = node.get(key[i])
    if (next === undefined) {
      if (!create) return undefined
      next = new Map()
      node.set(key[i], next)
    }
    node = next
  }
  return node
}

const findHashed = <K, V>(bucket: Array<Hashed<K, V>>, key: K): number => {
  for (let i = 0; i < bucket.length; i++) {
    if (Equal.equals(bucket[i]!.key, key)) return i
  }
  return -1
}

/** @internal */
export const get = <K, V>(self: KeyMap<K, V>, key: K): V | undefined => {
  if (isPrimitive(key)) return self.prim.get(key)
  if (isFlat(key)) {
    const leaf: Hashed<K, V> | undefined = flatNode(self, key, false)?.get(key[key.length - 1])
    return leaf === undefined ? undefined : leaf.value
  }
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
  if (isFlat(key)) {
    const node = flatNode(self, key, true)!
    const last = key[key.length - 1]
    const found: Hashed<K, V> | undefined = node.get(last)
    if (found === undefined) {
      node.set(last, { key, value })
      self.flatSize++
    } else found.value = value
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
  if (isFlat(key)) return removeFlat(self, key)
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
  for (const [length, root] of self.flat) forEachFlat(root, length, f)
  for (const bucket of self.hashed.values()) {
    for (const e of bucket) f(e.value, e.key)
  }
}

/** @internal */
export const clear = <K, V>(self: KeyMap<K, V>): void => {
  self.prim.clear()
  self.flat.clear()
  self.flatSize = 0
  self.hashed.clear()
  self.hashedSize = 0
}

/** Removes a flat tuple's leaf and prunes the trie nodes it leaves empty. */
const removeFlat = <K, V>(self: KeyMap<K, V>, key: ReadonlyArray<unknown>): boolean => {
  const path: Array<Map<unknown, any>> = []
  let node: Map<unknown, any> | undefined = self.flat.get(key.length)
  for (let i = 0; node !== undefined && i < key.length - 1; i++) {
    path.push(node)
    node = node.get(key[i])
  }
  if (node === undefined || !node.delete(key[key.length - 1])) return false
  self.flatSize--
  for (let i = path.length - 1; i >= 0 && node.size === 0; i--) {
    path[i]!.delete(key[i])
    node = path[i]!
  }
  if (node.size === 0) self.flat.delete(key.length)
  return true
}

const forEachFlat = <K, V>(node: Map<unknown, any>, depth: number, f: (value: V, key: K) => void): void => {
  if (depth === 1) {
    for (const leaf of node.values() as Iterable<Hashed<K, V>>) f(leaf.value, leaf.key)
    return
  }
  for (const child of node.values() as Iterable<Map<unknown, any>>) forEachFlat(child, depth - 1, f)
}
