import { safeUrl } from "../rendering/markdown-text.js";
import type { BuiltinTemplate, SenderHint } from "../rendering/types.js";

/*
 * Slack-compatible incoming webhooks (https://api.slack.com/messaging/webhooks): `text` in
 * Slack's mrkdwn, legacy `attachments` (pretext, colour, author, title/title_link, text,
 * fields, footer/ts, fallback). Many CI tools and monitoring systems speak only this.
 */

const source = `{{#if text}}
{{slack_mrkdwn text}}

{{/if}}
{{#each attachments}}
{{#if pretext}}
{{slack_mrkdwn pretext}}

{{/if}}
{{#if (or title text fields author_name)}}
{{color_square color}}{{#if author_name}} {{link author_name author_link}}{{/if}}{{#if title}} **{{link title title_link}}**{{/if}}
{{#if text}}
{{slack_mrkdwn text}}
{{/if}}
{{#each fields}}
**{{title}}**: {{slack_mrkdwn value}}
{{/each}}
{{else if fallback}}
{{color_square color}} {{fallback}}
{{/if}}
{{#if footer}}
_{{footer}}{{#if ts}} · {{date ts}}{{/if}}_
{{/if}}

{{/each}}
`;

export const slack: BuiltinTemplate = {
  name: "slack",
  description: "Slack-compatible incoming webhooks: mrkdwn text and attachments",
  sources: { default: source },
  sender(payload) {
    if (!payload || typeof payload !== "object") return undefined;
    const { username, icon_url } = payload as { username?: unknown; icon_url?: unknown };
    const hint: SenderHint = {};
    if (typeof username === "string" && username.trim() !== "")
      hint.displayname = username.trim().slice(0, 256);
    const avatar = safeUrl(icon_url);
    if (avatar?.startsWith("https:") || avatar?.startsWith("http:")) hint.avatar_url = avatar;
    return hint.displayname || hint.avatar_url ? hint : undefined;
  },
};
