import type { BuiltinTemplate } from "../rendering/types.js";

/**
 * The fallback for anything else, and what a failing template is replaced by. A `text`,
 * `message` or `body` string is shown as Markdown (with a `title` above it); a plain-text
 * request body is shown as it is; any other payload is shown as pretty JSON in a code block,
 * cut short when huge.
 */

const MAX_JSON_CHARACTERS = 20_000;

const textField = (field: string) => `{{else if (and (eq (typeof ${field}) "string") ${field})}}
{{#if (eq (typeof title) "string")}}
**{{title}}**
{{/if}}
{{markdown ${field}}}
`;

const source = `{{#if (eq (typeof this) "string")}}
{{markdown this}}
${textField("text")}${textField("message")}${textField("body")}{{else}}
Received webhook data:

{{codeblock (truncate (json this) ${MAX_JSON_CHARACTERS}) "json"}}
{{/if}}
`;

export const generic: BuiltinTemplate = {
  name: "generic",
  description: "Any JSON: a text/message/body field as Markdown, otherwise the JSON in a code block",
  sources: { default: source },
};
