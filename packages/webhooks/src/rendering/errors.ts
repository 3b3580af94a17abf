/**
 * What went wrong with a template, in words a room admin can act on.
 *
 * - `syntax`: the handlebars source does not parse (unclosed block, stray `}}`…).
 * - `unknown-helper`: the template calls a helper Trestle does not provide.
 * - `unsupported`: a handlebars feature that is switched off (partials, decorators).
 * - `too-large`: the template source is over the size limit.
 * - `unknown-builtin`: `!webhook template <name>` named no built-in template.
 * - `runtime`: the template failed while rendering a payload (a helper threw).
 */
export type TemplateErrorKind =
  | "syntax"
  | "unknown-helper"
  | "unsupported"
  | "too-large"
  | "unknown-builtin"
  | "runtime";

export interface TemplateErrorDetails {
  /** 1-based line in the template source, when known. */
  line?: number;
  /** 0-based column in that line, when known. */
  column?: number;
  /** Which template: a built-in name or "inline". */
  template?: string;
  cause?: unknown;
}

/** A template could not be compiled or rendered. `message` names the problem (and the line when known). */
export class TemplateError extends Error {
  readonly kind: TemplateErrorKind;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly template: string | undefined;
  /** The problem without the "line N:" prefix. */
  readonly problem: string;

  constructor(kind: TemplateErrorKind, problem: string, details: TemplateErrorDetails = {}) {
    super(details.line === undefined ? problem : `line ${details.line}: ${problem}`, {
      cause: details.cause,
    });
    this.name = "TemplateError";
    this.kind = kind;
    this.problem = problem;
    this.line = details.line;
    this.column = details.column;
    this.template = details.template;
  }
}

interface HandlebarsExceptionLike {
  message: string;
  lineNumber?: unknown;
  column?: unknown;
}

const UNKNOWN_HELPER = /^You specified knownHelpersOnly, but used the unknown helper (\S+)/;
const PARSE_ERROR = /^(?:Parse|Lexical) error on line (\d+)[:.]\s*([\s\S]*)$/;
const MISMATCH = /^(\S+) doesn't match (\S+)/;
const LOCATION_SUFFIX = / - \d+:\d+$/;

/** Turns what handlebars throws while compiling into a TemplateError with a readable message. */
export function compileErrorFrom(error: unknown, template: string | undefined): TemplateError {
  if (error instanceof TemplateError) return error;
  const { message, details } = describe(error, template);
  const unknownHelper = UNKNOWN_HELPER.exec(message);
  if (unknownHelper) {
    return new TemplateError("unknown-helper", `unknown helper "${unknownHelper[1]}"`, details);
  }
  const mismatch = MISMATCH.exec(message);
  if (mismatch) {
    return new TemplateError(
      "syntax",
      `{{#${mismatch[1]}}} is closed by {{/${mismatch[2]}}}: open and close blocks must match`,
      details,
    );
  }
  const parse = PARSE_ERROR.exec(message);
  if (parse) {
    details.line = Number(parse[1]);
    return new TemplateError("syntax", describeParseError(parse[2] ?? ""), details);
  }
  return new TemplateError("syntax", message.replace(LOCATION_SUFFIX, ""), details);
}

/** Turns what a template throws while rendering into a TemplateError. */
export function runtimeErrorFrom(error: unknown, template: string | undefined): TemplateError {
  if (error instanceof TemplateError) return error;
  const { message, details } = describe(error, template);
  return new TemplateError("runtime", message.replace(LOCATION_SUFFIX, "") || "the template failed", details);
}

/** The message of what was thrown, and the position handlebars attached to it, if any. */
function describe(
  error: unknown,
  template: string | undefined,
): { message: string; details: TemplateErrorDetails } {
  const { message, lineNumber, column }: HandlebarsExceptionLike =
    error instanceof Error ? error : { message: String(error) };
  const details: TemplateErrorDetails = { template, cause: error };
  if (typeof lineNumber === "number") details.line = lineNumber;
  if (typeof column === "number") details.column = column;
  return { message, details };
}

/**
 * The parser's message is three lines: the source near the error, a caret, and the tokens it
 * expected. Keep the source excerpt and say what was wrong in words.
 */
function describeParseError(rest: string): string {
  const lines = rest.split("\n");
  const excerpt = (lines[0] ?? "").trim();
  const expectation = lines.slice(2).join(" ").trim();
  const got = /got '([^']+)'/.exec(expectation)?.[1];
  let what: string;
  if (got === "EOF" && expectation.includes("OPEN_ENDBLOCK")) {
    what = "a block opened with {{#…}} is never closed with {{/…}}";
  } else if (got === "EOF") {
    what = "the template ends in the middle of a {{…}} expression";
  } else if (got === "INVALID") {
    what = "a {{…}} expression is not closed or contains characters handlebars cannot read";
  } else if (got) {
    what = `unexpected ${got.toLowerCase().replaceAll("_", " ")}`;
  } else {
    what = expectation || "the template cannot be parsed";
  }
  return excerpt ? `${what} (near "${excerpt}")` : what;
}
