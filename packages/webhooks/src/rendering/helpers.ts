import Handlebars from "handlebars";
import {
  codeBlock,
  codeSpan,
  escapeMarkdown,
  literalInCode,
  markdownLink,
  safeUrl,
} from "./markdown-text.js";
import { slackToMarkdown } from "./slack-mrkdwn.js";
import {
  characters,
  colourSquare,
  formatDate,
  formatDuration,
  isBlank,
  isDateFormat,
  isTruthy,
  statusEmoji,
  toDate,
  toNumber,
  toText,
} from "./values.js";

/*
 * Template helpers. Every helper is total: bad or missing arguments give an empty or
 * unchanged value, never an exception, so a payload that lacks a field cannot break a
 * template. Helpers that produce Markdown on purpose (links, code, `markdown`) return a
 * SafeString; anything else a helper returns is escaped like any `{{value}}`.
 */

type HandlebarsEnv = typeof Handlebars;
type SafeString = Handlebars.SafeString;

interface HelperOptions extends Handlebars.HelperOptions {
  lookupProperty?: (parent: unknown, name: string) => unknown;
}

/** A helper body: positional arguments (without handlebars' options) in, a value out. */
type Helper = (args: unknown[]) => unknown;

/** Interpolations `{{value}}` are rewritten to call this helper, which escapes for Markdown. */
export const TEXT_HELPER = "__trestle_text";
/** …and to this one where the template put them inside a code span ("span") or fenced block ("block"). */
export const CODE_TEXT_HELPER = "__trestle_code_text";

const USER_ID = /^@[^\s:]+:\S+$/;
const MAX_USER_ID_LENGTH = 255;
export const MAX_MENTIONS = 50;

function markdown(text: string): SafeString {
  return new Handlebars.SafeString(text);
}

export function isMarkdown(value: unknown): value is SafeString {
  return value instanceof Handlebars.SafeString;
}

/** Markdown for a value: SafeStrings as they are, anything else escaped. */
export function asMarkdown(value: unknown): string {
  return isMarkdown(value) ? value.toHTML() : escapeMarkdown(toText(value));
}

function looseEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const primitive = (v: unknown) => typeof v === "string" || typeof v === "number" || typeof v === "boolean";
  return primitive(a) && primitive(b) && String(a) === String(b);
}

function compareNumbers(a: unknown, b: unknown, test: (x: number, y: number) => boolean): boolean {
  const x = toNumber(a);
  const y = toNumber(b);
  return x !== undefined && y !== undefined && test(x, y);
}

function slice(value: unknown, count: unknown, fromEnd: boolean): unknown {
  if (!Array.isArray(value)) return undefined;
  if (count === undefined) return fromEnd ? value[value.length - 1] : value[0];
  const n = Math.max(0, Math.floor(toNumber(count) ?? 0));
  if (n === 0) return [];
  return fromEnd ? value.slice(-n) : value.slice(0, n);
}

function length(value: unknown): number {
  if (Array.isArray(value)) return value.length;
  if (typeof value === "string") return characters(value).length;
  if (value && typeof value === "object") return Object.keys(value).length;
  return 0;
}

function truncate([value, max, ellipsis]: unknown[]): unknown {
  const limit = toNumber(max);
  const text = isMarkdown(value) ? value.toHTML() : toText(value);
  const chars = characters(text);
  if (limit === undefined || chars.length <= limit) return value;
  const tail = typeof ellipsis === "string" ? ellipsis : "…";
  const cut = chars.slice(0, Math.max(0, limit - characters(tail).length)).join("") + tail;
  return isMarkdown(value) ? markdown(cut) : cut;
}

function date([value, format]: unknown[]): string {
  const parsed = toDate(value);
  if (!parsed) return toText(value);
  // Go's zero time (0001-01-01T00:00:00Z) is how Alertmanager says "not ended yet".
  if (parsed.getUTCFullYear() < 1970) return "";
  return formatDate(parsed, isDateFormat(format) ? format : "datetime");
}

function pluralize([count, singular, plural]: unknown[]): string {
  const n = Array.isArray(count) ? count.length : (toNumber(count) ?? 0);
  const one = toText(singular);
  const many = typeof plural === "string" ? plural : `${one}s`;
  return `${n} ${n === 1 ? one : many}`;
}

function link([text, url]: unknown[]): SafeString {
  const href = safeUrl(url);
  const label = asMarkdown(text);
  if (!href) return markdown(label);
  return markdown(markdownLink(label.trim() === "" ? escapeMarkdown(href) : label, href));
}

/** Alertmanager's "new silence" page, pre-filled with matchers for the given labels. */
function silenceUrl([base, labels]: unknown[]): string {
  const root = safeUrl(base);
  if (!root || !labels || typeof labels !== "object") return "";
  const matchers = Object.entries(labels as Record<string, unknown>)
    .filter((entry): entry is [string, string] => typeof entry[1] === "string")
    .map(([name, value]) => `${name}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`);
  return `${root.replace(/\/+$/, "")}/#/silences/new?filter=${encodeURIComponent(`{${matchers.join(",")}}`)}`;
}

const PREDICATES: Record<string, Helper> = {
  eq: ([a, b]) => looseEqual(a, b),
  ne: ([a, b]) => !looseEqual(a, b),
  and: (args) => args.length > 0 && args.every(isTruthy),
  or: (args) => args.some(isTruthy),
  not: ([value]) => !isTruthy(value),
  gt: ([a, b]) => compareNumbers(a, b, (x, y) => x > y),
  lt: ([a, b]) => compareNumbers(a, b, (x, y) => x < y),
};

const HELPERS: Record<string, Helper> = {
  [TEXT_HELPER]: ([value]) => asMarkdown(value),
  [CODE_TEXT_HELPER]: ([value, where]) =>
    literalInCode(isMarkdown(value) ? value.toHTML() : toText(value), where === "block"),
  markdown: ([value]) => markdown(toText(value)),
  json: ([value, indent]) => {
    const spaces = Math.min(8, Math.max(0, Math.floor(toNumber(indent) ?? 2)));
    return markdown(JSON.stringify(value, null, spaces) ?? "");
  },
  truncate,
  date,
  default: (args) => args.find((arg) => !isBlank(arg)) ?? "",
  len: ([value]) => length(value),
  join: ([value, separator]) =>
    Array.isArray(value)
      ? value.map(toText).join(typeof separator === "string" ? separator : ", ")
      : toText(value),
  lowercase: ([value]) => toText(value).toLowerCase(),
  uppercase: ([value]) => toText(value).toUpperCase(),
  first: ([value, count]) => slice(value, count, false),
  last: ([value, count]) => slice(value, count, true),
  short_sha: ([value]) => toText(value).slice(0, 7),
  first_line: ([value]) => toText(value).split(/\r?\n/, 1)[0] ?? "",
  pluralize,
  link,
  code: ([value]) => markdown(codeSpan(toText(value))),
  codeblock: ([value, language]) =>
    markdown(codeBlock(isMarkdown(value) ? value.toHTML() : toText(value), toText(language))),
  ref_name: ([value]) => toText(value).replace(/^refs\/(heads|tags)\//, ""),
  ref_type: ([value]) => {
    const ref = toText(value);
    if (ref.startsWith("refs/tags/")) return "tag";
    return ref.startsWith("refs/heads/") ? "branch" : "ref";
  },
  replace: ([value, find, replacement]) =>
    typeof find === "string" && find !== ""
      ? toText(value).replaceAll(find, toText(replacement))
      : toText(value),
  concat: (args) => args.map(toText).join(""),
  add: ([a, b]) => (toNumber(a) ?? 0) + (toNumber(b) ?? 0),
  sub: ([a, b]) => (toNumber(a) ?? 0) - (toNumber(b) ?? 0),
  duration: ([seconds]) => {
    const n = toNumber(seconds);
    return n === undefined ? "" : formatDuration(n);
  },
  typeof: ([value]) => {
    if (value === null) return "null";
    return Array.isArray(value) ? "array" : typeof value;
  },
  status_emoji: ([status]) => statusEmoji(status),
  color_square: ([colour]) => colourSquare(colour),
  slack_mrkdwn: ([text]) => markdown(slackToMarkdown(toText(text))),
  silence_url: silenceUrl,
};

/** What a render collects while the template runs. */
export interface RenderState {
  mentions: Set<string>;
}

/**
 * `{{mention "@alice:example.org" "Alice"}}`: a pill link to the user, and the user id added
 * to the event's `m.mentions` so exactly the users the template names are notified.
 */
function mention(state: RenderState): Helper {
  return ([userId, displayName]) => {
    const id = toText(userId).trim();
    if (!USER_ID.test(id) || id.length > MAX_USER_ID_LENGTH) return id;
    if (state.mentions.size < MAX_MENTIONS) state.mentions.add(id);
    const label = toText(displayName).trim() || id;
    const permalink = `https://matrix.to/#/${encodeURIComponent(id).replace(/%40/g, "@").replace(/%3A/gi, ":")}`;
    return markdown(markdownLink(escapeMarkdown(label), permalink));
  };
}

/** Adapts a Helper to handlebars' calling convention. */
function wrap(name: string, helper: Helper, predicate: boolean): Handlebars.HelperDelegate {
  return function (this: unknown, ...raw: unknown[]) {
    const options = raw.pop() as HelperOptions;
    const isBlock = typeof options.fn === "function";
    // `{{date}}` with no arguments means the payload's own `date` field, not the helper.
    if (raw.length === 0 && !isBlock) return options.lookupProperty?.(this, name);
    const result = helper(raw);
    if (!isBlock) return result;
    // Block form: `{{#eq a b}}…{{else}}…{{/eq}}`, or `{{#first commits}}…{{/first}}` with the result as context.
    if (!isTruthy(result)) return options.inverse(this);
    return options.fn(predicate ? this : result);
  };
}

/** Every helper name a template may use (handlebars' own `if`, `unless`, `each`, `with`, `lookup` too). */
export const HELPER_NAMES: readonly string[] = [
  ...Object.keys(PREDICATES),
  ...Object.keys(HELPERS).filter((name) => name !== TEXT_HELPER && name !== CODE_TEXT_HELPER),
  "mention",
];

/** Registers the static helpers on an isolated handlebars environment. */
export function registerHelpers(env: HandlebarsEnv): void {
  for (const [name, helper] of Object.entries(PREDICATES)) env.registerHelper(name, wrap(name, helper, true));
  for (const [name, helper] of Object.entries(HELPERS)) env.registerHelper(name, wrap(name, helper, false));
}

/** Helpers bound to one render (passed as a runtime option, so renders never share state). */
export function perRenderHelpers(state: RenderState): Record<string, Handlebars.HelperDelegate> {
  return { mention: wrap("mention", mention(state), false) };
}
