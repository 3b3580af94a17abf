import { LRUCache } from "lru-cache";
import type { HomeserverClient } from "../client/client.js";
import type { Membership } from "../client/types.js";
import { type Logger, silentLogger } from "../logging.js";
import { Intent, type OutgoingEventTransform } from "./intent.js";
import { MembershipCache, type MembershipEventLike } from "./membership-cache.js";
import { RegistrationTracker } from "./registration.js";
import { KeyedSerialQueue } from "./serial-queue.js";

export interface IntentFactoryOptions {
  client: HomeserverClient;
  /** The homeserver's server name, the part of user IDs after the colon. */
  serverName: string;
  /** The registration's `sender_localpart`. */
  botLocalpart: string;
  logger?: Logger;
  /** Ghost intents kept; the least recently used are dropped beyond it. Default 10,000. */
  maxIntents?: number;
  /** Shared state; defaults are created (membership: 100,000 pairs, registrations: 100,000 users). */
  membership?: MembershipCache;
  registration?: RegistrationTracker;
  /** Applied to every event any intent sends (encryption plugs in here). */
  outgoing?: OutgoingEventTransform;
}

/**
 * Hands out one intent per user. Ghost intents live in a bounded LRU so a bridge that sees
 * 100,000 remote users does not keep 100,000 intents: an evicted intent loses only its profile
 * cache. Membership, registration state and the per-room send queue are held here, outside
 * the intents, so they survive eviction and order sends across all intents of a room.
 * The bot intent is pinned.
 */
export class IntentFactory {
  readonly botUserId: string;
  readonly serverName: string;
  readonly membership: MembershipCache;
  readonly registration: RegistrationTracker;

  private readonly client: HomeserverClient;
  private readonly logger: Logger;
  private readonly roomQueue = new KeyedSerialQueue();
  private readonly outgoing: OutgoingEventTransform | undefined;
  private readonly intents: LRUCache<string, Intent>;
  private readonly bot: Intent;

  constructor(options: IntentFactoryOptions) {
    this.client = options.client;
    this.serverName = options.serverName;
    this.logger = options.logger ?? silentLogger();
    this.membership = options.membership ?? new MembershipCache();
    this.registration = options.registration ?? new RegistrationTracker();
    this.outgoing = options.outgoing;
    this.intents = new LRUCache({ max: options.maxIntents ?? 10_000 });
    this.botUserId = `@${options.botLocalpart}:${options.serverName}`;
    this.bot = this.create(this.botUserId, true);
  }

  getBotIntent(): Intent {
    return this.bot;
  }

  /** The intent of a local user; throws TypeError for an ID of another server. */
  getIntent(userId: string): Intent {
    if (userId === this.botUserId) return this.bot;
    let intent = this.intents.get(userId);
    if (!intent) {
      if (!userId.startsWith("@") || !userId.endsWith(`:${this.serverName}`)) {
        throw new TypeError(`cannot act as ${userId}: not a user of ${this.serverName}`);
      }
      intent = this.create(userId, false);
      this.intents.set(userId, intent);
    }
    return intent;
  }

  getIntentForLocalpart(localpart: string): Intent {
    return this.getIntent(`@${localpart}:${this.serverName}`);
  }

  /** Ghost intents currently cached (the pinned bot not included). */
  get size(): number {
    return this.intents.size;
  }

  /** Record a membership the bridge observed, for whichever intent acts in that room later. */
  noteMembership(roomId: string, userId: string, membership: Membership): void {
    this.membership.set(roomId, userId, membership);
  }

  /** Feed every room event from a transaction; only `m.room.member` events are kept. */
  noteEvent(event: MembershipEventLike): void {
    this.membership.noteEvent(event);
  }

  private create(userId: string, isBot: boolean): Intent {
    return new Intent({
      client: this.client,
      userId,
      isBot,
      logger: this.logger,
      membership: this.membership,
      registration: this.registration,
      roomQueue: this.roomQueue,
      outgoing: this.outgoing,
    });
  }
}
