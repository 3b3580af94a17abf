import { codeBlock, codeSpan, escapeMarkdown, markdownLink, safeUrl } from "./markdown-text.js";

/*
 * Slack's "mrkdwn" (https://api.slack.com/reference/surfaces/formatting) to CommonMark:
 * `*bold*`, `_italic_`, `~strike~`, `` `code` ``, ```` ```pre``` ````, `>` quotes, and the
 * angle-bracket control sequences `<url|label>`, `<@U123>`, `<#C123|name>`, `<!here>`.
 * `&amp;`, `&lt;` and `&gt;` arrive escaped. Everything else is escaped, so payload text cannot
 * produce Markdown that Slack would not have shown.
 */

// Private-use characters mark where a code span or link goes back after escaping.
const OPEN = "\uE000";
const CLOSE = "\uE001";
const PLACEHOLDER = new RegExp(`${OPEN}(\\d+)${CLOSE}`, "g");

const BEFORE = `(^|[\\s(\\[{"'${OPEN}${CLOSE}])`;
const AFTER = `(?=$|[\\s.,;:!?)\\]}"'${OPEN}${CLOSE}])`;
function emphasis(marker: string): RegExp {
  const m = `\\\\\\${marker}`; // the escaped marker, e.g. \* once escapeMarkdown has run
  return new RegExp(`${BEFORE}${m}(?![\\s])((?:(?!${m})[^\\n])+?)(?<![\\s\\\\])${m}${AFTER}`, "gm");
}
const BOLD = emphasis("*");
const ITALIC = emphasis("_");
const STRIKE = emphasis("~");

export function slackToMarkdown(text: string): string {
  const pieces: string[] = [];
  const hold = (markdown: string): string => {
    pieces.push(markdown);
    return `${OPEN}${pieces.length - 1}${CLOSE}`;
  };

  const prose = text
    .replace(/\r\n?/g, "\n")
    .replace(/```\n?([\s\S]*?)```/g, (_, code: string) => hold(`\n${codeBlock(decodeEntities(code))}\n`))
    .replace(/`([^`\n]+)`/g, (_, code: string) => hold(codeSpan(decodeEntities(code))))
    .replace(/<([^<>\n]*)>/g, (_, inner: string) => hold(controlSequence(inner)));

  const markdown = decodeEntities(prose)
    .split("\n")
    .map((line) => {
      const quote = /^>\s?/.exec(line);
      const body = formatLine(quote ? line.slice(quote[0].length) : line);
      return quote ? `> ${body}` : body;
    })
    .join("\n");
  return markdown.replace(PLACEHOLDER, (_, index: string) => pieces[Number(index)] ?? "");
}

function formatLine(line: string): string {
  return escapeMarkdown(line).replace(BOLD, "$1**$2**").replace(ITALIC, "$1*$2*").replace(STRIKE, "$1~~$2~~");
}

function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt);/g, (_, name: string) => ({ amp: "&", lt: "<", gt: ">" })[name] ?? "");
}

/** `<…>` sequences: links, user/channel references and special mentions, as readable Markdown. */
function controlSequence(inner: string): string {
  const bar = inner.indexOf("|");
  const target = decodeEntities(bar === -1 ? inner : inner.slice(0, bar));
  const label = bar === -1 ? undefined : decodeEntities(inner.slice(bar + 1));
  const text = (value: string) => escapeMarkdown(value);

  if (target.startsWith("@")) return text(label ? `@${label.replace(/^@/, "")}` : target);
  if (target.startsWith("#")) return text(label ? `#${label.replace(/^#/, "")}` : target);
  if (target.startsWith("!")) {
    // <!here>, <!channel>, <!everyone>, <!subteam^ID|@team>, <!date^…|fallback>
    if (label) return text(label);
    return text(`@${target.slice(1).split("^")[0] ?? ""}`);
  }
  const url = safeUrl(target);
  if (!url) return text(label ?? target);
  return markdownLink(text(label || target), url);
}
