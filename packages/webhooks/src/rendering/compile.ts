import type Handlebars from "handlebars";
import { type CodeContext, codeContexts } from "./code-context.js";
import { compileErrorFrom, TemplateError } from "./errors.js";
import { CODE_TEXT_HELPER, HELPER_NAMES, TEXT_HELPER } from "./helpers.js";

/*
 * Templates are handlebars sources written by room admins (or shipped with Trestle). A payload
 * can never supply a template: payload values only ever reach a compiled template as data.
 *
 * Safety switches, all explicit:
 * - knownHelpersOnly: a template can call only the helpers Trestle registers (plus handlebars'
 *   if/unless/each/with/lookup); `log` is not among them. An unknown helper is a compile error.
 * - no partials or decorators (`{{> x}}`, `{{#*inline}}`): rejected when compiling.
 * - prototype access off at run time (see RUNTIME_OPTIONS).
 * - `{{value}}` is escaped for Markdown instead of HTML: the template's output is Markdown, so
 *   a payload cannot inject links, emphasis or headings. Between backticks or in a fenced block
 *   it is inserted literally, unable to close the code. `{{{value}}}` inserts payload text as
 *   Markdown on purpose; either way the HTML is sanitised afterwards.
 */

type HandlebarsEnv = typeof Handlebars;
type Program = hbs.AST.Program;
type Statement = hbs.AST.Statement;
type Expression = hbs.AST.Expression;
type MustacheStatement = hbs.AST.MustacheStatement;
type BlockStatement = hbs.AST.BlockStatement;
type PathExpression = hbs.AST.PathExpression;

const BUILTIN_HELPERS = ["if", "unless", "each", "with", "lookup", "helperMissing", "blockHelperMissing"];

export function knownHelpers(): Record<string, boolean> {
  const known: Record<string, boolean> = { log: false };
  for (const name of [...BUILTIN_HELPERS, ...HELPER_NAMES, TEXT_HELPER, CODE_TEXT_HELPER]) known[name] = true;
  return known;
}

/** Fresh each time: handlebars writes into the options object it is given. */
function compileOptions(): CompileOptions {
  return { knownHelpers: knownHelpers(), knownHelpersOnly: true, strict: false, noEscape: false, data: true };
}

/**
 * Passed on every render. In handlebars 4.7 both `allowProto…ByDefault` flags already default
 * to false; stating them also stops handlebars from logging through its global logger each
 * time a template touches a prototype property.
 */
export const RUNTIME_OPTIONS = Object.freeze({
  allowProtoPropertiesByDefault: false,
  allowProtoMethodsByDefault: false,
  allowCallsToHelperMissing: false,
  allowedProtoProperties: {},
  allowedProtoMethods: {},
});

const STATEMENT_NAMES: Record<string, string> = {
  PartialStatement: "partials ({{> name}})",
  PartialBlockStatement: "partial blocks ({{#> name}})",
  DecoratorBlock: "inline partials and decorators ({{#*inline}})",
  Decorator: "decorators ({{* name}})",
};

interface Rewrite {
  template: string | undefined;
  codeAt: (line: number, column: number) => CodeContext;
}

/**
 * Parses a template, rejects what is switched off, and rewrites `{{value}}` into
 * `{{{__trestle_text value}}}` so interpolations are escaped for Markdown.
 */
export function parseTemplate(env: HandlebarsEnv, source: string, template: string | undefined): Program {
  let program: Program;
  try {
    program = env.parseWithoutProcessing(source);
  } catch (error) {
    throw compileErrorFrom(error, template);
  }
  rewriteProgram(program, { template, codeAt: codeContexts(source) });
  return program;
}

/** Parses and compiles eagerly, so every compile error surfaces now rather than at the first webhook. */
export function compileTemplate(
  env: HandlebarsEnv,
  source: string,
  template: string | undefined,
): Handlebars.TemplateDelegate {
  try {
    // handlebars compiles lazily; precompiling a second parse of the source reports its errors now.
    env.precompile(parseTemplate(env, source, template), compileOptions());
    return env.compile(parseTemplate(env, source, template), compileOptions());
  } catch (error) {
    throw compileErrorFrom(error, template);
  }
}

function rewriteProgram(program: Program | undefined, rewrite: Rewrite): void {
  if (!program) return;
  program.body = program.body.map((statement) => rewriteStatement(statement, rewrite));
}

function rewriteStatement(statement: Statement, rewrite: Rewrite): Statement {
  const forbidden = STATEMENT_NAMES[statement.type];
  if (forbidden) {
    throw new TemplateError("unsupported", `${forbidden} are not supported`, {
      template: rewrite.template,
      line: statement.loc?.start.line,
      column: statement.loc?.start.column,
    });
  }
  if (statement.type === "BlockStatement") {
    const block = statement as BlockStatement;
    rewriteProgram(block.program, rewrite);
    rewriteProgram(block.inverse, rewrite);
    return block;
  }
  if (statement.type === "MustacheStatement") {
    const mustache = statement as MustacheStatement;
    if (mustache.escaped) {
      const start = mustache.loc?.start;
      return escapeForMarkdown(mustache, start ? rewrite.codeAt(start.line, start.column) : undefined);
    }
  }
  return statement;
}

const HELPERS = new Set(
  Object.entries(knownHelpers())
    .filter(([, known]) => known)
    .map(([name]) => name),
);

/**
 * `{{a.b}}` → `{{{__trestle_text a.b}}}`; `{{helper x}}` → `{{{__trestle_text (helper x)}}}`;
 * inside code, `{{{__trestle_code_text a.b "span"}}}`.
 */
function escapeForMarkdown(mustache: MustacheStatement, code: CodeContext): MustacheStatement {
  const path = mustache.path;
  const params = mustache.params ?? [];
  let inner: Expression = path;
  if (path.type === "PathExpression") {
    const named = path as PathExpression;
    const callsHelper =
      params.length > 0 ||
      (mustache.hash?.pairs.length ?? 0) > 0 ||
      (isSimpleName(named) && HELPERS.has(named.original));
    if (callsHelper) {
      inner = {
        type: "SubExpression",
        path: named,
        params,
        hash: mustache.hash,
        loc: mustache.loc,
      } as hbs.AST.SubExpression;
    }
  }
  const helper = code ? CODE_TEXT_HELPER : TEXT_HELPER;
  const textHelper: PathExpression = {
    type: "PathExpression",
    data: false,
    depth: 0,
    parts: [helper],
    original: helper,
    loc: mustache.loc,
  };
  const args: Expression[] = [inner];
  if (code) {
    args.push({
      type: "StringLiteral",
      value: code,
      original: code,
      loc: mustache.loc,
    } as hbs.AST.StringLiteral);
  }
  return {
    ...mustache,
    path: textHelper,
    params: args,
    hash: undefined,
    escaped: false,
  } as unknown as MustacheStatement;
}

/** Handlebars treats `{{name}}` as a helper call only for a bare, unscoped name. */
function isSimpleName(path: PathExpression): boolean {
  return path.parts.length === 1 && !path.data && path.depth === 0 && !/^(\.|this\b)/.test(path.original);
}
