import type { HookMsgtype, HookSettings } from "../hooks/model.js";
import type { SignatureScheme } from "../ingress/signatures.js";
import { isSignatureScheme, SIGNATURE_SCHEMES } from "./settings.js";

/** One word of a command line. `start`/`end` index the text it was read from. */
export interface CommandToken {
  value: string;
  /** Written in quotes: `"off"` is a name, `off` a keyword. */
  quoted: boolean;
  start: number;
  end: number;
}

export class CommandSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandSyntaxError";
  }
}

/** Opening quote → the characters that may close it (phones type curly quotes). */
const QUOTES: Readonly<Record<string, string>> = {
  '"': '"',
  "'": "'",
  "\u201c": "\u201d\u201c",
  "\u2018": "\u2019\u2018",
  "\u201e": "\u201c\u201d",
  "\u00ab": "\u00bb",
};

const isSpace = (char: string | undefined): boolean => char !== undefined && /\s/u.test(char);

/**
 * Splits a command line into words. Whitespace of any kind and amount separates words; a word
 * that starts with a quote runs to the matching quote that is followed by whitespace or the end,
 * so apostrophes inside words (`Bob's builds`) need no quoting and `'Bob's builds'` also works.
 * Inside quotes a backslash escapes the quote character and itself. Reading stops after `limit`
 * words, so the rest may be free text.
 */
export function tokenize(text: string, limit = Number.POSITIVE_INFINITY): CommandToken[] {
  const tokens: CommandToken[] = [];
  let i = 0;
  while (i < text.length && tokens.length < limit) {
    while (isSpace(text[i])) i++;
    if (i >= text.length) break;
    const start = i;
    const open = text[i]!;
    const closers = QUOTES[open];
    if (closers !== undefined) {
      let value = "";
      i++;
      for (;;) {
        if (i >= text.length) throw new CommandSyntaxError(`A quote (${open}) is not closed`);
        const char = text[i]!;
        const next = text[i + 1];
        if (char === "\\" && next !== undefined && (next === "\\" || closers.includes(next))) {
          value += next;
          i += 2;
        } else if (closers.includes(char) && (next === undefined || isSpace(next))) {
          i++;
          break;
        } else {
          value += char;
          i++;
        }
      }
      tokens.push({ value, quoted: true, start, end: i });
    } else {
      while (i < text.length && !isSpace(text[i])) i++;
      tokens.push({ value: text.slice(start, i), quoted: false, start, end: i });
    }
  }
  return tokens;
}

export type OptionsPatch = Partial<
  Pick<HookSettings, "msgtype" | "allowGet" | "wait" | "allowSenderOverride" | "rateLimit">
>;

export type WebhookCommand =
  | { kind: "help"; topic?: string }
  | { kind: "list" }
  | { kind: "create"; name: string; template?: string }
  | { kind: "remove"; name: string }
  | { kind: "rotate"; name: string }
  /** Without `template`: show the current one. */
  | { kind: "template"; name: string; template?: string }
  /** `reset`: back to the bridge's default identity. */
  | { kind: "sender"; name: string; displayName?: string; avatarUrl?: string; reset: boolean }
  | { kind: "verify"; name: string; scheme: SignatureScheme | null }
  /** An empty patch: show the current options. */
  | { kind: "options"; name: string; patch: OptionsPatch }
  | { kind: "failed" }
  | { kind: "retry"; id: string }
  | { kind: "discard"; id: string }
  | { kind: "unknown"; word: string }
  /** The subcommand is known but its arguments are not right. */
  | { kind: "usage"; command: CommandName; problem: string };

export type CommandName = Exclude<WebhookCommand["kind"], "unknown" | "usage">;

/** Every command, in the order help lists them. */
export const COMMAND_NAMES: readonly CommandName[] = [
  "create",
  "list",
  "remove",
  "rotate",
  "template",
  "sender",
  "verify",
  "options",
  "failed",
  "retry",
  "discard",
  "help",
];

const ALIASES: Readonly<Record<string, CommandName>> = {
  help: "help",
  "?": "help",
  list: "list",
  ls: "list",
  create: "create",
  add: "create",
  new: "create",
  remove: "remove",
  delete: "remove",
  rm: "remove",
  rotate: "rotate",
  template: "template",
  sender: "sender",
  verify: "verify",
  signature: "verify",
  options: "options",
  option: "options",
  set: "options",
  failed: "failed",
  undelivered: "failed",
  retry: "retry",
  discard: "discard",
};

/** The command a word names (its name or an alias, any case), if any. */
export function commandNamed(word: string): CommandName | undefined {
  const lower = word.toLowerCase();
  return Object.hasOwn(ALIASES, lower) ? ALIASES[lower] : undefined;
}

/**
 * The text after the command prefix, or undefined when `body` is not a command: it must start
 * with the prefix (any case) followed by whitespace or nothing, so `!webhooks` is not one.
 */
export function afterPrefix(body: string, prefix: string): string | undefined {
  const text = body.replace(/^\s+/, "");
  if (text.slice(0, prefix.length).toLowerCase() !== prefix.toLowerCase()) return undefined;
  const rest = text.slice(prefix.length);
  if (rest !== "" && !isSpace(rest[0])) return undefined;
  return rest;
}

/** Parses the text after the prefix into a command; never throws. */
export function parseCommand(args: string): WebhookCommand {
  let first: CommandToken | undefined;
  try {
    first = tokenize(args, 1)[0];
  } catch {
    return { kind: "help" };
  }
  if (!first) return { kind: "help" };
  const command = first.quoted ? undefined : commandNamed(first.value);
  if (!command) return { kind: "unknown", word: first.value };
  let rest: CommandToken[];
  try {
    // A template is the raw rest of the message: its quotes are its own business.
    rest = tokenize(args, command === "template" ? 2 : Number.POSITIVE_INFINITY).slice(1);
  } catch (err) {
    return { kind: "usage", command, problem: (err as Error).message };
  }
  const usage = (problem: string): WebhookCommand => ({ kind: "usage", command, problem });

  switch (command) {
    case "help": {
      const topic = rest[0]?.value.toLowerCase();
      return topic === undefined ? { kind: "help" } : { kind: "help", topic };
    }
    case "list":
      return { kind: "list" };
    case "remove":
    case "rotate": {
      if (rest.length !== 1) return usage(rest.length === 0 ? "Which webhook?" : "Give just the name");
      return { kind: command, name: rest[0]!.value };
    }
    case "create": {
      if (rest.length === 0) return usage("Give the new webhook a name");
      if (rest.length > 2) return usage("Give a name and, optionally, a built-in template");
      const template = rest[1]?.value;
      return template === undefined
        ? { kind: "create", name: rest[0]!.value }
        : { kind: "create", name: rest[0]!.value, template };
    }
    case "template": {
      const name = rest[0];
      if (!name) return usage("Which webhook?");
      const template = templateArgument(args.slice(name.end));
      return template === ""
        ? { kind: "template", name: name.value }
        : { kind: "template", name: name.value, template };
    }
    case "sender":
      return parseSender(rest, usage);
    case "verify": {
      if (rest.length !== 2) return usage("Give the webhook's name and a scheme");
      const scheme = rest[1]!.value.toLowerCase();
      if (scheme === "off" || scheme === "none")
        return { kind: "verify", name: rest[0]!.value, scheme: null };
      if (!isSignatureScheme(scheme)) {
        return usage(`"${rest[1]!.value}" is not a scheme: use ${SIGNATURE_SCHEMES.join(", ")} or off`);
      }
      return { kind: "verify", name: rest[0]!.value, scheme };
    }
    case "failed":
      return { kind: "failed" };
    case "retry":
    case "discard": {
      if (rest.length !== 1)
        return usage(rest.length === 0 ? "Which message? Give its id, or all" : "Give one id, or all");
      const id = rest[0]!.value;
      return { kind: command, id: id.toLowerCase() === "all" ? "all" : id };
    }
    case "options": {
      const name = rest[0];
      if (!name) return usage("Which webhook?");
      try {
        return { kind: "options", name: name.value, patch: parseOptions(rest.slice(1)) };
      } catch (err) {
        if (err instanceof CommandSyntaxError) return usage(err.message);
        throw err;
      }
    }
  }
}

/**
 * The rest of the message after the hook's name, newlines included. A template pasted as a
 * fenced code block (as clients make it easy to) is taken out of its fence.
 */
function templateArgument(text: string): string {
  const trimmed = text.trim();
  const fenced = /^(`{3,}|~{3,})[^\n`]*\n([\s\S]*?)\n?\1[ \t]*$/.exec(trimmed);
  return fenced ? fenced[2]!.trim() : trimmed;
}

function parseSender(rest: CommandToken[], usage: (problem: string) => WebhookCommand): WebhookCommand {
  const [name, ...words] = rest;
  if (!name) return usage("Which webhook?");
  if (words.length === 0) return usage("Give a display name, an mxc:// avatar, or both (or off)");
  if (words.length === 1 && !words[0]!.quoted && /^(off|reset|default)$/i.test(words[0]!.value)) {
    return { kind: "sender", name: name.value, reset: true };
  }
  const last = words[words.length - 1]!;
  const isUri = !last.quoted && /^[a-z][a-z0-9+.-]*:\/\//i.test(last.value);
  if (isUri && !/^mxc:\/\//i.test(last.value)) {
    return usage("The avatar must be an mxc:// URI: upload the image to Matrix first");
  }
  const avatarUrl = isUri ? last.value : undefined;
  const nameWords = avatarUrl === undefined ? words : words.slice(0, -1);
  const command: WebhookCommand = { kind: "sender", name: name.value, reset: false };
  if (nameWords.length > 0) command.displayName = nameWords.map((w) => w.value).join(" ");
  if (avatarUrl !== undefined) command.avatarUrl = avatarUrl;
  return command;
}

export const OPTION_KEYS = ["msgtype", "get", "wait", "override", "ratelimit"] as const;

const ON = new Set(["on", "true", "yes", "1", "enabled", "enable"]);
const OFF = new Set(["off", "false", "no", "0", "disabled", "disable"]);

function parseSwitch(key: string, value: string): boolean {
  const lower = value.toLowerCase();
  if (ON.has(lower)) return true;
  if (OFF.has(lower)) return false;
  throw new CommandSyntaxError(`${key} must be on or off, not "${value}"`);
}

function parseMsgtype(value: string): HookMsgtype {
  const lower = value.toLowerCase();
  if (lower === "m.text" || lower === "text") return "m.text";
  if (lower === "m.notice" || lower === "notice") return "m.notice";
  throw new CommandSyntaxError(`msgtype must be m.text or m.notice, not "${value}"`);
}

/** `30/10` = 30 a minute, bursts of 10; `30` = 30 a minute, bursts of 30; `default`. */
function parseRateLimit(value: string): HookSettings["rateLimit"] {
  if (value.toLowerCase() === "default") return undefined;
  const match = /^(\d+(?:\.\d+)?)(?:\/(\d+))?$/.exec(value);
  const perMinute = match ? Number(match[1]) : Number.NaN;
  const burst = match?.[2] === undefined ? Math.max(1, Math.ceil(perMinute)) : Number(match[2]);
  if (!(perMinute > 0) || !(burst >= 1)) {
    throw new CommandSyntaxError(`ratelimit is <per minute>/<burst> (e.g. 30/10) or default, not "${value}"`);
  }
  return { perMinute, burst };
}

/** `key=value` words into a settings patch; an unknown key, a bad value or a repeat is an error. */
export function parseOptions(words: readonly CommandToken[]): OptionsPatch {
  const patch: OptionsPatch = {};
  const seen = new Set<string>();
  for (const word of words) {
    const eq = word.value.indexOf("=");
    if (eq <= 0) throw new CommandSyntaxError(`"${word.value}" is not key=value`);
    const key = word.value.slice(0, eq).toLowerCase();
    const value = word.value.slice(eq + 1);
    if (seen.has(key)) throw new CommandSyntaxError(`${key} is given twice`);
    seen.add(key);
    switch (key) {
      case "msgtype":
        patch.msgtype = parseMsgtype(value);
        break;
      case "get":
        patch.allowGet = parseSwitch(key, value);
        break;
      case "wait":
        patch.wait = parseSwitch(key, value);
        break;
      case "override":
        patch.allowSenderOverride = parseSwitch(key, value);
        break;
      case "ratelimit":
        patch.rateLimit = parseRateLimit(value);
        break;
      default:
        throw new CommandSyntaxError(`Unknown option "${key}": the options are ${OPTION_KEYS.join(", ")}`);
    }
  }
  return patch;
}
