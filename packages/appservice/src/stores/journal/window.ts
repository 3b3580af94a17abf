/**
 * The newest `capacity` distinct ids, oldest evicted first: a Set for lookups and a ring buffer
 * for the eviction order, so adding is O(1) whatever the window size.
 */
export class IdWindow {
  private readonly members = new Set<string>();
  private readonly ring: string[] = [];
  /** Index in `ring` of the oldest id once the ring is full. */
  private oldest = 0;

  constructor(readonly capacity: number) {}

  /** Persisted ids remembered; ids claimed and not yet committed are not counted. */
  get size(): number {
    return this.ring.length;
  }

  has(id: string): boolean {
    return this.members.has(id);
  }

  /** False when the id was already in the window (it is not moved to the newest end). */
  add(id: string): boolean {
    // One hash lookup instead of `has` then `add`: a miss in a large Set costs more than a hit.
    const before = this.members.size;
    this.members.add(id);
    if (this.members.size === before) return false;
    if (this.ring.length < this.capacity) {
      this.ring.push(id);
    } else {
      const evicted = this.ring[this.oldest];
      if (evicted !== undefined) this.members.delete(evicted);
      this.ring[this.oldest] = id;
      this.oldest = (this.oldest + 1) % this.capacity;
    }
    return true;
  }

  /**
   * Reserves an id that is being handled, in the same Set as the window so one hash operation
   * both checks and reserves: false when the id is in the window or already claimed. A claimed id
   * is not persisted (not in `toArray`) until {@link commit}, or is given back by {@link unclaim}.
   */
  claim(id: string): boolean {
    const before = this.members.size;
    this.members.add(id);
    return this.members.size !== before;
  }

  /** Gives back a claim that will not be committed. Only for ids `claim` returned true for. */
  unclaim(id: string): void {
    this.members.delete(id);
  }

  /** Makes a claimed id (already a member) part of the window, evicting the oldest if full. */
  commit(id: string): void {
    if (this.ring.length < this.capacity) {
      this.ring.push(id);
      return;
    }
    const evicted = this.ring[this.oldest];
    if (evicted !== undefined) this.members.delete(evicted);
    this.ring[this.oldest] = id;
    this.oldest = this.oldest + 1 === this.capacity ? 0 : this.oldest + 1;
  }

  /** Oldest first. */
  toArray(): string[] {
    return this.ring.slice(this.oldest).concat(this.ring.slice(0, this.oldest));
  }
}
