import { randomInt } from "node:crypto";

/** A 32-bit hash of an id; see {@link seededFnv1a}. */
export type IdHash = (id: string) => number;

/**
 * FNV-1a over the UTF-16 code units, from a random starting value: a few dozen ns for an event id.
 * The seed keeps a remote server that picks its own event ids (room versions 1 and 2) from
 * choosing ids that all land in one probe run, which would make every lookup slow.
 */
export function seededFnv1a(seed: number = randomInt(0x7fffffff)): IdHash {
  const basis = (0x811c9dc5 ^ seed) | 0;
  return (id) => {
    let hash = basis;
    for (let i = 0; i < id.length; i++) {
      hash ^= id.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    return hash | 0;
  };
}

/**
 * The newest `capacity` distinct ids, oldest evicted first: a hash table for lookups and a ring
 * buffer for the eviction order, so adding is O(1) whatever the window size.
 *
 * The table is open addressing over two flat arrays, the ids and their hashes, instead of a `Set`.
 * Every event passes through here twice (claimed, then committed and later evicted), and with a
 * `Set` of 20,000 ids each operation compares the new id against ids it collides with, whose
 * strings are long out of the CPU cache: ~0.6 µs an event, measured. Here a probe reads the hashes
 * array and compares a string only when the hashes match, and eviction finds the evicted id by its
 * stored hash and identity (see docs/architecture.md, "Transaction journal").
 */
export class IdWindow {
  /** Slot contents; `undefined` is an empty slot. */
  private keys: (string | undefined)[];
  private hashes: Int32Array;
  private mask: number;
  /** Ids in the table: the window's and those claimed but not yet committed. */
  private occupied = 0;
  private readonly ring: string[] = [];
  /** The hash of each id in `ring`, at the same index, to find it again without re-reading it. */
  private readonly ringHashes: number[] = [];
  /** Index in `ring` of the oldest id once the ring is full. */
  private oldest = 0;

  constructor(
    readonly capacity: number,
    private readonly hash: IdHash = seededFnv1a(),
  ) {
    // Grown as ids arrive (see `insert`), so a generous capacity costs nothing until used.
    const slots = 1024;
    this.keys = new Array<string | undefined>(slots).fill(undefined);
    this.hashes = new Int32Array(slots);
    this.mask = slots - 1;
  }

  /** Persisted ids remembered; ids claimed and not yet committed are not counted. */
  get size(): number {
    return this.ring.length;
  }

  has(id: string): boolean {
    return this.find(id, this.hash(id)) >= 0;
  }

  /** False when the id was already in the window (it is not moved to the newest end). */
  add(id: string): boolean {
    const hash = this.hash(id);
    if (this.find(id, hash) >= 0) return false;
    this.insert(id, hash);
    this.remember(id, hash);
    return true;
  }

  /**
   * Reserves an id that is being handled: false when the id is in the window or already claimed.
   * A claimed id is not persisted (not in `toArray`) until {@link commit}, or is given back by
   * {@link unclaim}.
   */
  claim(id: string): boolean {
    const hash = this.hash(id);
    if (this.find(id, hash) >= 0) return false;
    this.insert(id, hash);
    return true;
  }

  /** Gives back a claim that will not be committed. Only for ids `claim` returned true for. */
  unclaim(id: string): void {
    const slot = this.find(id, this.hash(id));
    if (slot >= 0) this.removeSlot(slot);
  }

  /** Makes a claimed id (already in the table) part of the window, evicting the oldest if full. */
  commit(id: string): void {
    this.remember(id, this.hash(id));
  }

  /** Oldest first. */
  toArray(): string[] {
    return this.ring.slice(this.oldest).concat(this.ring.slice(0, this.oldest));
  }

  private remember(id: string, hash: number): void {
    if (this.ring.length < this.capacity) {
      this.ring.push(id);
      this.ringHashes.push(hash);
      return;
    }
    const evicted = this.ring[this.oldest] as string;
    this.forget(evicted, this.ringHashes[this.oldest] as number);
    this.ring[this.oldest] = id;
    this.ringHashes[this.oldest] = hash;
    this.oldest = this.oldest + 1 === this.capacity ? 0 : this.oldest + 1;
  }

  /** Removes the table entry holding this very string, found by hash and identity. */
  private forget(id: string, hash: number): void {
    const { keys, mask } = this;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const key = keys[slot];
      if (key === undefined) return;
      if (key === id) {
        this.removeSlot(slot);
        return;
      }
    }
  }

  /** The slot holding `id`, or -1. */
  private find(id: string, hash: number): number {
    const { keys, hashes, mask } = this;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const key = keys[slot];
      if (key === undefined) return -1;
      if (hashes[slot] === hash && key === id) return slot;
    }
  }

  private insert(id: string, hash: number): void {
    // Linear probing stays short while at most half the slots are used.
    if (2 * (this.occupied + 1) > this.keys.length) this.grow();
    const { keys, mask } = this;
    let slot = hash & mask;
    while (keys[slot] !== undefined) slot = (slot + 1) & mask;
    keys[slot] = id;
    this.hashes[slot] = hash;
    this.occupied += 1;
  }

  /**
   * Empties a slot and moves back the entries after it that probing would no longer reach
   * (backward-shift deletion: no tombstones, so probes stay as short as the load allows).
   */
  private removeSlot(slot: number): void {
    const { keys, hashes, mask } = this;
    let hole = slot;
    let next = slot;
    for (;;) {
      next = (next + 1) & mask;
      const key = keys[next];
      if (key === undefined) break;
      const home = (hashes[next] as number) & mask;
      // Leave it if its home slot lies cyclically in (hole, next]: probing from home reaches it.
      const reachable = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (reachable) continue;
      keys[hole] = key;
      hashes[hole] = hashes[next] as number;
      hole = next;
    }
    keys[hole] = undefined;
    this.occupied -= 1;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldHashes = this.hashes;
    const slots = oldKeys.length * 2;
    this.keys = new Array<string | undefined>(slots).fill(undefined);
    this.hashes = new Int32Array(slots);
    this.mask = slots - 1;
    this.occupied = 0;
    for (let i = 0; i < oldKeys.length; i++) {
      const key = oldKeys[i];
      if (key !== undefined) this.insert(key, oldHashes[i] as number);
    }
  }
}
