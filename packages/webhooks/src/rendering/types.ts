export type Msgtype = "m.notice" | "m.text";

/** Request headers as a web framework hands them over (koa's `ctx.headers`). */
export type HeaderInput = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Header names in lower case, values joined; secrets removed (see normalizeHeaders). */
export type WebhookHeaders = Readonly<Record<string, string>>;

/**
 * A display name and avatar the payload asks for (Slack's `username` / `icon_url`). The
 * caller applies them only when the hook allows it, and must upload the avatar to the media
 * repository itself: the renderer never fetches anything.
 */
export interface SenderHint {
  displayname?: string;
  avatar_url?: string;
}

export interface RenderedMessage {
  msgtype: Msgtype;
  /** Plain text: the Markdown rendered as readable text (links as `text <url>`). */
  body: string;
  format: "org.matrix.custom.html";
  /** markdown-it's HTML, sanitised to the tags and attributes Matrix allows. */
  formatted_body: string;
  /** Users named with `{{mention}}`; send as the event's `m.mentions` so no one else is pinged. */
  mentions: { user_ids: string[] };
  /**
   * The template rendered nothing but whitespace. Templates filter events this way
   * (`{{#if (eq action "opened")}}…{{/if}}`); the caller should then not send anything.
   */
  empty: boolean;
  /** True when body or formatted_body was cut to fit the size limit. */
  truncated: boolean;
  sender?: SenderHint;
}

export interface RenderContext {
  /** The webhook request's headers: built-in templates pick their event template from them. */
  headers?: HeaderInput;
  /** Defaults to m.notice, so bots in the room do not react to webhook messages. */
  msgtype?: Msgtype;
  /** Extra strings for templates as `{{@hook.name}}` etc. (the hook's name, the room's alias…). */
  hook?: Readonly<Record<string, string>>;
}

/**
 * A built-in template: one handlebars source per event kind, and a detector choosing among
 * them. Sources are plain data; a Renderer compiles them into its own handlebars environment.
 */
export interface BuiltinTemplate {
  readonly name: string;
  readonly description: string;
  /** Handlebars sources by variant; `default` is used when `detect` is absent or names no variant. */
  readonly sources: Readonly<Record<string, string>> & { readonly default: string };
  /** Picks the variant for a request, e.g. from `x-github-event` or GitLab's `object_kind`. */
  detect?(headers: WebhookHeaders, payload: unknown): string;
  /** A display name / avatar the payload asks for (Slack). */
  sender?(payload: unknown): SenderHint | undefined;
}

/** The event content to send (`PUT /rooms/{roomId}/send/m.room.message/{txnId}`). */
export interface MessageEventContent {
  msgtype: Msgtype;
  body: string;
  format: "org.matrix.custom.html";
  formatted_body: string;
  "m.mentions": { user_ids?: string[] };
}
