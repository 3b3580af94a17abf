import MarkdownIt, { type MarkdownIt as MarkdownItInstance } from "markdown-it";
import sanitizeHtml from "sanitize-html";

/**
 * Markdown as the templates write it: no raw HTML (`<b>` in a payload stays text), single line
 * breaks kept (webhook text is line-oriented), no typographic replacements, no auto-linking
 * (Matrix clients link bare URLs themselves).
 */
export function createMarkdown(): MarkdownItInstance {
  return new MarkdownIt("default", { html: false, breaks: true, linkify: false, typographer: false });
}

/** The tags and attributes the Matrix client-server spec allows in `org.matrix.custom.html`. */
const MATRIX_TAGS = [
  "font",
  "del",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "blockquote",
  "p",
  "a",
  "ul",
  "ol",
  "sup",
  "sub",
  "li",
  "b",
  "i",
  "u",
  "strong",
  "em",
  "strike",
  "code",
  "hr",
  "br",
  "div",
  "table",
  "thead",
  "tbody",
  "tr",
  "th",
  "td",
  "caption",
  "pre",
  "span",
  "img",
  "details",
  "summary",
];

/**
 * sanitize-html options for Matrix: the spec's allow-list; links only to https, http, ftp,
 * mailto and magnet; images only from mxc:// (any other image becomes a link to it, as the
 * bridge never fetches remote media); code classes only `language-*`. markdown-it writes
 * strikethrough as `<s>`, which is not on the list; it becomes `<del>`.
 */
export const MATRIX_SANITIZE_OPTIONS: sanitizeHtml.IOptions = {
  allowedTags: MATRIX_TAGS,
  allowedAttributes: {
    font: ["color", "data-mx-bg-color", "data-mx-color"],
    span: ["data-mx-*"],
    a: ["name", "target", "href"],
    img: ["width", "height", "alt", "title", "src"],
    ol: ["start"],
    code: ["class"],
  },
  allowedClasses: { code: [/^language-[\w+#.-]+$/] },
  allowedSchemes: ["https", "http", "ftp", "mailto", "magnet"],
  allowedSchemesByTag: { img: ["mxc"] },
  allowedSchemesAppliedToAttributes: ["href", "src"],
  allowProtocolRelative: false,
  disallowedTagsMode: "discard",
  transformTags: {
    s: "del",
    img: (tagName, attribs) => {
      const src = attribs.src ?? "";
      if (src.startsWith("mxc://")) return { tagName, attribs };
      return { tagName: "a", attribs: { href: src }, text: attribs.alt || src };
    },
  },
};

export function sanitizeMatrixHtml(html: string): string {
  return sanitizeHtml(html, MATRIX_SANITIZE_OPTIONS);
}

/** `<p>one paragraph</p>` → `one paragraph`: clients show a lone paragraph without extra margins. */
export function unwrapSingleParagraph(html: string): string {
  const match = /^<p>([\s\S]*)<\/p>$/.exec(html.trim());
  if (match?.[1] !== undefined && !match[1].includes("<p>")) return match[1];
  return html.trim();
}
