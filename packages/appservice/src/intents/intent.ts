import type { AsUserOptions, HomeserverClient } from "../client/client.js";
import { isMatrixApiError } from "../client/errors.js";
import type {
  CreateRoomBody,
  Membership,
  Profile,
  PutDeviceResult,
  StateEventInput,
  WhoamiResponse,
} from "../client/types.js";
import { type Logger, silentLogger } from "../logging.js";
import { MembershipCache } from "./membership-cache.js";
import { RegistrationTracker } from "./registration.js";
import { KeyedSerialQueue } from "./serial-queue.js";

export interface IntentOptions {
  client: HomeserverClient;
  userId: string;
  /**
   * True for the appservice's own sender: it acts without `user_id` and needs no
   * registration, because the homeserver creates it when loading the registration file.
   */
  isBot?: boolean;
  /** Device to masquerade as on every request (MSC4326), once it exists; see createDevice. */
  deviceId?: string;
  logger?: Logger;
  /** Shared caches and queues; an intent created alone gets its own. */
  membership?: MembershipCache;
  registration?: RegistrationTracker;
  roomQueue?: KeyedSerialQueue;
  /** Rewrites outgoing room events before they are sent; the slot end-to-bridge encryption fills. */
  outgoing?: OutgoingEventTransform;
}

/** An outgoing room event, with who sends it from which device. */
export interface OutgoingEvent {
  roomId: string;
  type: string;
  content: Record<string, unknown>;
  userId: string;
  deviceId?: string;
}

/**
 * Runs inside the room's send queue, so an encrypting transform sees events in send order
 * (Megolm ratchets must advance in that order). Returns what is actually sent, e.g.
 * `m.room.encrypted` with the ciphertext.
 */
export type OutgoingEventTransform = (
  event: OutgoingEvent,
) => Promise<{ type: string; content: Record<string, unknown> }>;

export interface IntentCreateRoomOptions {
  name?: string;
  topic?: string;
  invite?: string[];
  isDirect?: boolean;
  initialState?: StateEventInput[];
  /** Localpart of an alias to create with the room, e.g. `_irc_libera_#chan`. */
  aliasLocalpart?: string;
  powerLevelContentOverride?: Record<string, unknown>;
  visibility?: "public" | "private";
  preset?: "private_chat" | "public_chat" | "trusted_private_chat";
  roomVersion?: string;
  creationContent?: Record<string, unknown>;
}

export interface SendOptions {
  /** Timestamp massaging: the remote network's time for the message, in ms since the epoch. */
  ts?: number;
  txnId?: string;
}

/**
 * Acts on Matrix as one user of the appservice's namespace (a ghost) or as the bot.
 *
 * Registration is ensured proactively before the first action rather than on failure: the
 * "not registered" answer is a 403 `M_FORBIDDEN`, the same code power-level refusals use, so
 * only its English message would tell them apart. One `/register` per ghost per process (the
 * tracker outlives evicted intents) is the cheaper certainty. A remembered registration the
 * homeserver has lost anyway (a reset dev server) is still repaired once on that message.
 *
 * Sends, state changes and redactions go through a queue per room, shared by the intents of
 * one factory, so they reach the room in the order the bridge issued them.
 */
export class Intent {
  readonly userId: string;
  readonly localpart: string;
  readonly isBot: boolean;
  deviceId: string | undefined;

  private readonly client: HomeserverClient;
  private readonly parentLogger: Logger;
  private childLogger: Logger | undefined;
  private readonly membership: MembershipCache;
  private readonly registration: RegistrationTracker;
  private readonly roomQueue: KeyedSerialQueue;
  private readonly outgoing: OutgoingEventTransform | undefined;
  private profile: Profile | undefined;
  private profileChain: Promise<unknown> = Promise.resolve();

  constructor(options: IntentOptions) {
    const match = /^@([^:]+):(.+)$/.exec(options.userId);
    if (!match) throw new TypeError(`not a Matrix user ID: ${options.userId}`);
    this.userId = options.userId;
    this.localpart = match[1]!;
    this.isBot = options.isBot ?? false;
    this.deviceId = options.deviceId;
    this.client = options.client;
    this.parentLogger = options.logger ?? silentLogger();
    this.membership = options.membership ?? new MembershipCache();
    this.registration = options.registration ?? new RegistrationTracker();
    this.roomQueue = options.roomQueue ?? new KeyedSerialQueue();
    this.outgoing = options.outgoing;
    if (this.isBot) this.registration.markRegistered(this.userId);
  }

  // Created on first use: most intents never log, and a bridge may hold thousands.
  private get logger(): Logger {
    this.childLogger ??= this.parentLogger.child({ userId: this.userId });
    return this.childLogger;
  }

  /** How requests identify this user: the bot is the token's own user, so no assertion. */
  private get as(): AsUserOptions {
    return { userId: this.isBot ? undefined : this.userId, deviceId: this.deviceId };
  }

  // ---- registration --------------------------------------------------------------------------

  /** Idempotent and coalescing; `M_USER_IN_USE` means someone (maybe us, earlier) registered it. */
  ensureRegistered(): Promise<void> {
    return this.registration.ensure(this.userId, async () => {
      try {
        await this.client.register(this.localpart);
        this.logger.info("registered user");
      } catch (err) {
        if (!isMatrixApiError(err, "M_USER_IN_USE")) throw err;
      }
    });
  }

  get isRegistered(): boolean {
    return this.registration.isRegistered(this.userId);
  }

  private async act<T>(action: () => Promise<T>): Promise<T> {
    await this.ensureRegistered();
    try {
      return await action();
    } catch (err) {
      if (this.isBot || !isNotRegistered(err)) throw err;
      this.logger.warn("homeserver does not know a user we thought registered; registering again");
      this.registration.forget(this.userId);
      await this.ensureRegistered();
      return action();
    }
  }

  // ---- profile -------------------------------------------------------------------------------

  /** Sets the display name unless it already is `name`. Resolves true when a request was sent. */
  setDisplayName(name: string): Promise<boolean> {
    return this.updateProfile("displayname", name, () =>
      this.client.setDisplayName(this.userId, name, this.as),
    );
  }

  /** Sets the avatar unless it already is `mxcUrl`. Resolves true when a request was sent. */
  setAvatarUrl(mxcUrl: string): Promise<boolean> {
    return this.updateProfile("avatar_url", mxcUrl, () =>
      this.client.setAvatarUrl(this.userId, mxcUrl, this.as),
    );
  }

  /** The profile as last seen or set; fetched once when unknown. */
  getProfile(): Promise<Profile> {
    return this.serialiseProfile(() => this.act(() => this.knownProfile()));
  }

  private updateProfile(
    field: "displayname" | "avatar_url",
    value: string,
    write: () => Promise<unknown>,
  ): Promise<boolean> {
    // Serialised, so that two concurrent calls with one value send one request.
    return this.serialiseProfile(() =>
      this.act(async () => {
        const current = await this.knownProfile();
        if (current[field] === value) return false;
        await write();
        this.profile = { ...this.profile, [field]: value };
        return true;
      }),
    );
  }

  private serialiseProfile<T>(task: () => Promise<T>): Promise<T> {
    const result = this.profileChain.then(() => task());
    this.profileChain = result.catch(() => undefined);
    return result;
  }

  private async knownProfile(): Promise<Profile> {
    if (this.profile === undefined) {
      try {
        const fetched = await this.client.getProfile(this.userId);
        this.profile = { displayname: fetched.displayname ?? null, avatar_url: fetched.avatar_url ?? null };
      } catch (err) {
        if (!isMatrixApiError(err, "M_NOT_FOUND")) throw err;
        this.profile = { displayname: null, avatar_url: null };
      }
    }
    return this.profile;
  }

  // ---- membership ----------------------------------------------------------------------------

  /** This user's last known membership in a room. */
  membershipIn(roomId: string): Membership | undefined {
    return this.membership.get(roomId, this.userId);
  }

  /** Tell the intent about a membership change the bridge observed (defaults to this user). */
  noteMembership(roomId: string, membership: Membership, userId: string = this.userId): void {
    this.membership.set(roomId, userId, membership);
  }

  /** Joins unless already known to be joined; resolves to the room ID. */
  async join(roomIdOrAlias: string, options: { via?: string[]; reason?: string } = {}): Promise<string> {
    if (roomIdOrAlias.startsWith("!") && this.membershipIn(roomIdOrAlias) === "join") return roomIdOrAlias;
    const { room_id } = await this.act(() => this.client.joinRoom(roomIdOrAlias, { ...this.as, ...options }));
    this.noteMembership(room_id, "join");
    return room_id;
  }

  /**
   * Joins, and when the homeserver refuses (not invited), has `inviter` — usually the bot —
   * invite this user, then joins again. The membership cache lives in memory, so after a
   * restart this is the safe way for a ghost to speak in a room: joining a room one is
   * already in is a no-op for the homeserver, while inviting a joined user is refused.
   */
  async ensureJoined(roomId: string, { inviter }: { inviter?: Intent } = {}): Promise<void> {
    if (this.membershipIn(roomId) === "join") return;
    try {
      await this.join(roomId);
      return;
    } catch (err) {
      if (!inviter || !isMatrixApiError(err, "M_FORBIDDEN")) throw err;
    }
    try {
      await inviter.invite(roomId, this.userId);
    } catch (err) {
      // Invited or joined meanwhile; the join below settles it either way.
      if (!isMatrixApiError(err, "M_FORBIDDEN")) throw err;
    }
    await this.join(roomId);
  }

  async leave(roomId: string, options: { reason?: string } = {}): Promise<void> {
    if (this.membershipIn(roomId) === "leave") return;
    await this.act(() => this.client.leave(roomId, { ...this.as, ...options }));
    this.noteMembership(roomId, "leave");
  }

  /** Skipped when the target is known to be joined or invited already, which would be refused. */
  async invite(roomId: string, userId: string, options: { reason?: string } = {}): Promise<void> {
    const known = this.membership.get(roomId, userId);
    if (known === "join" || known === "invite") return;
    await this.act(() => this.client.invite(roomId, userId, { ...this.as, ...options }));
    this.noteMembership(roomId, "invite", userId);
  }

  /** Skipped when the target is known to have left or been banned already. */
  async kick(roomId: string, userId: string, options: { reason?: string } = {}): Promise<void> {
    const known = this.membership.get(roomId, userId);
    if (known === "leave" || known === "ban") return;
    await this.act(() => this.client.kick(roomId, userId, { ...this.as, ...options }));
    this.noteMembership(roomId, "leave", userId);
  }

  async ban(roomId: string, userId: string, options: { reason?: string } = {}): Promise<void> {
    if (this.membership.get(roomId, userId) === "ban") return;
    await this.act(() => this.client.ban(roomId, userId, { ...this.as, ...options }));
    this.noteMembership(roomId, "ban", userId);
  }

  // ---- rooms and events ----------------------------------------------------------------------

  async createRoom(options: IntentCreateRoomOptions = {}): Promise<string> {
    const body: CreateRoomBody = {
      name: options.name,
      topic: options.topic,
      invite: options.invite,
      is_direct: options.isDirect,
      initial_state: options.initialState,
      room_alias_name: options.aliasLocalpart,
      power_level_content_override: options.powerLevelContentOverride,
      visibility: options.visibility,
      preset: options.preset,
      room_version: options.roomVersion,
      creation_content: options.creationContent,
    };
    const { room_id } = await this.act(() => this.client.createRoom(body, this.as));
    this.noteMembership(room_id, "join");
    for (const invitee of options.invite ?? []) this.noteMembership(room_id, "invite", invitee);
    return room_id;
  }

  /** Sends an `m.room.message`; resolves to the event ID. */
  sendMessage(roomId: string, content: Record<string, unknown>, options: SendOptions = {}): Promise<string> {
    return this.sendEvent(roomId, "m.room.message", content, options);
  }

  sendText(roomId: string, body: string, options: SendOptions = {}): Promise<string> {
    return this.sendMessage(roomId, { msgtype: "m.text", body }, options);
  }

  sendEvent(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    options: SendOptions = {},
  ): Promise<string> {
    // The txn ID is fixed before queueing, so every retry of this send deduplicates.
    const txnId = options.txnId ?? this.client.newTxnId();
    return this.inRoomOrder(roomId, async () => {
      const outgoing = this.outgoing
        ? await this.outgoing({ roomId, type, content, userId: this.userId, deviceId: this.deviceId })
        : { type, content };
      const res = await this.client.sendEvent(roomId, outgoing.type, outgoing.content, {
        ...this.as,
        txnId,
        ts: options.ts,
      });
      return res.event_id;
    });
  }

  sendState(
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    options: { ts?: number } = {},
  ): Promise<string> {
    return this.inRoomOrder(roomId, async () => {
      const res = await this.client.sendState(roomId, type, stateKey, content, {
        ...this.as,
        ts: options.ts,
      });
      return res.event_id;
    });
  }

  redact(roomId: string, eventId: string, options: { reason?: string } = {}): Promise<string> {
    const txnId = this.client.newTxnId();
    return this.inRoomOrder(roomId, async () => {
      const res = await this.client.redact(roomId, eventId, { ...this.as, ...options, txnId });
      return res.event_id;
    });
  }

  /** Queued synchronously, registration included, so call order is room order. */
  private inRoomOrder<T>(roomId: string, task: () => Promise<T>): Promise<T> {
    return this.roomQueue.run(roomId, () => this.act(task));
  }

  getState<T = Record<string, unknown>>(roomId: string, type: string, stateKey = ""): Promise<T> {
    return this.act(() => this.client.getState<T>(roomId, type, stateKey, this.as));
  }

  /** Uploads as this user; resolves to the `mxc://` URI. */
  async uploadMedia(
    data: Uint8Array | string,
    options: { contentType?: string; filename?: string } = {},
  ): Promise<string> {
    const { content_uri } = await this.act(() => this.client.uploadMedia(data, { ...this.as, ...options }));
    return content_uri;
  }

  // ---- devices -------------------------------------------------------------------------------

  /**
   * Creates (or renames) a device for this user with MSC4190 `PUT /devices/{id}`, the only way
   * left on homeservers that delegate auth (MAS). Call before setting `deviceId`.
   */
  createDevice(deviceId: string, displayName?: string): Promise<PutDeviceResult> {
    const body = displayName === undefined ? {} : { display_name: displayName };
    return this.act(() => this.client.putDevice(deviceId, body, { userId: this.as.userId }));
  }

  whoami(): Promise<WhoamiResponse> {
    return this.act(() => this.client.whoami(this.as));
  }

  /** Raw request as this user, for endpoints without a helper. */
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { query?: Record<string, string | undefined>; body?: unknown } = {},
  ): Promise<T> {
    return this.act(() => this.client.request<T>(method, path, { ...this.as, ...options }));
  }
}

/** Synapse: 403 M_FORBIDDEN "Application service has not registered this user (@x:y)". */
function isNotRegistered(err: unknown): boolean {
  return isMatrixApiError(err, "M_FORBIDDEN") && /not registered/i.test(err.message);
}
