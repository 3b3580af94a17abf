/**
 * Namespace regexes are written for Synapse, which compiles them with Python's `re` and
 * tests them with `re.match`: anchored at the start of the string, NOT at the end.
 *
 * Python and JavaScript regex syntax mostly agree, but a few constructs differ, and in
 * JavaScript's non-unicode mode some of them silently turn into literals instead of failing
 * (`\Z` would match the letter "Z"). So the pattern is translated where a faithful
 * equivalent exists and rejected where none does:
 *   - `(?P<name>…)` and `(?P=name)` become `(?<name>…)` and `\k<name>`;
 *   - `\A` and `\Z` become "no character before" / "no character after" assertions;
 *   - leading global flags `(?i)`, `(?s)`, `(?m)` become JS flags; other inline flags fail;
 *   - letter escapes that do not mean the same in both (`\a`, `\U`, `\N{…}`, `\p`, `\k`…) fail;
 *   - a `]` right after `[` or `[^` is a literal in Python but closes the class in JS.
 * Remaining, harmless differences: Python's `\d`, `\w`, `\s` also match non-ASCII digits,
 * letters and spaces (Matrix IDs are ASCII in practice); Python's `$` also matches before a
 * trailing newline (IDs contain none); JS accepts variable-width lookbehind that Python rejects.
 *
 * The unicode flag is deliberately not used: it would reject escaped punctuation such as
 * `\@` or `\:`, which Python accepts and registration authors do write.
 */

// Escapes of a letter that Python and JavaScript (non-unicode mode) both read the same way.
const SHARED_LETTER_ESCAPES = new Set("dDsSwWbBnrtfvxu");

/** Thrown for a pattern that cannot be compiled; the message says why. */
export class RegexTranslationError extends Error {
  override name = "RegexTranslationError";
}

/**
 * Compiles a Python `re` pattern into a sticky JS RegExp: with `lastIndex = 0` it matches
 * only at the start of the input, as `re.match` does, even when `(?m)` makes `^` match
 * after newlines. Use {@link matchesAtStart} rather than calling `test` directly.
 */
export function compilePythonRegex(pattern: string): RegExp {
  let flags = "y";
  let body = pattern;
  const inline = /^\(\?([a-zA-Z]+)\)/.exec(pattern);
  if (inline) {
    for (const flag of inline[1]!) {
      if (flag === "i" || flag === "m" || flag === "s") {
        if (!flags.includes(flag)) flags += flag;
      } else if (flag !== "u") {
        // `u` is Python 3's default for str patterns; a, L and x have no JS equivalent.
        throw new RegexTranslationError(`inline flag (?${flag}) has no JavaScript equivalent`);
      }
    }
    body = pattern.slice(inline[0].length);
  }
  const source = translate(body);
  try {
    return new RegExp(source, flags);
  } catch (err) {
    // V8 says "Invalid regular expression: /<translated source>/<flags>: <reason>"; the
    // translated source would only confuse, since the operator wrote the Python one.
    const reason = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, "");
    throw new RegexTranslationError(reason);
  }
}

/** `re.match` semantics: does `re` match a prefix of `input`? */
export function matchesAtStart(re: RegExp, input: string): boolean {
  re.lastIndex = 0;
  return re.test(input);
}

function translate(pattern: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\") {
      const next = pattern[i + 1];
      if (next === undefined) throw new RegexTranslationError("pattern ends with a lone backslash");
      i++;
      if (!inClass && next === "A") out += "(?<![\\s\\S])";
      else if (!inClass && next === "Z") out += "(?![\\s\\S])";
      else if (/[A-Za-z]/.test(next) && !SHARED_LETTER_ESCAPES.has(next)) {
        throw new RegexTranslationError(`escape \\${next} does not mean the same in Python and JavaScript`);
      } else out += c + next;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") {
        out += "^";
        i++;
      }
      if (pattern[i + 1] === "]") {
        out += "\\]";
        i++;
      }
      continue;
    }
    if (pattern.startsWith("(?P<", i)) {
      out += "(?<";
      i += 3;
      continue;
    }
    if (pattern.startsWith("(?P=", i)) {
      const end = pattern.indexOf(")", i);
      if (end < 0) throw new RegexTranslationError("unterminated (?P=name) backreference");
      out += `\\k<${pattern.slice(i + 4, end)}>`;
      i = end;
      continue;
    }
    out += c;
  }
  return out;
}
