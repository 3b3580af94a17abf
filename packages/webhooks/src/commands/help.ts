import { BUILTIN_TEMPLATE_NAMES, builtinTemplates } from "../templates/index.js";
import { COMMAND_NAMES, type CommandName } from "./parse.js";
import { SIGNATURE_SCHEMES } from "./settings.js";

/** One line of usage per command, `{p}` standing for the prefix. Markdown. */
const USAGE: Readonly<Record<CommandName, string>> = {
  create: "`{p} create <name> [template]` — a new webhook; I send you its URL in a direct message",
  list: "`{p} list` — the webhooks in this room",
  remove: "`{p} remove <name>` — delete a webhook; its URL stops working",
  rotate: "`{p} rotate <name>` — a new URL (sent by direct message); the old one stops working at once",
  template: "`{p} template <name> <built-in | handlebars…>` — how its messages look (no template: show it)",
  sender:
    "`{p} sender <name> <display name…> [mxc://avatar]` — who its messages come from; `off` for the default",
  verify: `\`{p} verify <name> <${SIGNATURE_SCHEMES.join("|")}|off>\` — also check the sender's signature; I send you the signing secret in a direct message`,
  options:
    "`{p} options <name> [key=value…]` — `msgtype=m.text|m.notice`, `get=on|off`, `wait=on|off`, `override=on|off`, `ratelimit=<per minute>/<burst>|default` (no options: show them)",
  failed: "`{p} failed` — messages of this room's webhooks that could not be delivered",
  retry: "`{p} retry <id|all>` — try such a message again, behind the room's queued ones",
  discard: "`{p} discard <id|all>` — give such a message up for good",
  help: "`{p} help [command]` — this text",
};

const withPrefix = (line: string, prefix: string) => line.replaceAll("{p}", prefix);

export function usageLine(command: CommandName, prefix: string): string {
  return withPrefix(USAGE[command], prefix);
}

/** Details beyond the usage line, for `help <command>`. */
const DETAILS: Partial<Record<CommandName, () => string>> = {
  template: () =>
    [
      "Built-in templates:",
      ...BUILTIN_TEMPLATE_NAMES.map((name) => `- \`${name}\` — ${builtinTemplates[name].description}`),
      "",
      "Anything else is an inline handlebars template producing Markdown, e.g. `**{{title}}**: {{text}}`. It may span several lines or be pasted as a code block.",
    ].join("\n"),
  options: () =>
    [
      "- `msgtype`: `m.notice` (default; other bots ignore it) or `m.text`",
      "- `get`: accept GET requests, the query string being the payload (off by default: URLs leak through logs and link previews)",
      "- `wait`: answer each request only once its message is in the room",
      "- `override`: let a Slack-style payload's `username`/`icon_url` set the sender per message",
      "- `ratelimit`: requests a minute and burst size for this webhook, or `default`",
    ].join("\n"),
  verify: () =>
    "Put the signing secret I send you into the webhook settings of the sending service (GitHub, Gitea, Forgejo: *Secret*; GitLab: *Secret token*). Requests without a valid signature are then refused. `off` turns the check off.",
};

/** The full help, or one command's when `topic` names one. Markdown. */
export function helpText(prefix: string, topic?: CommandName): string {
  if (topic) {
    const details = DETAILS[topic]?.();
    return details ? `${usageLine(topic, prefix)}\n\n${details}` : usageLine(topic, prefix);
  }
  return [
    "**Webhooks**: services post to a secret URL, and their messages appear in this room.",
    "",
    ...COMMAND_NAMES.map((command) => `- ${usageLine(command, prefix)}`),
    "",
    `Built-in templates: ${BUILTIN_TEMPLATE_NAMES.map((n) => `\`${n}\``).join(", ")}. Changing webhooks needs the power level to change room settings (to send \`org.trestle.webhook\` state events); anyone may list them.`,
  ].join("\n");
}

/** For an unknown command: what there is, in one line. */
export function shortHelp(prefix: string): string {
  return `Commands: ${COMMAND_NAMES.map((c) => `\`${c}\``).join(", ")}. Send \`${prefix} help\` for details.`;
}
