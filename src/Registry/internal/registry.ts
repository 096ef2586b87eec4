/**
 * The registry's state and its synchronous transitions. Every transition runs
 * to completion in one JavaScript turn, so no other fiber can observe a
 * half-made registration.
 *
 * Ownership: each Scope that registers at least one key gets an `OwnerRecord`
 * holding a `link`, a child Scope forked from it. The link carries the one
 * finalizer that removes all of that owner's entries; closing the link by hand
 * (when the owner unregisters its last key) also removes it from the owner's
 * finalizers, so an owner without keys carries no registry bookkeeping.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as KeyMap from "./keyMap.ts"
import { openWithFinalizer } from "../../internal/effectInternals.ts"
import type { Entry, Event } from "../Registry.ts"

/**
 * The value of a name reserved by a via-named child whose `start` is still
 * running. Such an entry holds the key (so a racing start under the same name
 * waits instead of running) but is invisible to every read, is not counted and
 * is not announced until `fulfill` gives it the child's handle.
 *
 * @internal
 */
export class Pending {
  waiters: Set<() => void> | undefined = undefined
  settled = false
  settle(): void {
    this.settled = true
    const waiters = this.waiters
    if (waiters === undefined) return
    this.waiters = undefined
    for (const w of waiters) w()
  }
}

/** @internal */
export const isPending = (entry: Entry<unknown, unknown>): boolean => entry.value instanceof Pending

/** Entries of one key in a duplicate registry; `snapshot` is rebuilt lazily after a change. */
interface DuplicateSlot<K, V> {
  readonly entries: Set<Entry<K, V>>
  snapshot: ReadonlyArray<Entry<K, V>> | undefined
}

/** A unique key's slot is the one-element array `lookup` returns, so a lookup allocates nothing. */
type UniqueSlot<K, V> = readonly [Entry<K, V>]

/**
 * An owner's bookkeeping. Its entries are kept inline while there is one (a
 * child holding its name, the common case) and in a Set from the second on.
 *
 * @internal
 */
export interface OwnerRecord<K, V> {
  readonly owner: Scope.Scope
  readonly link: Scope.Closeable
  one: Entry<K, V> | undefined
  many: Set<Entry<K, V>> | undefined
  detached: boolean
}

const recordAdd = <K, V>(record: OwnerRecord<K, V>, entry: Entry<K, V>): void => {
  if (record.many !== undefined) record.many.add(entry)
  else if (record.one === undefined) record.one = entry
  else {
    record.many = new Set([record.one, entry])
    record.one = undefined
  }
}

const recordDelete = <K, V>(record: OwnerRecord<K, V>, entry: Entry<K, V>): void => {
  if (record.many !== undefined) record.many.delete(entry)
  else if (record.one === entry) record.one = undefined
}

const recordSize = <K, V>(record: OwnerRecord<K, V>): number =>
  record.many !== undefined ? record.many.size : record.one !== undefined ? 1 : 0

/** The owner's entries, in registration order (a copy: callers may remove while iterating). */
const recordList = <K, V>(record: OwnerRecord<K, V>): ReadonlyArray<Entry<K, V>> =>
  record.many !== undefined ? Array.from(record.many) : record.one !== undefined ? [record.one] : EMPTY

const recordClear = <K, V>(record: OwnerRecord<K, V>): void => {
  record.one = undefined
  record.many = undefined
}

/** @internal */
export interface State<K, V> {
  readonly unique: boolean
  open: boolean
  readonly table: KeyMap.KeyMap<K, UniqueSlot<K, V> | DuplicateSlot<K, V>>
  readonly owners: Map<Scope.Scope, OwnerRecord<K, V>>
  count: number
  /** how many via names are reserved by children still starting (reads skip the Pending check when 0) */
  reserved: number
  readonly meta: KeyMap.KeyMap<unknown, { readonly value: unknown }>
  readonly listeners: Set<Queue.Queue<Event<K, V>, Cause.Done>>
  /** held locks (present while held), each with its FIFO queue of waiters */
  readonly locks: KeyMap.KeyMap<unknown, Array<LockWaiter>>
}

interface LockWaiter {
  readonly wake: () => void
  granted: boolean
}

/** @internal */
export const EMPTY: ReadonlyArray<never> = Object.freeze([])

/** @internal */
export const make = <K, V>(unique: boolean, meta: Iterable<readonly [unknown, unknown]>): State<K, V> => {
  const state: State<K, V> = {
    unique,
    open: true,
    table: KeyMap.make(),
    owners: new Map(),
    count: 0,
    reserved: 0,
    meta: KeyMap.make(),
    listeners: new Set(),
    locks: KeyMap.make()
  }
  for (const [k, v] of meta) KeyMap.set(state.meta, k, { value: v })
  return state
}

/** @internal */
export const isClosed = (scope: Scope.Scope): boolean => scope.state._tag === "Closed"

const publish = <K, V>(state: State<K, V>, event: Event<K, V>): void => {
  for (const q of state.listeners) Queue.offerUnsafe(q, event)
}

/** Removes `entry` from the key table (if it is still there) and announces it. */
const dropEntry = <K, V>(state: State<K, V>, entry: Entry<K, V>, reason: "unregister" | "exit" | "shutdown"): void => {
  const slot = KeyMap.get(state.table, entry.key)
  if (slot === undefined) return
  if (state.unique) {
    if ((slot as UniqueSlot<K, V>)[0] !== entry) return
    KeyMap.remove(state.table, entry.key)
  } else {
    const dup = slot as DuplicateSlot<K, V>
    if (!dup.entries.delete(entry)) return
    dup.snapshot = undefined
    if (dup.entries.size === 0) KeyMap.remove(state.table, entry.key)
  }
  if (entry.value instanceof Pending) {
    state.reserved--
    entry.value.settle()
    return
  }
  state.count--
  if (state.listeners.size > 0) {
    publish(state, { _tag: "Unregistered", key: entry.key, value: entry.value, owner: entry.owner, reason })
  }
}

/** The owner has no entries left: release its link (and with it the finalizer in the owner's Scope). */
const detach = <K, V>(state: State<K, V>, record: OwnerRecord<K, V>): void => {
  if (record.detached) return
  record.detached = true
  if (state.owners.get(record.owner) === record) state.owners.delete(record.owner)
  // The link holds only our cleanup finalizer, which is a no-op once detached,
  // so the effect closeUnsafe hands back has nothing left to do.
  Scope.closeUnsafe(record.link, Exit.void)
}

/** The finalizer of an owner's link: its Scope closed, so all its entries go. */
const ownerExited = <K, V>(state: State<K, V>, record: OwnerRecord<K, V>): void => {
  if (record.detached) return
  record.detached = true
  if (state.owners.get(record.owner) === record) state.owners.delete(record.owner)
  if (record.many === undefined) {
    if (record.one !== undefined) dropEntry(state, record.one, "exit")
  } else for (const entry of record.many) dropEntry(state, entry, "exit")
  recordClear(record)
}

/** `register`'s answer when the registry has closed. @internal */
export const CLOSED: unique symbol = Symbol.for("effect-otp/Registry/Closed")

/** `register`'s answer when a live owner holds the unique key. @internal */
export class Conflict<K, V> {
  constructor(readonly entry: Entry<K, V>) {}
}

/**
 * Forks the owner's link and installs the cleanup finalizer in it, in the same
 * turn. `Scope.addFinalizer` is an Effect; writing the `Open` state of the
 * fresh (always `Empty`) link directly (effectInternals reliance 2) keeps
 * `register` synchronous, so there is no moment at which an entry exists
 * without its cleanup.
 */
const makeRecord = <K, V>(state: State<K, V>, owner: Scope.Scope): OwnerRecord<K, V> => {
  const link = Scope.forkUnsafe(owner)
  const record: OwnerRecord<K, V> = { owner, link, one: undefined, many: undefined, detached: false }
  const finalizer = (_: Exit.Exit<unknown, unknown>) => Effect.sync(() => ownerExited(state, record))
  openWithFinalizer(link, record, finalizer)
  return record
}

/**
 * Registers `key → value` for `owner`, synchronously.
 *
 * @internal
 */
export const register = <K, V>(
  state: State<K, V>,
  key: K,
  value: V,
  owner: Scope.Scope
): Entry<K, V> | Conflict<K, V> | typeof CLOSED => {
  if (!state.open) return CLOSED
  const entry: Entry<K, V> = { key, value, owner }
  if (isClosed(owner)) {
    // The owner has already ended: the entry would be removed at once. Nothing is stored, nothing announced.
    return entry
  }
  const slot = KeyMap.get(state.table, key)
  if (state.unique) {
    if (slot !== undefined) {
      const current = (slot as UniqueSlot<K, V>)[0]
      if (!isClosed(current.owner)) return new Conflict(current)
      // The holder's Scope has closed but its finalizer has not run yet (reliability C.4 #49).
      removeStale(state, current)
    }
    KeyMap.set(state.table, key, [entry])
  } else if (slot === undefined) {
    KeyMap.set(state.table, key, { entries: new Set([entry]), snapshot: undefined })
  } else {
    const dup = slot as DuplicateSlot<K, V>
    dup.entries.add(entry)
    dup.snapshot = undefined
  }
  const pending = value instanceof Pending
  if (pending) state.reserved++
  else state.count++
  let record = state.owners.get(owner)
  if (record === undefined) {
    record = makeRecord(state, owner)
    state.owners.set(owner, record)
  }
  recordAdd(record, entry)
  if (!pending && state.listeners.size > 0) publish(state, { _tag: "Registered", key, value, owner })
  return entry
}

const removeStale = <K, V>(state: State<K, V>, entry: Entry<K, V>): void => {
  dropEntry(state, entry, "exit")
  const record = state.owners.get(entry.owner)
  if (record !== undefined) {
    recordDelete(record, entry)
    if (recordSize(record) === 0) detach(state, record)
  }
}

/** Removes `owner`'s entries under `key` that satisfy `keep === false`. @internal */
export const unregister = <K, V>(
  state: State<K, V>,
  key: K,
  owner: Scope.Scope,
  predicate: ((value: V) => boolean) | undefined
): void => {
  const record = state.owners.get(owner)
  if (record === undefined) return
  const slot = KeyMap.get(state.table, key)
  if (slot === undefined) return
  const entries = state.unique ? (slot as UniqueSlot<K, V>) : Array.from((slot as DuplicateSlot<K, V>).entries)
  for (const entry of entries) {
    if (entry.owner !== owner) continue
    if (predicate !== undefined && !predicate(entry.value)) continue
    dropEntry(state, entry, "unregister")
    recordDelete(record, entry)
  }
  if (recordSize(record) === 0) detach(state, record)
}

/** @internal */
export const updateValue = <K, V>(
  state: State<K, V>,
  key: K,
  owner: Scope.Scope,
  f: (value: V) => V
): readonly [V, V] | undefined => {
  if (!state.unique) return undefined
  const slot = KeyMap.get(state.table, key) as UniqueSlot<K, V> | undefined
  if (slot === undefined || slot[0].owner !== owner || isClosed(owner) || isPending(slot[0])) return undefined
  const old = slot[0]
  const next: Entry<K, V> = { key: old.key, value: f(old.value), owner }
  KeyMap.set(state.table, key, [next])
  const record = state.owners.get(owner)!
  recordDelete(record, old)
  recordAdd(record, next)
  return [next.value, old.value]
}

/** The live entries under `key` (never one whose owner has ended). @internal */
export const lookup = <K, V>(state: State<K, V>, key: K): ReadonlyArray<Entry<K, V>> => {
  const table = state.table
  const slot = KeyMap.isPrimitive(key) ? table.prim.get(key) : KeyMap.get(table, key)
  if (slot === undefined) return EMPTY
  if (state.unique) {
    const one = slot as UniqueSlot<K, V>
    const e = one[0]
    return e.owner.state._tag === "Closed" || (state.reserved > 0 && e.value instanceof Pending) ? EMPTY : one
  }
  return liveSnapshot(slot as DuplicateSlot<K, V>)
}

const liveSnapshot = <K, V>(dup: DuplicateSlot<K, V>): ReadonlyArray<Entry<K, V>> => {
  let snap = dup.snapshot
  if (snap === undefined) {
    snap = Array.from(dup.entries)
    dup.snapshot = snap
  }
  for (let i = 0; i < snap.length; i++) {
    if (isClosed(snap[i]!.owner)) return snap.filter((e) => !isClosed(e.owner))
  }
  return snap
}

/** Every live entry, key by key. @internal */
export const forEachLive = <K, V>(state: State<K, V>, f: (entry: Entry<K, V>) => void): void => {
  KeyMap.forEach(state.table, (slot) => {
    const entries = state.unique ? (slot as UniqueSlot<K, V>) : (slot as DuplicateSlot<K, V>).entries
    for (const entry of entries) if (!isClosed(entry.owner) && !isPending(entry)) f(entry)
  })
}

/** @internal */
export const ownerEntries = <K, V>(state: State<K, V>, owner: Scope.Scope): ReadonlyArray<Entry<K, V>> => {
  const record = state.owners.get(owner)
  if (record === undefined || isClosed(owner)) return EMPTY
  return recordList(record).filter((e) => !isPending(e))
}

/**
 * Gives a reserved (pending) entry its value: it becomes visible, counted and
 * announced. Returns the live entry, or `undefined` if the reservation was
 * dropped meanwhile (its owner ended or the registry closed).
 *
 * @internal
 */
export const fulfill = <K, V>(state: State<K, V>, reserved: Entry<K, V>, value: V): Entry<K, V> | undefined => {
  const slot = KeyMap.get(state.table, reserved.key) as UniqueSlot<K, V> | undefined
  if (slot === undefined || slot[0] !== reserved) return undefined
  const pending = reserved.value as unknown as Pending
  // No read has seen the reserved entry (they all skip Pending values), so it can take its value in place.
  ;(reserved as { value: V }).value = value
  state.count++
  state.reserved--
  if (state.listeners.size > 0) publish(state, { _tag: "Registered", key: reserved.key, value, owner: reserved.owner })
  pending.settle()
  return reserved
}

/** Closes the registry: every owner is detached (no finalizer left behind) and every listener stream ends. @internal */
export const close = <K, V>(state: State<K, V>): void => {
  if (!state.open) return
  state.open = false
  for (const record of Array.from(state.owners.values())) {
    for (const entry of recordList(record)) dropEntry(state, entry, "shutdown")
    recordClear(record)
    detach(state, record)
  }
  KeyMap.clear(state.table)
  state.count = 0
  for (const q of state.listeners) Queue.endUnsafe(q)
  state.listeners.clear()
}

/**
 * Waits until `lockKey` is free and takes it. A waiter interrupted while
 * queued leaves the queue; one interrupted just after being handed the lock
 * hands it on.
 *
 * @internal
 */
export const lockAcquire = <K, V>(state: State<K, V>, lockKey: unknown): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const queue = KeyMap.get(state.locks, lockKey)
    if (queue === undefined) {
      KeyMap.set(state.locks, lockKey, [])
      resume(Effect.void)
      return
    }
    const waiter: LockWaiter = { wake: () => resume(Effect.void), granted: false }
    queue.push(waiter)
    return Effect.sync(() => {
      if (waiter.granted) lockRelease(state, lockKey)
      else {
        const i = queue.indexOf(waiter)
        if (i >= 0) queue.splice(i, 1)
      }
    })
  })

/** Hands the lock to the first waiter, or frees it. @internal */
export const lockRelease = <K, V>(state: State<K, V>, lockKey: unknown): void => {
  const queue = KeyMap.get(state.locks, lockKey)
  if (queue === undefined) return
  const next = queue.shift()
  if (next === undefined) {
    KeyMap.remove(state.locks, lockKey)
    return
  }
  next.granted = true
  next.wake()
}
