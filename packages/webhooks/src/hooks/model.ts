import type { SignatureScheme } from "../ingress/signatures.js";

/**
 * A hook as the room sees it: the content of its `org.trestle.webhook` state event
 * (state key = the hook's name). No secret is ever part of it.
 */
export const HOOK_STATE_EVENT = "org.trestle.webhook";

export type HookMsgtype = "m.notice" | "m.text";

export interface HookSettings {
  /** A built-in template name (`github`, `slack`, …) or inline handlebars. */
  template: string;
  msgtype: HookMsgtype;
  /** The ghost's display name and avatar in this room. */
  sender: { displayName?: string; avatarUrl?: string };
  /** Let a Slack payload's `username`/`icon_url` set the sender per message. */
  allowSenderOverride: boolean;
  /** Accept GET requests (query string as the payload). Off by default: URLs leak through logs and previews. */
  allowGet: boolean;
  /** Answer every request as if `?wait=true` were given. */
  wait: boolean;
  /** Verify a provider's signature header; the signing secret is kept out of room state. */
  signature?: { scheme: SignatureScheme };
  /** Override the bridge's default rate limit for this hook. */
  rateLimit?: { perMinute: number; burst: number };
}

export interface HookStateContent extends HookSettings {
  id: string;
  name: string;
  createdBy: string;
  createdAt: number;
}

/** What the bridge stores: the state content plus the secret's hash (never the secret). */
export interface HookRecord extends HookStateContent {
  roomId: string;
  secretHash: string;
  /** HMAC key or token of the signature check; a shared secret by nature, so kept as is. */
  signingSecret?: string;
  updatedAt: number;
}

/** Hook names become ghost localparts and state keys: keep them short and plain. */
export const HOOK_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,31}$/;

export function defaultHookSettings(): HookSettings {
  return {
    template: "generic",
    msgtype: "m.notice",
    sender: {},
    allowSenderOverride: true,
    allowGet: false,
    wait: false,
  };
}

/** The state event content of a record: everything but the secrets and the room id. */
export function toStateContent(record: HookRecord): HookStateContent {
  const {
    roomId: _room,
    secretHash: _hash,
    signingSecret: _signing,
    updatedAt: _updated,
    ...content
  } = record;
  return content;
}
