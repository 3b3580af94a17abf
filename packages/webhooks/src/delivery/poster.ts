import type { Intent, Logger } from "@trestle/appservice";
import { LRUCache } from "lru-cache";
import type { HookRecord } from "../hooks/model.js";
import { toEventContent } from "../rendering/renderer.js";
import type { RenderedMessage } from "../rendering/types.js";

export interface PostRequest {
  hook: HookRecord;
  /** A non-empty rendering (the queue skips empty ones). */
  message: RenderedMessage;
  /** Fixed per job, so a resend after a crash or a lost answer is deduplicated by the homeserver. */
  txnId: string;
  /** When the webhook arrived: the event's timestamp. */
  ts: number;
}

/** Puts rendered webhooks into rooms. The queue takes one; tests give it a fake. */
export interface HookPoster {
  /** Sends the message as the hook's ghost; resolves to the event id. */
  post(request: PostRequest): Promise<string>;
  /** Sends an `m.notice` as the bridge bot (template errors for the room's admins). */
  notice(roomId: string, body: string): Promise<void>;
}

/**
 * Fetches an avatar image by http(s) URL for upload. Called only for a Slack `icon_url` on a hook
 * that allows sender overrides. Must bound size and time itself and refuse private addresses:
 * the URL comes from whoever knows the webhook's URL.
 */
export type AvatarFetcher = (url: string) => Promise<{ data: Uint8Array; contentType: string }>;

/** The intents the poster needs (an `IntentFactory`, i.e. `appservice.intents`). */
export interface PosterIntents {
  getIntentForLocalpart(localpart: string): Intent;
  getBotIntent(): Intent;
}

export interface MatrixHookPosterOptions {
  intents: PosterIntents;
  /** `webhooks.userPrefix`: ghosts are `@<userPrefix><hook name>:<domain>`. */
  userPrefix: string;
  logger: Logger;
  /** Without it, http(s) avatars from payloads are skipped (the display name still applies). */
  fetchAvatar?: AvatarFetcher;
  /** Per-room profiles remembered (default 10,000). */
  maxCachedProfiles?: number;
  /** Uploaded avatars remembered by source URL (default 1,000). */
  maxCachedAvatars?: number;
}

interface RoomProfile {
  displayname: string;
  avatar_url: string | undefined;
}

const MEMBER_EVENT = "m.room.member";
/** A failed avatar fetch is remembered as this, so a bad icon_url is not fetched per message. */
const NO_AVATAR = "";
/** How long a failed avatar URL is not fetched again. */
const FAILED_AVATAR_RETRY_MS = 10 * 60_000;

/**
 * Sends webhook messages as the hook's ghost, `@<userPrefix><hook name>:<domain>`.
 *
 * Hooks with the same name in different rooms share that ghost, so its name and avatar are set
 * per room, with its own `m.room.member` event, never in the global profile (which would rename
 * it in every room). The member event is sent only when the room's profile differs from what was
 * last seen there: a cache, filled from the room's state after a restart.
 */
export class MatrixHookPoster implements HookPoster {
  private readonly intents: PosterIntents;
  private readonly userPrefix: string;
  private readonly logger: Logger;
  private readonly fetchAvatar: AvatarFetcher | undefined;
  private readonly profiles: LRUCache<string, string>;
  private readonly avatars: LRUCache<string, string>;

  constructor(options: MatrixHookPosterOptions) {
    this.intents = options.intents;
    this.userPrefix = options.userPrefix;
    this.logger = options.logger.child({ component: "poster" });
    this.fetchAvatar = options.fetchAvatar;
    this.profiles = new LRUCache({ max: options.maxCachedProfiles ?? 10_000 });
    this.avatars = new LRUCache({ max: options.maxCachedAvatars ?? 1_000 });
  }

  /** The ghost user id of a hook. */
  ghostLocalpart(hook: Pick<HookRecord, "name">): string {
    return `${this.userPrefix}${hook.name}`;
  }

  async post({ hook, message, txnId, ts }: PostRequest): Promise<string> {
    const ghost = this.intents.getIntentForLocalpart(this.ghostLocalpart(hook));
    await ghost.ensureRegistered();
    if (ghost.membershipIn(hook.roomId) !== "join") {
      // A (re)join shows the global profile again: check the room's profile afresh.
      this.profiles.delete(profileCacheKey(hook.roomId, ghost));
      await ghost.ensureJoined(hook.roomId, { inviter: this.intents.getBotIntent() });
    }
    await this.ensureRoomProfile(ghost, hook.roomId, await this.profileFor(ghost, hook, message));
    const content = { ...toEventContent(message), msgtype: hook.msgtype };
    return ghost.sendMessage(hook.roomId, content, { ts, txnId });
  }

  async notice(roomId: string, body: string): Promise<void> {
    await this.intents.getBotIntent().sendMessage(roomId, { msgtype: "m.notice", body });
  }

  private async profileFor(ghost: Intent, hook: HookRecord, message: RenderedMessage): Promise<RoomProfile> {
    const profile: RoomProfile = {
      displayname: hook.sender.displayName ?? hook.name,
      avatar_url: hook.sender.avatarUrl,
    };
    const hint = hook.allowSenderOverride ? message.sender : undefined;
    if (hint?.displayname) profile.displayname = hint.displayname;
    if (hint?.avatar_url) {
      const avatar = await this.uploadedAvatar(ghost, hook, hint.avatar_url);
      if (avatar) profile.avatar_url = avatar;
    }
    return profile;
  }

  /** An mxc URL for a payload's avatar, uploading it once; undefined to keep the hook's own. */
  private async uploadedAvatar(ghost: Intent, hook: HookRecord, url: string): Promise<string | undefined> {
    if (url.startsWith("mxc://")) return url;
    if (!/^https?:\/\//i.test(url)) return undefined;
    if (!this.fetchAvatar) {
      this.logger.debug(
        { hook: hook.id },
        "not fetching the payload's http(s) avatar: no fetcher configured",
      );
      return undefined;
    }
    const cached = this.avatars.get(url);
    if (cached !== undefined) return cached === NO_AVATAR ? undefined : cached;
    try {
      const { data, contentType } = await this.fetchAvatar(url);
      const mxc = await ghost.uploadMedia(data, { contentType });
      this.avatars.set(url, mxc);
      return mxc;
    } catch (err) {
      // A broken avatar must not hold the message back.
      this.logger.warn({ hook: hook.id, err: String(err) }, "could not fetch or upload the payload's avatar");
      // Remembered for a while only: a timeout or a 5xx may pass, and the sender keeps its icon.
      this.avatars.set(url, NO_AVATAR, { ttl: FAILED_AVATAR_RETRY_MS });
      return undefined;
    }
  }

  private async ensureRoomProfile(ghost: Intent, roomId: string, profile: RoomProfile): Promise<void> {
    const key = profileCacheKey(roomId, ghost);
    const wanted = profileKey(profile);
    if (this.profiles.get(key) === wanted) return;
    if (!this.profiles.has(key)) {
      // First time since start: the room may already show this profile.
      const current = await this.currentProfile(ghost, roomId);
      if (current !== undefined && profileKey(current) === wanted) {
        this.profiles.set(key, wanted);
        return;
      }
    }
    const content: Record<string, unknown> = { membership: "join", displayname: profile.displayname };
    if (profile.avatar_url) content.avatar_url = profile.avatar_url;
    await ghost.sendState(roomId, MEMBER_EVENT, ghost.userId, content);
    this.profiles.set(key, wanted);
  }

  private async currentProfile(ghost: Intent, roomId: string): Promise<RoomProfile | undefined> {
    try {
      const member = await ghost.getState<Record<string, unknown>>(roomId, MEMBER_EVENT, ghost.userId);
      if (member.membership !== "join") return undefined;
      return {
        displayname: typeof member.displayname === "string" ? member.displayname : "",
        avatar_url:
          typeof member.avatar_url === "string" && member.avatar_url ? member.avatar_url : undefined,
      };
    } catch (err) {
      this.logger.debug({ roomId, err: String(err) }, "could not read the ghost's member event; setting it");
      return undefined;
    }
  }
}

function profileCacheKey(roomId: string, ghost: Intent): string {
  return `${roomId}\n${ghost.userId}`;
}

function profileKey(profile: RoomProfile): string {
  return `${profile.displayname}\n${profile.avatar_url ?? ""}`;
}
