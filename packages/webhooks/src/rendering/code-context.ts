/*
 * Where a template puts `{{value}}` inside Markdown code — between backticks on its line, or
 * inside a fenced block — Markdown escapes would show as backslashes, so such values are
 * inserted literally instead (see literalInCode). This reads the template source the way its
 * author sees it; block helpers around the value do not matter.
 */

export type CodeContext = "span" | "block" | undefined;

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,})[ \t]*$/;

/** For each line of the source: is it inside a fenced code block (not counting the fences)? */
function fencedLines(lines: readonly string[]): boolean[] {
  const inside: boolean[] = [];
  let open: string | undefined;
  for (const line of lines) {
    if (open === undefined) {
      const fence = FENCE_OPEN.exec(line)?.[1];
      // A backtick fence's info string cannot contain backticks; such a line is no fence.
      const isFence =
        fence !== undefined &&
        !(fence[0] === "`" && line.slice(line.indexOf(fence) + fence.length).includes("`"));
      open = isFence ? fence : undefined;
      inside.push(false);
      continue;
    }
    const close = FENCE_CLOSE.exec(line)?.[1];
    if (close !== undefined && close[0] === open[0] && close.length >= open.length) {
      open = undefined;
      inside.push(false);
    } else {
      inside.push(true);
    }
  }
  return inside;
}

/** Is the end of `prefix` inside a code span opened earlier on the line? */
function insideCodeSpan(prefix: string): boolean {
  let open = 0;
  for (const run of prefix.match(/`+/g) ?? []) {
    if (open === 0) open = run.length;
    else if (run.length === open) open = 0;
  }
  return open > 0;
}

/** A lookup from a position in the source (1-based line, 0-based column) to its code context. */
export function codeContexts(source: string): (line: number, column: number) => CodeContext {
  const lines = source.split("\n");
  const fenced = fencedLines(lines);
  return (line, column) => {
    if (fenced[line - 1]) return "block";
    return insideCodeSpan((lines[line - 1] ?? "").slice(0, column)) ? "span" : undefined;
  };
}
