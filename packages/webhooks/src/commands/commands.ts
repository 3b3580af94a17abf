import type { Appservice, Logger, MatrixEvent } from "@trestle/appservice";
import type { FailedDelivery } from "../delivery/job.js";
import type { DirectMessenger } from "../dm.js";
import { HookError } from "../hooks/errors.js";
import type { HookManager } from "../hooks/hook-manager.js";
import type { HookRecord } from "../hooks/model.js";
import { type Renderer, toEventContent } from "../rendering/index.js";
import { codeBlock, codeSpan, escapeMarkdown, markdownLink, safeUrl } from "../rendering/markdown-text.js";
import { isBuiltinTemplateName } from "../templates/index.js";
import { helpText, shortHelp, usageLine } from "./help.js";
import {
  afterPrefix,
  COMMAND_NAMES,
  type CommandName,
  commandNamed,
  parseCommand,
  type WebhookCommand,
} from "./parse.js";
import { checkStatePower } from "./power.js";
import {
  avatarUrlProblem,
  displayNameProblem,
  mergeSender,
  normalizeTemplate,
  templateSummary,
} from "./settings.js";

export const DEFAULT_COMMAND_PREFIX = "!webhook";

/** The delivery queue's dead letters, as the `failed`, `retry` and `discard` commands use them. */
export interface DeadLetters {
  /** Every dead letter, oldest first; the commands keep the room's own. */
  list(): Promise<FailedDelivery[]>;
  /** Queues one again; false if it is not (or no longer) a dead letter. */
  retry(jobId: string): Promise<boolean>;
  /** Drops one for good; false if it is not (or no longer) a dead letter. */
  discard(jobId: string): Promise<boolean>;
}

/** Dead letters listed in one answer; the rest are counted. */
const FAILED_SHOWN = 20;

export interface WebhookCommandsOptions {
  appservice: Appservice;
  manager: HookManager;
  renderer: Renderer;
  dms: DirectMessenger;
  logger: Logger;
  /** What commands start with (default `!webhook`); matched case-insensitively. */
  commandPrefix?: string;
  /** Without it, `failed`, `retry` and `discard` answer that there is nothing to show. */
  deadLetters?: DeadLetters;
}

type Command<K extends WebhookCommand["kind"]> = Extract<WebhookCommand, { kind: K }>;

/** Commands that change a hook, and so need the power to send its state event. */
const MANAGING: ReadonlySet<WebhookCommand["kind"]> = new Set(
  COMMAND_NAMES.filter((name) => name !== "help" && name !== "list"),
);

const bold = (name: string) => `**${escapeMarkdown(name)}**`;

/**
 * `!webhook …` in a room: managing the room's hooks. Answers are notices from the bot,
 * replying to the command. Hook URLs and signing secrets only ever go to the commanding
 * user's DM room; the room hears that they were sent.
 */
export class WebhookCommands {
  readonly prefix: string;
  private readonly appservice: Appservice;
  private readonly manager: HookManager;
  private readonly renderer: Renderer;
  private readonly dms: DirectMessenger;
  private readonly logger: Logger;
  private readonly deadLetters: DeadLetters | undefined;

  constructor(options: WebhookCommandsOptions) {
    this.deadLetters = options.deadLetters;
    this.appservice = options.appservice;
    this.manager = options.manager;
    this.renderer = options.renderer;
    this.dms = options.dms;
    this.logger = options.logger;
    this.prefix = options.commandPrefix ?? DEFAULT_COMMAND_PREFIX;
  }

  /** Handles `event` when it is a command; resolves true then. Never rejects. */
  async handle(event: MatrixEvent): Promise<boolean> {
    const args = this.commandText(event);
    if (args === undefined) return false;
    const command = parseCommand(args);
    const where = {
      roomId: event.room_id,
      sender: event.sender,
      command: command.kind,
      hook: "name" in command ? command.name : undefined,
    };
    this.logger.info(where, "webhook command");
    try {
      await this.run(command, event);
    } catch (err) {
      if (err instanceof HookError) {
        await this.safeReply(event, escapeMarkdown(err.message, { keepParagraphs: true }), where);
        return true;
      }
      this.logger.error({ ...where, err }, "webhook command failed");
      await this.safeReply(event, "Something went wrong (see the bridge log).", where);
    }
    return true;
  }

  /**
   * The text after the prefix, or undefined when the event is no command: not a text message,
   * an edit, from the bridge's own users, or not starting with the prefix. A reply's quoted
   * fallback (older clients put it first in `body`) is skipped.
   */
  private commandText(event: MatrixEvent): string | undefined {
    if (event.type !== "m.room.message" || event.state_key !== undefined) return undefined;
    const content = event.content;
    if (content.msgtype !== "m.text" || typeof content.body !== "string") return undefined;
    const relation = content["m.relates_to"] as Record<string, unknown> | undefined;
    if (relation?.rel_type === "m.replace" || content["m.new_content"] !== undefined) return undefined;
    const namespaces = this.appservice.namespaces;
    if (namespaces.isBot(event.sender) || namespaces.isUserInNamespace(event.sender)) return undefined;
    let body = content.body;
    if (relation?.["m.in_reply_to"] !== undefined && body.startsWith("> ")) {
      body = body.replace(/^(?:>[^\n]*\n)+\n?/, "");
    }
    return afterPrefix(body, this.prefix);
  }

  private async run(command: WebhookCommand, event: MatrixEvent): Promise<void> {
    if (MANAGING.has(command.kind) && !isShowing(command)) {
      const check = await checkStatePower(this.appservice.botIntent, event.room_id, event.sender);
      if (!check.allowed) {
        await this.reply(
          event,
          `You need power level ${check.required} to manage webhooks in this room; yours is ${check.level}.`,
        );
        return;
      }
    }
    switch (command.kind) {
      case "help":
        return this.reply(event, helpText(this.prefix, helpTopic(command.topic)));
      case "unknown":
        return this.reply(event, `Unknown command ${codeSpan(command.word)}. ${shortHelp(this.prefix)}`);
      case "usage":
        return this.reply(
          event,
          `${escapeMarkdown(sentence(command.problem))} Usage: ${usageLine(command.command, this.prefix)}`,
        );
      case "list":
        return this.list(event);
      case "create":
        return this.create(event, command);
      case "remove":
        await this.manager.remove(event.room_id, command.name);
        return this.reply(event, `Removed webhook ${bold(command.name)}; its URL no longer works.`);
      case "rotate":
        return this.rotate(event, command);
      case "template":
        return this.template(event, command);
      case "sender":
        return this.sender(event, command);
      case "verify":
        return this.verify(event, command);
      case "options":
        return this.options(event, command);
      case "failed":
        return this.failed(event);
      case "retry":
      case "discard":
        return this.settleFailed(event, command);
    }
  }

  /** The room's dead letters: id, hook, when, and why. Never their content. */
  private async failed(event: MatrixEvent): Promise<void> {
    const failed = await this.roomFailed(event.room_id);
    if (failed.length === 0) {
      return this.reply(
        event,
        "Every message of this room's webhooks was delivered; none is waiting for you.",
      );
    }
    const names = new Map((await this.manager.list(event.room_id)).map((hook) => [hook.id, hook.name]));
    const lines = failed.slice(0, FAILED_SHOWN).map((job) => {
      const hook = names.get(job.hookId);
      const from = hook === undefined ? "a removed webhook" : bold(hook);
      const when = new Date(job.receivedAt).toISOString();
      return `- ${codeSpan(job.id)} from ${from}, received ${when}, ${job.failure.attempts} attempts: ${escapeMarkdown(job.failure.reason)}`;
    });
    if (failed.length > FAILED_SHOWN) lines.push(`- …and ${failed.length - FAILED_SHOWN} more`);
    return this.reply(
      event,
      [
        `Messages that could not be delivered (${failed.length}):`,
        "",
        ...lines,
        "",
        `${codeSpan(`${this.prefix} retry <id|all>`)} tries again; ${codeSpan(`${this.prefix} discard <id|all>`)} gives up for good.`,
      ].join("\n"),
    );
  }

  private async settleFailed(event: MatrixEvent, command: Command<"retry" | "discard">): Promise<void> {
    const failed = await this.roomFailed(event.room_id);
    const targets = command.id === "all" ? failed : failed.filter((job) => job.id === command.id);
    if (targets.length === 0) {
      const what = command.id === "all" ? "No message" : `No message ${codeSpan(command.id)}`;
      return this.reply(event, `${what} of this room's webhooks is waiting to be retried or discarded.`);
    }
    const act = (id: string) =>
      command.kind === "retry" ? this.deadLetters?.retry(id) : this.deadLetters?.discard(id);
    let done = 0;
    for (const job of targets) if (await act(job.id)) done++;
    const verb = command.kind === "retry" ? "Queued again" : "Discarded";
    const subject =
      command.id === "all" ? `${done} message${done === 1 ? "" : "s"}` : `message ${codeSpan(command.id)}`;
    if (done === 0)
      return this.reply(
        event,
        `Nothing changed: ${command.id === "all" ? "they were" : "it was"} settled meanwhile.`,
      );
    return this.reply(event, `${verb}: ${subject}.`);
  }

  private async roomFailed(roomId: string): Promise<FailedDelivery[]> {
    return ((await this.deadLetters?.list()) ?? []).filter((job) => job.roomId === roomId);
  }

  private async list(event: MatrixEvent): Promise<void> {
    const hooks = await this.manager.list(event.room_id);
    if (hooks.length === 0) {
      return this.reply(
        event,
        `There are no webhooks in this room yet. Create one with ${codeSpan(`${this.prefix} create <name>`)}.`,
      );
    }
    const lines = hooks.map((hook) => `- ${this.describe(hook)}`);
    return this.reply(event, [`Webhooks in this room (${hooks.length}):`, "", ...lines].join("\n"));
  }

  /** One hook in a line: never its URL, id or secrets. */
  private describe(hook: HookRecord): string {
    const parts = [`template ${codeSpan(templateSummary(hook.template))}`, hook.msgtype];
    if (hook.sender.displayName) parts.push(`as “${escapeMarkdown(hook.sender.displayName)}”`);
    if (hook.signature) parts.push(`signature: ${hook.signature.scheme}`);
    const creator =
      hook.createdBy === this.appservice.botUserId ? "the provisioning API" : escapeMarkdown(hook.createdBy);
    parts.push(`created by ${creator}`);
    return `${bold(hook.name)}: ${parts.join(", ")}`;
  }

  private async create(event: MatrixEvent, command: Command<"create">): Promise<void> {
    const settings = command.template === undefined ? {} : { template: normalizeTemplate(command.template) };
    const { record, url } = await this.manager.create(event.room_id, command.name, event.sender, settings);
    const sent = await this.sendSecret(event, record.name, this.urlMessage(event.room_id, record.name, url));
    const hint =
      record.template === "generic"
        ? ` Messages use the ${codeSpan("generic")} template; pick another with ${codeSpan(`${this.prefix} template ${record.name} <template>`)}.`
        : ` Messages use the ${codeSpan(templateSummary(record.template))} template.`;
    if (sent) {
      return this.reply(
        event,
        `Created webhook ${bold(record.name)}. I've sent you its URL in a direct message.${hint}`,
      );
    }
    return this.reply(
      event,
      `Created webhook ${bold(record.name)}, but I couldn't send you its URL in a direct message. ${this.dmTrouble(`rotate ${record.name}`)}`,
    );
  }

  private async rotate(event: MatrixEvent, command: Command<"rotate">): Promise<void> {
    const { record, url } = await this.manager.rotate(event.room_id, command.name);
    const sent = await this.sendSecret(event, record.name, this.urlMessage(event.room_id, record.name, url));
    const done = `Webhook ${bold(record.name)} has a new URL; the old one no longer works.`;
    return this.reply(
      event,
      sent
        ? `${done} I've sent you the new URL in a direct message.`
        : `${done} I couldn't send it to you in a direct message. ${this.dmTrouble(`rotate ${record.name}`)}`,
    );
  }

  private async template(event: MatrixEvent, command: Command<"template">): Promise<void> {
    if (command.template === undefined) {
      const { template } = await this.manager.get(event.room_id, command.name);
      return this.reply(
        event,
        isBuiltinTemplateName(template)
          ? `${bold(command.name)} uses the built-in template ${codeSpan(template)}.`
          : `${bold(command.name)} uses this template:\n\n${codeBlock(template, "handlebars")}`,
      );
    }
    const updated = await this.manager.update(event.room_id, command.name, {
      template: normalizeTemplate(command.template),
    });
    return this.reply(
      event,
      isBuiltinTemplateName(updated.template)
        ? `${bold(updated.name)} now uses the built-in template ${codeSpan(updated.template)}.`
        : `${bold(updated.name)} now uses your template.`,
    );
  }

  private async sender(event: MatrixEvent, command: Command<"sender">): Promise<void> {
    const problem =
      (command.displayName === undefined ? undefined : displayNameProblem(command.displayName)) ??
      (command.avatarUrl === undefined ? undefined : avatarUrlProblem(command.avatarUrl));
    if (problem) return this.reply(event, escapeMarkdown(sentence(problem)));
    const record = await this.manager.get(event.room_id, command.name);
    const sender = command.reset
      ? {}
      : mergeSender(record.sender, { displayName: command.displayName, avatarUrl: command.avatarUrl });
    const updated = await this.manager.update(event.room_id, command.name, { sender });
    if (!updated.sender.displayName && !updated.sender.avatarUrl) {
      return this.reply(event, `Messages from ${bold(updated.name)} come from the default sender again.`);
    }
    const who = updated.sender.displayName
      ? `“${escapeMarkdown(updated.sender.displayName)}”`
      : "the default name";
    const avatar = updated.sender.avatarUrl ? ` with the avatar ${codeSpan(updated.sender.avatarUrl)}` : "";
    return this.reply(event, `Messages from ${bold(updated.name)} now come from ${who}${avatar}.`);
  }

  private async verify(event: MatrixEvent, command: Command<"verify">): Promise<void> {
    const secret = await this.manager.setSignature(event.room_id, command.name, command.scheme);
    if (command.scheme === null) {
      return this.reply(event, `Signature checks are off for ${bold(command.name)}.`);
    }
    if (secret === undefined) throw new Error("setSignature returned no signing secret");
    const field = command.scheme === "gitlab" ? "Secret token" : "Secret";
    const message = [
      `The signing secret of webhook ${bold(command.name)} in ${this.roomLink(event.room_id)} (${command.scheme}):`,
      "",
      escapeMarkdown(secret),
      "",
      `Put it into the *${field}* field of the ${command.scheme} webhook settings. Requests without a valid signature are refused from now on.`,
    ].join("\n");
    const sent = await this.sendSecret(event, command.name, message);
    const done = `Signature checks (${command.scheme}) are on for ${bold(command.name)}: requests without a valid signature are refused.`;
    return this.reply(
      event,
      sent
        ? `${done} I've sent you the signing secret in a direct message.`
        : `${done} I couldn't send you the signing secret in a direct message. ${this.dmTrouble(`verify ${command.name} ${command.scheme}`)}`,
    );
  }

  private async options(event: MatrixEvent, command: Command<"options">): Promise<void> {
    if (isShowing(command)) {
      const record = await this.manager.get(event.room_id, command.name);
      return this.reply(event, `Options of ${bold(record.name)}: ${optionSummary(record)}`);
    }
    const updated = await this.manager.update(event.room_id, command.name, command.patch);
    return this.reply(event, `Updated ${bold(updated.name)}: ${optionSummary(updated)}`);
  }

  private roomLink(roomId: string): string {
    const url = safeUrl(`https://matrix.to/#/${encodeURIComponent(roomId)}`);
    return url ? markdownLink(escapeMarkdown(roomId), url) : escapeMarkdown(roomId);
  }

  private urlMessage(roomId: string, name: string, url: string): string {
    return [
      `The URL of webhook ${bold(name)} in ${this.roomLink(roomId)}:`,
      "",
      escapeMarkdown(url),
      "",
      `Anyone who has it can post into the room, so keep it secret. If it leaks, send ${codeSpan(`${this.prefix} rotate ${name}`)} in the room for a new one.`,
    ].join("\n");
  }

  private dmTrouble(retry: string): string {
    return `Check that you accept my invitations, then send ${codeSpan(`${this.prefix} ${retry}`)} to try again.`;
  }

  /** Sends a secret to the commanding user only; false (logged without the secret) when it fails. */
  private async sendSecret(event: MatrixEvent, hook: string, markdown: string): Promise<boolean> {
    try {
      await this.dms.send(event.sender, markdown);
      return true;
    } catch (err) {
      this.logger.warn(
        { roomId: event.room_id, sender: event.sender, hook, err: String(err) },
        "could not send a webhook secret by direct message",
      );
      return false;
    }
  }

  private async reply(event: MatrixEvent, markdown: string): Promise<void> {
    const rendered = this.renderer.fromMarkdown(markdown, { msgtype: "m.notice", mentions: [event.sender] });
    await this.appservice.botIntent.sendMessage(event.room_id, {
      ...toEventContent(rendered),
      "m.relates_to": replyRelation(event),
    });
  }

  private async safeReply(event: MatrixEvent, markdown: string, where: object): Promise<void> {
    try {
      await this.reply(event, markdown);
    } catch (err) {
      this.logger.error({ ...where, err }, "could not answer a webhook command");
    }
  }
}

/** Ends with a full stop unless it already ends a sentence. */
function sentence(text: string): string {
  return /[.?!]$/.test(text) ? text : `${text}.`;
}

/** `template <name>` and `options <name>` without more only show settings: open to anyone. */
function isShowing(command: WebhookCommand): boolean {
  return (
    (command.kind === "template" && command.template === undefined) ||
    (command.kind === "options" && Object.keys(command.patch).length === 0)
  );
}

function helpTopic(topic: string | undefined): CommandName | undefined {
  return topic === undefined ? undefined : commandNamed(topic);
}

function optionSummary(hook: HookRecord): string {
  const onOff = (value: boolean) => (value ? "on" : "off");
  const rate = hook.rateLimit ? `${hook.rateLimit.perMinute}/${hook.rateLimit.burst}` : "default";
  return [
    `msgtype=${hook.msgtype}`,
    `get=${onOff(hook.allowGet)}`,
    `wait=${onOff(hook.wait)}`,
    `override=${onOff(hook.allowSenderOverride)}`,
    `ratelimit=${rate}`,
  ]
    .map((option) => codeSpan(option))
    .join(", ");
}

/** A reply to `event`, staying in its thread when it was sent in one. */
function replyRelation(event: MatrixEvent): Record<string, unknown> {
  const inReplyTo = { event_id: event.event_id };
  const relation = event.content["m.relates_to"] as Record<string, unknown> | undefined;
  if (relation?.rel_type === "m.thread" && typeof relation.event_id === "string") {
    return {
      rel_type: "m.thread",
      event_id: relation.event_id,
      is_falling_back: false,
      "m.in_reply_to": inReplyTo,
    };
  }
  return { "m.in_reply_to": inReplyTo };
}
