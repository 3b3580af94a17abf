import { randomInt } from "node:crypto";
import { hashedIdLength } from "../../event-ids.js";

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
    // A reference hash by its first characters only: see `hashedIdLength`.
    const end = hashedIdLength(id);
    let hash = basis;
    for (let i = 0; i < end; i++) {
      hash ^= id.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    return hash | 0;
  };
}

/** What {@link IdWindow.claim} returns for an id it reserved; hand it back to `commit` or `unclaim`. */
export type IdClaim = number;

const FREE = 0;
const CLAIMED = 1;
const COMMITTED = 2;

/**
 * The newest `capacity` handled ids, for de-duplication, and the ids being handled (claimed).
 *
 * Every event passes through here: claimed before its handler runs, committed after. A `Set`
 * of 20,000 ids cost ~0.6 µs an event, measured: each lookup compares the new id against
 * colliding ids whose strings are long out of the CPU cache, and eviction is a second lookup.
 * Here (see docs/architecture.md, "Transaction journal"):
 *
 * - ids sit in a ring, in claim order, with their hash and state (claimed or committed); the
 *   oldest slot is reused for the next claim, evicting its id;
 * - a hash table of (hash, ring position) pairs, open addressing in one `Int32Array`, finds an id:
 *   a probe reads one cache line of pairs and compares a string only when the hashes match;
 * - an evicted id's pair is left in the table, stale: a probe skips it, as the string at its
 *   position no longer matches. Removing it would cost a cache miss a claim (its slot was last
 *   touched a whole window ago); instead the table is rebuilt from the ring once stale pairs
 *   fill it to half, every `capacity` claims or more, in one pass whose misses overlap;
 * - a claim returns its ring position's sequence number, so committing it is one write, with no
 *   lookup and no hashing;
 * - an id still claimed when its slot comes round again (its handler ran for a whole window's
 *   worth of events) moves to a small map, and re-enters the ring when committed.
 */
export class IdWindow {
  private readonly ids: (string | undefined)[];
  private readonly idHashes: Int32Array;
  private readonly states: Uint8Array;
  /** Claims and adds so far; the next one takes ring position `issued % capacity`. */
  private issued = 0;
  private position = 0;
  private committed = 0;
  /** Pairs (hash, ring position + 1); a zero position marks an empty slot. Some are stale. */
  private readonly table: Int32Array;
  private readonly mask: number;
  /** Slots holding a pair, live or stale; past half the table, it is rebuilt. */
  private occupied = 0;
  /** Ids evicted from the ring while still claimed, with their hash. */
  private readonly late = new Map<string, number>();

  constructor(
    readonly capacity: number,
    private readonly hash: IdHash = seededFnv1a(),
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError("capacity must be at least 1");
    this.ids = new Array<string | undefined>(capacity).fill(undefined);
    this.idHashes = new Int32Array(capacity);
    this.states = new Uint8Array(capacity);
    // Rebuilt when half full, with `capacity` live pairs at most: the stale ones accumulate from
    // a quarter full to half, probe runs stay short, and each rebuild serves `capacity` claims.
    let slots = 16;
    while (slots < capacity * 4) slots *= 2;
    this.table = new Int32Array(slots * 2);
    this.mask = slots - 1;
  }

  /** Committed ids remembered; ids claimed and not yet committed are not counted. */
  get size(): number {
    return this.committed;
  }

  has(id: string): boolean {
    return this.find(id, this.hash(id)) >= 0 || (this.late.size > 0 && this.late.has(id));
  }

  /** Adds an id as handled; false when it was already in the window or claimed. */
  add(id: string): boolean {
    const hash = this.hash(id);
    if (this.find(id, hash) >= 0 || (this.late.size > 0 && this.late.has(id))) return false;
    this.place(id, hash, COMMITTED);
    return true;
  }

  /**
   * Reserves an id that is being handled: undefined when the id is in the window or already
   * claimed. A claimed id is not persisted (not in `toArray`) until {@link commit}, or is given
   * back by {@link unclaim}.
   */
  claim(id: string): IdClaim | undefined {
    const hash = this.hash(id);
    if (this.find(id, hash) >= 0 || (this.late.size > 0 && this.late.has(id))) return undefined;
    return this.place(id, hash, CLAIMED);
  }

  /** Makes a claimed id part of the window. */
  commit(id: string, claim: IdClaim): void {
    const position = this.positionOf(id, claim);
    if (position >= 0) {
      if (this.states[position] === CLAIMED) {
        this.states[position] = COMMITTED;
        this.committed += 1;
      }
      return;
    }
    const hash = this.late.get(id);
    if (hash === undefined) return;
    this.late.delete(id);
    this.place(id, hash, COMMITTED);
  }

  /** Gives back a claim that will not be committed. */
  unclaim(id: string, claim: IdClaim): void {
    const position = this.positionOf(id, claim);
    if (position >= 0) {
      if (this.states[position] === CLAIMED) this.release(position);
    } else this.late.delete(id);
  }

  /** Committed ids, oldest first. */
  toArray(): string[] {
    const result: string[] = [];
    const full = this.issued >= this.capacity;
    for (let i = 0; i < Math.min(this.issued, this.capacity); i++) {
      const position = full ? (this.position + i) % this.capacity : i;
      if (this.states[position] === COMMITTED) result.push(this.ids[position] as string);
    }
    return result;
  }

  /** The ring position `claim` still holds for `id`, or -1 if the slot has moved on since. */
  private positionOf(id: string, claim: IdClaim): number {
    if (claim < this.issued - this.capacity || claim >= this.issued) return -1;
    const position = claim % this.capacity;
    return this.ids[position] === id ? position : -1;
  }

  /** Takes the next ring position for `id`, evicting the position's previous id. */
  private place(id: string, hash: number, state: number): IdClaim {
    const position = this.position;
    if (this.states[position] !== FREE) {
      const evicted = this.ids[position] as string;
      if (this.states[position] === CLAIMED) this.late.set(evicted, this.idHashes[position] as number);
      this.release(position);
    }
    this.ids[position] = id;
    this.idHashes[position] = hash;
    this.states[position] = state;
    if (state === COMMITTED) this.committed += 1;
    this.insert(hash, position);
    this.position = position + 1 === this.capacity ? 0 : position + 1;
    const claim = this.issued;
    this.issued += 1;
    return claim;
  }

  /** Empties a ring position; its table pair goes stale. */
  private release(position: number): void {
    if (this.states[position] === COMMITTED) this.committed -= 1;
    this.ids[position] = undefined;
    this.states[position] = FREE;
  }

  /** The ring position holding `id`, or -1. */
  private find(id: string, hash: number): number {
    const { table, mask, ids } = this;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = table[2 * slot + 1] as number;
      if (entry === 0) return -1;
      if (table[2 * slot] === hash && ids[entry - 1] === id) return entry - 1;
    }
  }

  /** Adds the pair of a ring position just filled, or rebuilds the table, which then holds it. */
  private insert(hash: number, position: number): void {
    if (this.occupied * 2 >= this.mask + 1) this.rebuild();
    else this.put(hash, position);
  }

  private put(hash: number, position: number): void {
    const { table, mask } = this;
    let slot = hash & mask;
    while (table[2 * slot + 1] !== 0) slot = (slot + 1) & mask;
    table[2 * slot] = hash;
    table[2 * slot + 1] = position + 1;
    this.occupied += 1;
  }

  /** Drops the stale pairs: the table again holds one pair per id in the ring. */
  private rebuild(): void {
    this.table.fill(0);
    this.occupied = 0;
    const { states, idHashes } = this;
    for (let position = 0; position < this.capacity; position++) {
      if (states[position] !== FREE) this.put(idHashes[position] as number, position);
    }
  }
}
