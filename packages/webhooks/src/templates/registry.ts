import { TemplateError } from "../rendering/errors.js";
import type { BuiltinTemplate, WebhookHeaders } from "../rendering/types.js";
import { alertmanager, grafana } from "./alerts.js";
import { generic } from "./generic.js";
import { gitea } from "./gitea.js";
import { github } from "./github.js";
import { gitlab } from "./gitlab.js";
import { slack } from "./slack.js";

export const builtinTemplates = Object.freeze({
  generic,
  slack,
  github,
  gitlab,
  gitea,
  alertmanager,
  grafana,
} satisfies Record<string, BuiltinTemplate>);

export type BuiltinTemplateName = keyof typeof builtinTemplates;

export const BUILTIN_TEMPLATE_NAMES = Object.keys(builtinTemplates) as readonly BuiltinTemplateName[];

export function isBuiltinTemplateName(name: string): name is BuiltinTemplateName {
  return Object.hasOwn(builtinTemplates, name);
}

/** What `!webhook template <argument>` chose: a built-in by name, or inline handlebars. */
export type TemplateRef = { kind: "builtin"; name: BuiltinTemplateName } | { kind: "inline"; source: string };

/**
 * Reads the argument of `!webhook template`. A single word names a built-in (case-insensitive);
 * a single word that is no built-in is an error rather than a one-word inline template, since
 * it is almost always a typo. Anything else is inline handlebars, compiled by the Renderer.
 */
export function resolveTemplate(nameOrInline: string): TemplateRef {
  const text = nameOrInline.trim();
  if (text === "") throw new TemplateError("syntax", "the template is empty");
  const name = text.toLowerCase();
  if (isBuiltinTemplateName(name)) return { kind: "builtin", name };
  if (/^[\w-]+$/.test(text)) {
    throw new TemplateError(
      "unknown-builtin",
      `there is no built-in template "${text}" (built-in: ${BUILTIN_TEMPLATE_NAMES.join(", ")}); an inline template contains {{…}} or spaces`,
      { template: text },
    );
  }
  return { kind: "inline", source: text };
}

function has(payload: unknown, ...keys: string[]): boolean {
  return !!payload && typeof payload === "object" && keys.every((key) => key in payload);
}

/**
 * The built-in that fits a request, for hooks without a chosen template: by the sender's event
 * header first, then by the payload's shape; `generic` when nothing matches.
 */
export function detectBuiltinTemplate(headers: WebhookHeaders, payload: unknown): BuiltinTemplateName {
  // Gitea and Forgejo also send X-GitHub-Event, so they are checked first.
  if (headers["x-gitea-event"] || headers["x-forgejo-event"] || headers["x-gogs-event"]) return "gitea";
  if (headers["x-github-event"]) return "github";
  if (headers["x-gitlab-event"] || has(payload, "object_kind")) return "gitlab";
  if (has(payload, "alerts", "orgId") || has(payload, "alerts", "state", "title")) return "grafana";
  if (has(payload, "alerts", "groupKey", "version")) return "alertmanager";
  if (has(payload, "attachments") || has(payload, "icon_url") || has(payload, "icon_emoji")) return "slack";
  return "generic";
}
