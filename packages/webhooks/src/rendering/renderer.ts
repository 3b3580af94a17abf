import type { Logger } from "@trestle/appservice";
import Handlebars from "handlebars";
import type { MarkdownIt } from "markdown-it";
import { builtinTemplates, isBuiltinTemplateName, resolveTemplate } from "../templates/registry.js";
import { compileTemplate, RUNTIME_OPTIONS } from "./compile.js";
import { compileErrorFrom, runtimeErrorFrom, TemplateError } from "./errors.js";
import { normalizeHeaders } from "./headers.js";
import { perRenderHelpers, type RenderState, registerHelpers } from "./helpers.js";
import { createMarkdown, sanitizeMatrixHtml, unwrapSingleParagraph } from "./html.js";
import { fitMessage, jsonBytes } from "./limits.js";
import { tokensToPlainText } from "./plain-text.js";
import type {
  BuiltinTemplate,
  MessageEventContent,
  Msgtype,
  RenderContext,
  RenderedMessage,
  SenderHint,
  WebhookHeaders,
} from "./types.js";

/** Room for `body` + `formatted_body`: the rest of the 65,536-byte event keeps ~5 KB of headroom. */
export const DEFAULT_MAX_BODY_BYTES = 60_000;
/** Templates arrive in a chat command and are stored in room state: keep them small. */
export const DEFAULT_MAX_TEMPLATE_BYTES = 16_384;
const MIN_BODY_BYTES = 1_024;
const INLINE_CACHE_SIZE = 128;
const LAST_RESORT = "Received a webhook, but it could not be displayed.";

export interface RendererOptions {
  logger: Logger;
  /** Budget for `body` and `formatted_body` together, in bytes of event JSON. */
  maxBodyBytes?: number;
  maxTemplateBytes?: number;
}

export interface FromMarkdownOptions {
  msgtype?: Msgtype | undefined;
  mentions?: readonly string[] | undefined;
  sender?: SenderHint | undefined;
}

export interface FallbackResult {
  content: RenderedMessage;
  /** Set when the chosen template failed and the generic fallback was rendered instead: tell the room's admins. */
  error?: TemplateError;
  /** The template that produced `content`: its name, "generic" after a fallback. */
  template: string;
}

/** A template compiled by a Renderer; pass it back to that Renderer's `render`. */
export class CompiledTemplate {
  /** A built-in name, or "inline". */
  readonly name: string;
  /** The event kinds it has a template for (`default` for inline templates). */
  readonly variants: readonly string[];

  constructor(name: string, variants: readonly string[]) {
    this.name = name;
    this.variants = variants;
  }
}

interface Compiled {
  variants: ReadonlyMap<string, Handlebars.TemplateDelegate>;
  detect?: ((headers: WebhookHeaders, payload: unknown) => string) | undefined;
  sender?: ((payload: unknown) => SenderHint | undefined) | undefined;
}

/**
 * Turns webhook payloads into Matrix messages through handlebars templates.
 *
 * Each Renderer owns an isolated handlebars environment (`Handlebars.create()`) with Trestle's
 * helpers; nothing is registered globally. A template's output is Markdown, rendered with
 * markdown-it (raw HTML off) and sanitised to Matrix's HTML allow-list.
 */
export class Renderer {
  readonly maxBodyBytes: number;
  readonly maxTemplateBytes: number;
  readonly #logger: Logger;
  readonly #env: typeof Handlebars;
  readonly #markdown: MarkdownIt;
  readonly #compiled = new WeakMap<CompiledTemplate, Compiled>();
  readonly #builtins = new Map<string, CompiledTemplate>();
  readonly #inline = new Map<string, CompiledTemplate | TemplateError>();

  constructor(options: RendererOptions) {
    this.#logger = options.logger;
    this.maxBodyBytes = Math.max(MIN_BODY_BYTES, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    this.maxTemplateBytes = options.maxTemplateBytes ?? DEFAULT_MAX_TEMPLATE_BYTES;
    this.#env = Handlebars.create();
    this.#env.unregisterHelper("log");
    registerHelpers(this.#env);
    this.#markdown = createMarkdown();
  }

  /** Compiles a room admin's template. Throws TemplateError naming the problem (and line). */
  compile(source: string, name = "inline"): CompiledTemplate {
    const bytes = Buffer.byteLength(source, "utf8");
    if (bytes > this.maxTemplateBytes) {
      throw new TemplateError(
        "too-large",
        `the template is ${bytes} bytes; the limit is ${this.maxTemplateBytes}`,
        {
          template: name,
        },
      );
    }
    if (source.trim() === "") throw new TemplateError("syntax", "the template is empty", { template: name });
    return this.#register(name, {
      variants: new Map([["default", compileTemplate(this.#env, source, name)]]),
    });
  }

  /** A built-in template, compiled once per Renderer. Throws TemplateError for an unknown name. */
  builtin(name: string): CompiledTemplate {
    const cached = this.#builtins.get(name);
    if (cached) return cached;
    if (!isBuiltinTemplateName(name)) {
      throw new TemplateError("unknown-builtin", `there is no built-in template "${name}"`, {
        template: name,
      });
    }
    const definition: BuiltinTemplate = builtinTemplates[name];
    const variants = new Map<string, Handlebars.TemplateDelegate>();
    for (const [variant, source] of Object.entries(definition.sources)) {
      variants.set(variant, compileTemplate(this.#env, source, `${name}/${variant}`));
    }
    const compiled = this.#register(name, {
      variants,
      detect: definition.detect?.bind(definition),
      sender: definition.sender?.bind(definition),
    });
    this.#builtins.set(name, compiled);
    return compiled;
  }

  /** `!webhook template <name or inline handlebars>`: a built-in by name, or the text compiled. */
  resolve(nameOrInline: string): CompiledTemplate {
    const ref = resolveTemplate(nameOrInline);
    return ref.kind === "builtin" ? this.builtin(ref.name) : this.compile(ref.source);
  }

  /** Renders a payload. Throws TemplateError when the template fails at run time; never for size. */
  render(template: CompiledTemplate, payload: unknown, context: RenderContext = {}): RenderedMessage {
    const compiled = this.#compiled.get(template);
    if (!compiled) throw new TypeError("render() needs a template compiled by this Renderer");
    const headers = normalizeHeaders(context.headers);
    const state: RenderState = { mentions: new Set() };
    let markdown: string;
    let sender: SenderHint | undefined;
    try {
      const variant = compiled.detect?.(headers, payload) ?? "default";
      const run = compiled.variants.get(variant) ?? compiled.variants.get("default");
      if (!run) throw new Error(`no template for "${variant}"`);
      const hook: Record<string, string> = Object.assign(Object.create(null), context.hook);
      markdown = run(payload, {
        ...RUNTIME_OPTIONS,
        data: { headers, hook, event: variant },
        helpers: perRenderHelpers(state),
      });
      sender = compiled.sender?.(payload);
    } catch (error) {
      throw runtimeErrorFrom(error, template.name);
    }
    return this.fromMarkdown(markdown, { msgtype: context.msgtype, mentions: [...state.mentions], sender });
  }

  /**
   * Renders with `template` (compiled, or a built-in name / inline source) and falls back to the
   * generic template when it fails to compile or throws. Never throws: a template error must not
   * drop the webhook. `error` says what failed, for a notice to the room's admins.
   */
  renderWithFallback(
    template: CompiledTemplate | string,
    payload: unknown,
    context: RenderContext = {},
  ): FallbackResult {
    let error: TemplateError;
    try {
      const compiled = typeof template === "string" ? this.#resolveCached(template) : template;
      try {
        return { content: this.render(compiled, payload, context), template: compiled.name };
      } catch (renderError) {
        error = runtimeErrorFrom(renderError, compiled.name);
      }
    } catch (compileError) {
      error = compileErrorFrom(compileError, "inline");
    }
    this.#logger.warn(
      { template: error.template, kind: error.kind, line: error.line, problem: error.problem },
      "webhook template failed; sending the generic rendering instead",
    );
    try {
      return { content: this.render(this.builtin("generic"), payload, context), error, template: "generic" };
    } catch (fallbackError) {
      this.#logger.error({ err: fallbackError }, "the generic webhook template failed");
      return {
        content: this.fromMarkdown(LAST_RESORT, { msgtype: context.msgtype }),
        error,
        template: "none",
      };
    }
  }

  /** Markdown → a Matrix message: sanitised HTML, plain body, both within the size budget. */
  fromMarkdown(markdown: string, options: FromMarkdownOptions = {}): RenderedMessage {
    const mentions = { user_ids: [...(options.mentions ?? [])] };
    const budget = Math.max(MIN_BODY_BYTES / 2, this.maxBodyBytes - jsonBytes(JSON.stringify(mentions)));
    let source = markdown.replace(/\r\n?/g, "\n");
    // Past a few times the budget, the rest would be cut anyway: don't make markdown-it parse it.
    let dropped = 0;
    if (source.length > budget * 4) {
      dropped = Buffer.byteLength(source.slice(budget * 4), "utf8");
      source = source.slice(0, budget * 4);
    }
    const tokens = this.#markdown.parse(source, {});
    const html = unwrapSingleParagraph(
      sanitizeMatrixHtml(this.#markdown.renderer.render(tokens, this.#markdown.options, {})),
    );
    const fitted = fitMessage(tokensToPlainText(tokens), html, budget, sanitizeMatrixHtml, dropped);
    const message: RenderedMessage = {
      msgtype: options.msgtype ?? "m.notice",
      body: fitted.body,
      format: "org.matrix.custom.html",
      formatted_body: fitted.html,
      mentions,
      empty: source.trim() === "",
      truncated: fitted.bytesOver > 0,
    };
    if (options.sender) message.sender = options.sender;
    return message;
  }

  #register(name: string, compiled: Compiled): CompiledTemplate {
    const template = new CompiledTemplate(name, [...compiled.variants.keys()]);
    this.#compiled.set(template, compiled);
    return template;
  }

  /** Inline sources and their compile errors are remembered, so a broken template is not recompiled per webhook. */
  #resolveCached(nameOrInline: string): CompiledTemplate {
    let entry = this.#inline.get(nameOrInline);
    if (!entry) {
      try {
        entry = this.resolve(nameOrInline);
      } catch (error) {
        entry = compileErrorFrom(error, "inline");
      }
      if (this.#inline.size >= INLINE_CACHE_SIZE) {
        const oldest = this.#inline.keys().next();
        if (!oldest.done) this.#inline.delete(oldest.value);
      }
      this.#inline.set(nameOrInline, entry);
    }
    if (entry instanceof TemplateError) throw entry;
    return entry;
  }
}

/** The `m.room.message` content for a rendered message, with `m.mentions` always present. */
export function toEventContent(message: RenderedMessage): MessageEventContent {
  const mentions = message.mentions.user_ids.length > 0 ? { user_ids: [...message.mentions.user_ids] } : {};
  return {
    msgtype: message.msgtype,
    body: message.body,
    format: message.format,
    formatted_body: message.formatted_body,
    "m.mentions": mentions,
  };
}
