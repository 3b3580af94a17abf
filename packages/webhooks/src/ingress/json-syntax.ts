/** Where and why a text is not JSON, described without quoting any of it. */
export interface JsonSyntaxProblem {
  /** Offset in UTF-16 code units, as `JSON.parse` counts. */
  position: number;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** What was wrong, e.g. `expected ',' or '}'`; never contains text from the input. */
  problem: string;
}

type Expect = "value" | "valueOrClose" | "key" | "keyOrClose" | "colon" | "commaOrClose" | "end";

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LITERALS = ["true", "false", "null"] as const;
const SIMPLE_ESCAPES = new Set(['"', "\\", "/", "b", "f", "n", "r", "t"]);
const HEX4 = /[0-9a-fA-F]{4}/y;

/**
 * Finds the first JSON syntax error in `text` (RFC 8259 grammar, as `JSON.parse` implements it),
 * or `undefined` when the text is valid JSON.
 *
 * It exists for error messages: V8's own messages quote the input (`Unexpected token 'x', "{"tok…"
 * is not valid JSON`), which would echo a secret-bearing body back to the sender and into logs, and
 * they change between Node versions. Iterative, so deep nesting cannot overflow the stack.
 */
export function findJsonSyntaxError(text: string): JsonSyntaxProblem | undefined {
  const n = text.length;
  const stack: ("{" | "[")[] = [];
  let i = 0;
  let expect: Expect = "value";
  const fail = (position: number, problem: string): JsonSyntaxProblem => locate(text, position, problem);
  const afterValue = (): Expect => (stack.length === 0 ? "end" : "commaOrClose");

  for (;;) {
    while (i < n && isJsonWhitespace(text.charCodeAt(i))) i += 1;
    if (i >= n) return expect === "end" ? undefined : fail(n, "unexpected end of input");
    const ch = text[i];
    switch (expect) {
      case "end":
        return fail(i, "unexpected data after the JSON value");
      case "colon":
        if (ch !== ":") return fail(i, "expected ':' after a property name");
        i += 1;
        expect = "value";
        continue;
      case "commaOrClose": {
        const open = stack[stack.length - 1];
        const close = open === "{" ? "}" : "]";
        if (ch === ",") {
          i += 1;
          expect = open === "{" ? "key" : "value";
        } else if (ch === close) {
          i += 1;
          stack.pop();
          expect = afterValue();
        } else {
          return fail(i, `expected ',' or '${close}'`);
        }
        continue;
      }
      case "keyOrClose":
      case "valueOrClose":
        if (ch === (expect === "keyOrClose" ? "}" : "]")) {
          i += 1;
          stack.pop();
          expect = afterValue();
          continue;
        }
        expect = expect === "keyOrClose" ? "key" : "value";
        continue;
      case "key": {
        if (ch !== '"') return fail(i, "expected a property name in double quotes");
        const end = scanString(text, i, fail);
        if (typeof end !== "number") return end;
        i = end;
        expect = "colon";
        continue;
      }
      case "value": {
        if (ch === "{" || ch === "[") {
          stack.push(ch);
          i += 1;
          expect = ch === "{" ? "keyOrClose" : "valueOrClose";
          continue;
        }
        const end = scanScalar(text, i, fail);
        if (typeof end !== "number") return end;
        i = end;
        expect = afterValue();
        continue;
      }
    }
  }
}

type Fail = (position: number, problem: string) => JsonSyntaxProblem;

/** A string, number or literal starting at `start`; returns the offset after it, or the problem. */
function scanScalar(text: string, start: number, fail: Fail): number | JsonSyntaxProblem {
  const ch = text[start];
  if (ch === '"') return scanString(text, start, fail);
  if (ch === "-" || (ch !== undefined && ch >= "0" && ch <= "9")) {
    NUMBER.lastIndex = start;
    if (!NUMBER.test(text)) return fail(start, "invalid number");
    return NUMBER.lastIndex;
  }
  for (const literal of LITERALS) {
    if (text.startsWith(literal, start)) return start + literal.length;
    const rest = text.slice(start);
    if (rest.length < literal.length && literal.startsWith(rest))
      return fail(text.length, "unexpected end of input");
  }
  return fail(start, "unexpected character where a value was expected");
}

/** A string starting at the quote at `start`; returns the offset after its closing quote. */
function scanString(text: string, start: number, fail: Fail): number | JsonSyntaxProblem {
  let i = start + 1;
  for (;;) {
    if (i >= text.length) return fail(text.length, "unterminated string");
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return fail(i, "control character in a string (escape it)");
    if (code === 0x5c) {
      const escaped = text[i + 1];
      if (escaped === "u") {
        HEX4.lastIndex = i + 2;
        if (!HEX4.test(text)) return fail(i, "invalid \\u escape in a string");
        i += 6;
        continue;
      }
      if (escaped === undefined) return fail(text.length, "unterminated string");
      if (!SIMPLE_ESCAPES.has(escaped)) return fail(i, "invalid escape in a string");
      i += 2;
      continue;
    }
    i += 1;
  }
}

function isJsonWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

function locate(text: string, position: number, problem: string): JsonSyntaxProblem {
  let line = 1;
  let lineStart = 0;
  for (let at = text.indexOf("\n"); at !== -1 && at < position; at = text.indexOf("\n", at + 1)) {
    line += 1;
    lineStart = at + 1;
  }
  return { position, line, column: position - lineStart + 1, problem };
}

/** E.g. `expected ',' or '}' at line 3, column 7 (position 41)`. */
export function formatJsonSyntaxProblem(p: JsonSyntaxProblem): string {
  return `${p.problem} at line ${p.line}, column ${p.column} (position ${p.position})`;
}
