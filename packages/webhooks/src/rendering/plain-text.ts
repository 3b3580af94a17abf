import type { Token } from "markdown-it";

/*
 * The plain `body` of a message, from the same markdown-it tokens as the HTML.
 *
 * Why not the Markdown source: after escaping, payload text is full of backslashes
 * (`release\_notes`), and `[text](<url>)` is noise in a notification. The body is what
 * notifications, push previews and clients without HTML show, so it should read as text:
 * emphasis markers are dropped, links become `text <url>` (a pill becomes its name), lists
 * get bullets, quotes keep `> `, code keeps its content.
 */

interface BlockNode {
  token: Token;
  children: BlockNode[];
}

function buildTree(tokens: Token[]): BlockNode[] {
  const root: BlockNode[] = [];
  const stack: BlockNode[][] = [root];
  for (const token of tokens) {
    const siblings = stack[stack.length - 1] ?? root;
    if (token.nesting === 1) {
      const node: BlockNode = { token, children: [] };
      siblings.push(node);
      stack.push(node.children);
    } else if (token.nesting === -1) {
      if (stack.length > 1) stack.pop();
    } else {
      siblings.push({ token, children: [] });
    }
  }
  return root;
}

export function tokensToPlainText(tokens: Token[]): string {
  return joinBlocks(buildTree(tokens)).trim();
}

function isList(node: BlockNode): boolean {
  return node.token.type === "bullet_list_open" || node.token.type === "ordered_list_open";
}

/** Blocks are separated by a blank line, except around lists, which stay close to their lead-in. */
function joinBlocks(nodes: BlockNode[], tight = false): string {
  let out = "";
  let previous: BlockNode | undefined;
  for (const node of nodes) {
    const text = renderBlock(node);
    if (text === "") continue;
    if (previous) out += tight || isList(node) || isList(previous) ? "\n" : "\n\n";
    out += text;
    previous = node;
  }
  return out;
}

function renderBlock(node: BlockNode): string {
  const { token } = node;
  switch (token.type) {
    case "inline":
      return renderInline(token.children ?? []);
    case "bullet_list_open":
      return node.children.map((item) => listItem(item, "• ")).join("\n");
    case "ordered_list_open": {
      const start = Number(token.attrGet("start") ?? 1);
      return node.children.map((item, i) => listItem(item, `${start + i}. `)).join("\n");
    }
    case "blockquote_open":
      return joinBlocks(node.children)
        .split("\n")
        .map((line) => `> ${line}`)
        .join("\n");
    case "fence":
    case "code_block":
      return token.content.replace(/\n$/, "");
    case "hr":
      return "───";
    case "tr_open":
      return node.children.map((cell) => joinBlocks(cell.children)).join(" | ");
    case "table_open":
    case "thead_open":
    case "tbody_open":
      return node.children.map(renderBlock).join("\n");
    default:
      return joinBlocks(node.children);
  }
}

function listItem(item: BlockNode, marker: string): string {
  // In a tight list markdown-it hides the paragraphs: keep their lines together.
  const tight = item.children.every((child) => child.token.type !== "paragraph_open" || child.token.hidden);
  const indent = " ".repeat(marker.length);
  return joinBlocks(item.children, tight)
    .split("\n")
    .map((line, i) => (i === 0 ? marker + line : indent + line))
    .join("\n");
}

function renderInline(tokens: Token[]): string {
  let out = "";
  const links: { href: string; start: number }[] = [];
  for (const token of tokens) {
    switch (token.type) {
      case "text":
      case "code_inline":
        out += token.content;
        break;
      case "softbreak":
      case "hardbreak":
        out += "\n";
        break;
      case "image":
        out += token.content || String(token.attrGet("src") ?? "");
        break;
      case "link_open":
        links.push({ href: String(token.attrGet("href") ?? ""), start: out.length });
        break;
      case "link_close": {
        const link = links.pop();
        if (link && showHref(link.href, out.slice(link.start))) out += ` <${link.href}>`;
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** A link's URL is worth showing unless the text already is the URL, or it is a user pill. */
function showHref(href: string, text: string): boolean {
  if (href === "" || href === text || href === `mailto:${text}`) return false;
  return !href.startsWith("https://matrix.to/#/");
}
