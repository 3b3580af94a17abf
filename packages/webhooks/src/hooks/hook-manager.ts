import { type Appservice, isMatrixApiError, type Logger, type MatrixEvent } from "@trestle/appservice";
import { avatarUrlProblem, displayNameProblem, isSignatureScheme } from "../commands/settings.js";
import type { SignatureScheme } from "../ingress/signatures.js";
import type { Renderer } from "../rendering/index.js";
import { TemplateError } from "../rendering/index.js";
import {
  BotLacksPowerError,
  HookExistsError,
  HookNotFoundError,
  HookSecretUnusableError,
  InvalidHookSettingError,
  UnknownHookError,
  WrongSecretError,
} from "./errors.js";
import type { HookStore } from "./hook-store.js";
import {
  defaultHookSettings,
  HOOK_NAME_PATTERN,
  HOOK_STATE_EVENT,
  type HookRecord,
  type HookSettings,
  toStateContent,
} from "./model.js";
import { generateHookId, generateHookSecret, hashSecret, verifySecret } from "./secrets.js";

export interface HookManagerOptions {
  store: HookStore;
  appservice: Appservice;
  renderer: Renderer;
  /** Base URL of the webhook routes as seen from outside. */
  publicUrl: string;
  pepper?: string;
  logger: Logger;
}

export interface IssuedUrl {
  record: HookRecord;
  /** Contains the secret: hand it to the hook's owner only, never to the room or a log. */
  url: string;
}

/**
 * Creates, changes and authenticates hooks. Room state (`org.trestle.webhook`) is what the
 * room sees; the store adds the secret's hash and is what the request path reads.
 */
export class HookManager {
  constructor(private readonly options: HookManagerOptions) {}

  private get bot() {
    return this.options.appservice.botIntent;
  }

  urlFor(id: string, secret: string): string {
    return `${this.options.publicUrl.replace(/\/+$/, "")}/webhooks/v1/${id}/${secret}`;
  }

  async create(
    roomId: string,
    name: string,
    createdBy: string,
    settings: Partial<HookSettings> = {},
  ): Promise<IssuedUrl> {
    if (!HOOK_NAME_PATTERN.test(name)) {
      throw new InvalidHookSettingError(
        `"${name}" is not a valid webhook name: use 1-32 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit`,
      );
    }
    if (await this.options.store.getByName(roomId, name)) throw new HookExistsError(name);
    const merged = this.validated({ ...defaultHookSettings(), ...settings });
    const secret = generateHookSecret();
    const now = Date.now();
    const record: HookRecord = {
      ...merged,
      id: generateHookId(),
      name,
      createdBy,
      createdAt: now,
      roomId,
      secretHash: hashSecret(secret, { pepper: this.options.pepper }),
      updatedAt: now,
    };
    await this.writeState(record);
    await this.options.store.put(record);
    this.options.logger.info({ roomId, hook: record.id, name }, "webhook created");
    return { record, url: this.urlFor(record.id, secret) };
  }

  list(roomId: string): Promise<HookRecord[]> {
    return this.options.store.listByRoom(roomId);
  }

  async get(roomId: string, name: string): Promise<HookRecord> {
    const record = await this.options.store.getByName(roomId, name);
    if (!record) throw new HookNotFoundError(name);
    return record;
  }

  async remove(roomId: string, name: string): Promise<void> {
    const record = await this.get(roomId, name);
    await this.clearState(roomId, name);
    await this.options.store.remove(record.id);
    this.options.logger.info({ roomId, hook: record.id, name }, "webhook removed");
  }

  /** A new secret; the old URL stops working at once. */
  async rotate(roomId: string, name: string): Promise<IssuedUrl> {
    const record = await this.get(roomId, name);
    const secret = generateHookSecret();
    const rotated = {
      ...record,
      secretHash: hashSecret(secret, { pepper: this.options.pepper }),
      updatedAt: Date.now(),
    };
    await this.options.store.put(rotated);
    this.options.logger.info({ roomId, hook: record.id, name }, "webhook secret rotated");
    return { record: rotated, url: this.urlFor(record.id, secret) };
  }

  async update(roomId: string, name: string, patch: Partial<HookSettings>): Promise<HookRecord> {
    const record = await this.get(roomId, name);
    const settings = this.validated({ ...record, ...patch });
    const updated: HookRecord = { ...record, ...settings, updatedAt: Date.now() };
    await this.writeState(updated);
    await this.options.store.put(updated);
    return updated;
  }

  /** Turns signature checks on with a fresh signing secret (returned once), or off with `null`. */
  async setSignature(
    roomId: string,
    name: string,
    scheme: SignatureScheme | null,
  ): Promise<string | undefined> {
    const record = await this.get(roomId, name);
    const signingSecret = scheme ? generateHookSecret() : undefined;
    const updated: HookRecord = {
      ...record,
      signature: scheme ? { scheme } : undefined,
      signingSecret,
      updatedAt: Date.now(),
    };
    await this.writeState(updated);
    await this.options.store.put(updated);
    return signingSecret;
  }

  /** The request path: 404 for an unknown id, 403 for a wrong secret (compared in constant time). */
  async authenticate(id: string, secret: string): Promise<HookRecord> {
    const record = await this.options.store.get(id);
    if (!record) throw new UnknownHookError();
    let matches: boolean;
    try {
      matches = verifySecret(secret, record.secretHash, { pepper: this.options.pepper });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.options.logger.error(
        { hook: record.id, roomId: record.roomId, reason },
        "webhook secret cannot be checked",
      );
      throw new HookSecretUnusableError(record.name, reason);
    }
    if (!matches) throw new WrongSecretError();
    return record;
  }

  /**
   * Someone other than the bot changed a hook's state event: an admin edited settings by
   * hand, or cleared the event to delete the hook. The store follows the room.
   */
  async onStateEvent(event: MatrixEvent): Promise<void> {
    if (event.type !== HOOK_STATE_EVENT || event.state_key === undefined) return;
    if (event.sender === this.options.appservice.botUserId) return;
    const record = await this.options.store.getByName(event.room_id, event.state_key);
    if (!record) return;
    if (Object.keys(event.content).length === 0) {
      await this.options.store.remove(record.id);
      this.options.logger.info(
        { roomId: event.room_id, hook: record.id },
        "webhook removed through room state",
      );
      return;
    }
    try {
      const settings = this.validated({ ...record, ...(event.content as Partial<HookSettings>) });
      await this.options.store.put({ ...record, ...settings, updatedAt: Date.now() });
    } catch (err) {
      this.options.logger.warn(
        { roomId: event.room_id, hook: record.id, err: (err as Error).message },
        "ignoring invalid hook settings from room state",
      );
    }
  }

  /** Only the settings keys, each checked; a template must compile. */
  private validated(input: HookSettings): HookSettings {
    // Also what a room admin wrote into the state event by hand: nothing here is trusted.
    const msgtype = input.msgtype;
    if (typeof input.template !== "string") throw new InvalidHookSettingError("template must be a string");
    if (msgtype !== "m.notice" && msgtype !== "m.text") {
      throw new InvalidHookSettingError(`msgtype must be m.notice or m.text, not ${JSON.stringify(msgtype)}`);
    }
    try {
      this.options.renderer.resolve(input.template);
    } catch (err) {
      if (err instanceof TemplateError) throw new InvalidHookSettingError(`Template problem: ${err.message}`);
      throw err;
    }
    const avatarUrl: unknown = input.sender?.avatarUrl;
    if (avatarUrl !== undefined) {
      const problem =
        typeof avatarUrl === "string" ? avatarUrlProblem(avatarUrl) : "The avatar must be a string";
      if (problem) throw new InvalidHookSettingError(problem);
    }
    const displayName: unknown = input.sender?.displayName;
    if (displayName !== undefined) {
      const problem =
        typeof displayName === "string"
          ? displayNameProblem(displayName)
          : "The display name must be a string";
      if (problem) throw new InvalidHookSettingError(problem);
    }
    const signature: unknown = input.signature;
    if (signature != null && !isSignatureScheme((signature as { scheme?: unknown }).scheme)) {
      // An unknown scheme would otherwise turn the hook's signature check off.
      throw new InvalidHookSettingError(`Unknown signature scheme in ${JSON.stringify(signature)}`);
    }
    const rateLimit = input.rateLimit;
    if (
      rateLimit &&
      !(
        typeof rateLimit.perMinute === "number" &&
        rateLimit.perMinute > 0 &&
        Number.isInteger(rateLimit.burst) &&
        rateLimit.burst >= 1
      )
    ) {
      throw new InvalidHookSettingError("rateLimit needs perMinute > 0 and an integer burst ≥ 1");
    }
    return {
      template: input.template,
      msgtype,
      sender: { displayName: displayName as string | undefined, avatarUrl: avatarUrl as string | undefined },
      allowSenderOverride: Boolean(input.allowSenderOverride),
      allowGet: Boolean(input.allowGet),
      wait: Boolean(input.wait),
      signature:
        signature == null ? undefined : { scheme: (signature as { scheme: SignatureScheme }).scheme },
      rateLimit,
    };
  }

  private async writeState(record: HookRecord): Promise<void> {
    await this.sendState(record.roomId, record.name, toStateContent(record));
  }

  private async clearState(roomId: string, name: string): Promise<void> {
    await this.sendState(roomId, name, {});
  }

  private async sendState(roomId: string, name: string, content: object): Promise<void> {
    try {
      await this.bot.sendState(roomId, HOOK_STATE_EVENT, name, JSON.parse(JSON.stringify(content)));
    } catch (err) {
      if (isMatrixApiError(err, "M_FORBIDDEN"))
        throw new BotLacksPowerError(this.options.appservice.botUserId);
      throw err;
    }
  }
}
