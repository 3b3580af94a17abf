import {
  type Appservice,
  type Intent,
  isMatrixApiError,
  type Logger,
  type NamespacedKeyValue,
  namespacedKeyValue,
} from "@trestle/appservice";
import { Renderer, toEventContent } from "./rendering/index.js";

/** Markdown, or a message already rendered. */
export type DirectMessage = string | { body: string; formatted_body?: string };

export interface DirectMessengerOptions {
  appservice: Appservice;
  logger: Logger;
  /** Renders Markdown messages; one of its own is made when absent. */
  renderer?: Renderer;
  /** Key-value namespace remembering each user's DM room (default "dm-rooms"). */
  namespace?: string;
}

interface DmRoomRecord {
  roomId: string;
  createdAt: number;
}

/**
 * A member's membership as `intent` can read it; undefined when the room or the member is
 * unknown to it, or it may not read the room's state (not in the room).
 */
export async function membershipOf(
  intent: Intent,
  roomId: string,
  userId: string,
): Promise<string | undefined> {
  try {
    const content = await intent.getState<{ membership?: unknown }>(roomId, "m.room.member", userId);
    return typeof content.membership === "string" ? content.membership : undefined;
  } catch (err) {
    if (isMatrixApiError(err, "M_NOT_FOUND") || isMatrixApiError(err, "M_FORBIDDEN")) return undefined;
    throw err;
  }
}

const LIVE_MEMBERSHIPS = new Set(["join", "invite"]);

/**
 * Sends the bot's private messages: hook URLs and signing secrets, which must never reach a
 * shared room. Each user has one DM room with the bot, remembered in the key-value store and
 * reused while both are still in it; otherwise a new one is made (and the bot leaves the old).
 */
export class DirectMessenger {
  private readonly appservice: Appservice;
  private readonly logger: Logger;
  private readonly renderer: Renderer;
  private readonly namespace: string;
  /** Per user, so two messages at once don't make two rooms. */
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(options: DirectMessengerOptions) {
    this.appservice = options.appservice;
    this.logger = options.logger;
    this.renderer = options.renderer ?? new Renderer({ logger: options.logger });
    this.namespace = options.namespace ?? "dm-rooms";
  }

  private get rooms(): NamespacedKeyValue {
    return namespacedKeyValue(this.appservice.stores.keyValue, this.namespace);
  }

  private get bot() {
    return this.appservice.botIntent;
  }

  /** Sends `message` to `userId` in their DM room with the bot. The content is never logged. */
  send(userId: string, message: DirectMessage): Promise<void> {
    if (this.appservice.namespaces.isBot(userId) || this.appservice.namespaces.isUserInNamespace(userId)) {
      return Promise.reject(
        new Error(`Refusing to send a direct message to the bridge's own user ${userId}`),
      );
    }
    return this.serialised(userId, async () => {
      const content = this.content(message);
      const roomId = await this.findOrCreateRoom(userId);
      try {
        await this.bot.sendMessage(roomId, content);
      } catch (err) {
        // Removed from the room since we looked: one more try in a fresh room.
        if (!isMatrixApiError(err, "M_FORBIDDEN")) throw err;
        this.logger.warn({ userId, roomId }, "could not send into the DM room; making a new one");
        await this.rooms.delete(userId);
        await this.bot.sendMessage(await this.findOrCreateRoom(userId), content);
      }
    });
  }

  /** The DM room with `userId`, made (and the user invited) when there is none usable. */
  roomFor(userId: string): Promise<string> {
    return this.serialised(userId, () => this.findOrCreateRoom(userId));
  }

  private async findOrCreateRoom(userId: string): Promise<string> {
    const known = await this.rooms.get<DmRoomRecord>(userId);
    if (known && (await this.stillShared(known.roomId, userId))) return known.roomId;
    if (known) {
      this.logger.info({ userId, roomId: known.roomId }, "DM room no longer shared; making a new one");
      await this.bot.leave(known.roomId).catch((err: unknown) => {
        this.logger.debug({ roomId: known.roomId, err: String(err) }, "could not leave the old DM room");
      });
    }
    const roomId = await this.bot.createRoom({
      invite: [userId],
      isDirect: true,
      preset: "trusted_private_chat",
    });
    await this.rooms.set<DmRoomRecord>(userId, { roomId, createdAt: Date.now() });
    this.logger.info({ userId, roomId }, "created a DM room");
    return roomId;
  }

  /** Both the bot and the user are still in (or invited to) the room. */
  private async stillShared(roomId: string, userId: string): Promise<boolean> {
    const [bot, user] = await Promise.all([
      membershipOf(this.bot, roomId, this.appservice.botUserId),
      membershipOf(this.bot, roomId, userId),
    ]);
    return bot === "join" && user !== undefined && LIVE_MEMBERSHIPS.has(user);
  }

  private content(message: DirectMessage): Record<string, unknown> {
    if (typeof message === "string") {
      return { ...toEventContent(this.renderer.fromMarkdown(message, { msgtype: "m.notice" })) };
    }
    return {
      msgtype: "m.notice",
      body: message.body,
      ...(message.formatted_body === undefined
        ? {}
        : { format: "org.matrix.custom.html", formatted_body: message.formatted_body }),
      "m.mentions": {},
    };
  }

  private serialised<T>(userId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.pending.get(userId) ?? Promise.resolve();
    const result = previous.then(task, task);
    const settled = result.catch(() => undefined);
    this.pending.set(userId, settled);
    void settled.then(() => {
      if (this.pending.get(userId) === settled) this.pending.delete(userId);
    });
    return result;
  }
}
