import { LRUCache } from "lru-cache";
import type { Membership } from "../client/types.js";

export interface MembershipCacheOptions {
  /** Room-user pairs remembered. Default 100,000; the least recently used are forgotten. */
  max?: number;
}

/** The part of a room event this cache reads; a full client event fits. */
export interface MembershipEventLike {
  type: string;
  room_id?: string;
  state_key?: string;
  content?: { membership?: unknown };
}

const MEMBERSHIPS = new Set<string>(["join", "invite", "leave", "ban", "knock"]);

/**
 * Last known membership per room and user, shared by all intents so that what the bridge sees
 * in its transactions also spares requests of intents created later. Bounded: a forgotten
 * entry only costs one redundant request.
 */
export class MembershipCache {
  private readonly entries: LRUCache<string, Membership>;

  constructor(options: MembershipCacheOptions = {}) {
    this.entries = new LRUCache({ max: options.max ?? 100_000 });
  }

  get(roomId: string, userId: string): Membership | undefined {
    return this.entries.get(key(roomId, userId));
  }

  set(roomId: string, userId: string, membership: Membership): void {
    this.entries.set(key(roomId, userId), membership);
  }

  delete(roomId: string, userId: string): void {
    this.entries.delete(key(roomId, userId));
  }

  /** Records an `m.room.member` event the bridge observed; other events are ignored. */
  noteEvent(event: MembershipEventLike): void {
    if (event.type !== "m.room.member" || !event.room_id || event.state_key === undefined) return;
    const membership = event.content?.membership;
    if (typeof membership === "string" && MEMBERSHIPS.has(membership)) {
      this.set(event.room_id, event.state_key, membership as Membership);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

function key(roomId: string, userId: string): string {
  // NUL cannot occur in either ID, so the pair is unambiguous.
  return `${roomId}\u0000${userId}`;
}
