/**
 * Building blocks for putting untrusted text into Markdown: escaping, code spans and blocks,
 * and links whose destination is checked.
 */

/** Characters that mean something to Markdown wherever they stand in a line. */
const INLINE_SPECIAL = /[\\`*_[\]<>&~|]/g;

export interface EscapeOptions {
  /**
   * Keep blank lines (paragraph breaks). Off for values interpolated into a template: a blank
   * line would end the list item or paragraph the template put the value in.
   */
  keepParagraphs?: boolean;
}

/**
 * Escapes text so that Markdown shows it as typed: no emphasis, links, headings, lists, quotes,
 * code or HTML entities come out of it. Line breaks stay line breaks.
 */
export function escapeMarkdown(value: string, options: EscapeOptions = {}): string {
  let text = value.replace(/\r\n?/g, "\n");
  text = options.keepParagraphs
    ? text.replace(/\n[ \t]*\n(?:[ \t]*\n)+/g, "\n\n")
    : text.replace(/\n[ \t]*(?:\n[ \t]*)+/g, "\n");
  return text
    .split("\n")
    .map((line) => escapeLine(line.replace(/^[ \t]+/, "")))
    .join("\n");
}

function escapeLine(line: string): string {
  return (
    line
      .replace(INLINE_SPECIAL, "\\$&")
      // Block markers only count at the start of a line: headings, lists, setext underlines.
      .replace(/^([#+=-])/, "\\$1")
      .replace(/^(\d+)([.)])/, "$1\\$2")
  );
}

function longestRun(text: string, char: string): number {
  let longest = 0;
  let current = 0;
  for (const c of text) {
    current = c === char ? current + 1 : 0;
    if (current > longest) longest = current;
  }
  return longest;
}

/** An inline code span showing `value` literally, whatever backticks it contains. */
export function codeSpan(value: string): string {
  const text = value.replace(/\r?\n/g, " ");
  if (text.trim() === "") return "";
  const fence = "`".repeat(longestRun(text, "`") + 1);
  const pad = /^[` ]|[` ]$/.test(text) ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/**
 * A fenced code block showing `value` literally. It must stand on its own line in the
 * template; the fence is longer than any backtick run inside, so the content cannot close it.
 */
export function codeBlock(value: string, language = ""): string {
  const text = value.replace(/\r\n?/g, "\n").replace(/\n+$/, "");
  const fence = "`".repeat(Math.max(3, longestRun(text, "`") + 1));
  const info = language.replace(/[^\w+#.-]/g, "");
  return `${fence}${info}\n${text}\n${fence}`;
}

/**
 * Text for a code span or fenced block the template itself opened: shown literally, but never
 * able to close that code. In a span, line breaks become spaces and backticks become `ˋ`; in a
 * block, a line made only of fence characters gets a zero-width space in front.
 */
export function literalInCode(value: string, block: boolean): string {
  if (block) return value.replace(/\r\n?/g, "\n").replace(/^( {0,3})([`~]{3,}[ \t]*)$/gm, "$1\u200B$2");
  return value.replace(/\r?\n/g, " ").replaceAll("`", "\u02CB");
}

/** The URL schemes Matrix's HTML allows in `<a href>`. */
const LINK_PROTOCOLS = new Set(["https:", "http:", "ftp:", "mailto:", "magnet:"]);

/**
 * The URL, normalised, if it is absolute and uses a scheme Matrix allows in links; otherwise
 * undefined (`javascript:`, `data:`, relative paths, garbage).
 */
export function safeUrl(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value.trim());
  } catch {
    return undefined;
  }
  return LINK_PROTOCOLS.has(parsed.protocol) ? parsed.href : undefined;
}

/** A Markdown link `[label](url)` with `label` already Markdown; the URL must come from safeUrl. */
export function markdownLink(labelMarkdown: string, url: string): string {
  // An angle-bracket destination may contain anything but line breaks and unescaped < >.
  const destination = url.replace(/[<>\\\s]/g, (c) => encodeURIComponent(c));
  return `[${labelMarkdown}](<${destination}>)`;
}
