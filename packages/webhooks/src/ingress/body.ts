import type { IncomingMessage } from "node:http";
import { TextDecoder } from "node:util";
import getRawBody from "raw-body";
import {
  BadEncodingError,
  BodyTooLargeError,
  IncompleteBodyError,
  UnsupportedMediaTypeError,
  WebhookNotJsonError,
} from "./errors.js";
import { readHeader } from "./headers.js";
import { findJsonSyntaxError, formatJsonSyntaxProblem } from "./json-syntax.js";

/**
 * Default body limit: 1 MiB. Alertmanager's grouped alerts outgrew hookshot's earlier 100 kB, and
 * a Matrix event caps at 64 KiB anyway, so anything bigger would only be trimmed away later.
 */
export const DEFAULT_WEBHOOK_BODY_LIMIT_BYTES = 1024 * 1024;

/** Form fields; a field sent more than once keeps every value, in order. */
export type FormFields = Record<string, string | string[]>;

export type ParsedWebhookBody =
  | {
      kind: "json";
      payload: unknown;
      rawText: string;
      /** The JSON came from Slack's `payload=<json>` form rather than a JSON body. */
      fromSlackForm: boolean;
    }
  | { kind: "form"; payload: FormFields; rawText: string }
  | { kind: "text"; payload: { text: string }; rawText: string };

export interface WebhookBodyInput {
  /** The Content-Type header as sent, or undefined when there was none. */
  contentType: string | undefined;
  raw: Buffer;
}

/**
 * Decodes a webhook body by its Content-Type:
 *
 * - `application/json`, `text/json` and any `+json` type: JSON (any JSON value).
 * - `application/x-www-form-urlencoded`: the fields. A form whose only field is `payload` is
 *   Slack's incoming-webhook form, so its value is parsed as JSON and returned as `kind: "json"`.
 * - any other `text/*`: `{ text }`.
 * - no Content-Type: JSON if the body is an object or array that parses, else `{ text }`. Clients
 *   that send no Content-Type are hand-written scripts, and most of them send JSON; sniffing only
 *   objects and arrays keeps a plain message such as `42` or `true` from turning into a number.
 * - everything else is refused with 415 rather than passed on undecoded: XML (a parser attack
 *   surface that no sender we template for needs), multipart (file uploads are not a message),
 *   binary types.
 *
 * A `charset` parameter is honoured with any WHATWG encoding label (UTF-8 when absent); bytes
 * invalid in it are a 400, never silently replaced.
 */
export function parseWebhookBody(input: WebhookBodyInput): ParsedWebhookBody {
  const media = parseMediaType(input.contentType);
  if (!media) return parseUntyped(input.raw);
  const decoder = decoderFor(media.charset);
  const format = formatOf(media);
  const rawText = decode(input.raw, decoder, "Request body");
  switch (format) {
    case "json":
      return { kind: "json", payload: parseJsonText(rawText, "Request body"), rawText, fromSlackForm: false };
    case "text":
      return { kind: "text", payload: { text: rawText }, rawText };
    case "form": {
      if (decoder.encoding.startsWith("utf-16")) {
        throw new UnsupportedMediaTypeError(`Forms in ${decoder.encoding} are not supported`);
      }
      const fields = parseForm(input.raw, decoder);
      const names = Object.keys(fields);
      const payload = fields.payload;
      if (names.length === 1 && typeof payload === "string") {
        return {
          kind: "json",
          payload: parseJsonText(payload, 'Form field "payload"'),
          rawText,
          fromSlackForm: true,
        };
      }
      return { kind: "form", payload: fields, rawText };
    }
  }
}

/**
 * Reads a request body into a Buffer, refusing more than `limitBytes`: at once when Content-Length
 * declares more, otherwise as soon as the stream passes the limit, so an oversized body is never
 * buffered. A content coding (gzip…) is refused: inflating would need its own size limit.
 *
 * After a 413 the rest of the body is left unread; the route should answer with
 * `Connection: close` so Node does not keep reading it to reuse the connection.
 */
export async function readLimitedBody(
  req: IncomingMessage,
  limitBytes: number = DEFAULT_WEBHOOK_BODY_LIMIT_BYTES,
): Promise<Buffer> {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0)
    throw new RangeError("limitBytes must be a whole number");
  const coding = readHeader(req.headers, "content-encoding");
  if (
    coding.state !== "absent" &&
    (coding.state === "ambiguous" || !/^\s*identity\s*$/i.test(coding.value))
  ) {
    throw new UnsupportedMediaTypeError("Content-Encoding is not supported: send the body uncompressed");
  }
  const declared = declaredLength(req);
  if (declared !== undefined && declared > limitBytes) throw new BodyTooLargeError(limitBytes);
  try {
    return await getRawBody(req, { limit: limitBytes, length: declared ?? null });
  } catch (err) {
    throw rawBodyError(err, limitBytes);
  }
}

function declaredLength(req: IncomingMessage): number | undefined {
  const header = readHeader(req.headers, "content-length");
  // Node's HTTP parser already refuses malformed and conflicting lengths.
  if (header.state !== "present" || !/^\s*\d+\s*$/.test(header.value)) return undefined;
  return Number(header.value);
}

function rawBodyError(err: unknown, limitBytes: number): unknown {
  switch ((err as { type?: unknown } | null)?.type) {
    case "entity.too.large":
      return new BodyTooLargeError(limitBytes);
    case "request.size.invalid":
      return new IncompleteBodyError("Request body length does not match Content-Length");
    case "request.aborted":
      return new IncompleteBodyError("Client closed the request before sending the whole body");
    default:
      return err;
  }
}

interface MediaType {
  type: string;
  subtype: string;
  charset: string | undefined;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9a-z-]+";
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})$`);
const ECHO_LIMIT = 100;

/** `undefined` for a missing or blank header. Parameters other than charset are ignored. */
function parseMediaType(header: string | undefined): MediaType | undefined {
  if (header === undefined || header.trim() === "") return undefined;
  const [essence = "", ...params] = header.split(";");
  const match = MEDIA_TYPE.exec(essence.trim().toLowerCase());
  if (!match) throw new UnsupportedMediaTypeError("Content-Type is not a valid media type");
  let charset: string | undefined;
  for (const param of params) {
    const eq = param.indexOf("=");
    if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== "charset") continue;
    charset = param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1");
  }
  return { type: match[1]!, subtype: match[2]!, charset };
}

function formatOf({ type, subtype }: MediaType): "json" | "form" | "text" {
  if (subtype === "json" || subtype.endsWith("+json")) return "json";
  if (type === "application" && subtype === "x-www-form-urlencoded") return "form";
  if (subtype === "xml" || subtype.endsWith("+xml")) {
    throw new UnsupportedMediaTypeError("XML bodies are not supported: send JSON, a form or plain text");
  }
  if (type === "multipart") {
    throw new UnsupportedMediaTypeError(
      "Multipart bodies are not supported: send JSON, a form or plain text",
    );
  }
  if (type === "text") return "text";
  const name = `${type}/${subtype}`.slice(0, ECHO_LIMIT);
  throw new UnsupportedMediaTypeError(
    `Content-Type ${name} is not supported: send JSON, a form or plain text`,
  );
}

function decoderFor(charset: string | undefined): TextDecoder {
  try {
    return new TextDecoder(charset ?? "utf-8", { fatal: true });
  } catch {
    const named =
      charset && new RegExp(`^${TOKEN}$`, "i").test(charset) ? ` ${charset.slice(0, ECHO_LIMIT)}` : "";
    throw new UnsupportedMediaTypeError(`The charset${named} is not supported`);
  }
}

function decode(bytes: Uint8Array, decoder: TextDecoder, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new BadEncodingError(`${what} is not valid ${decoder.encoding}`);
  }
}

function isBlank(text: string): boolean {
  return /^[ \t\n\r]*$/.test(text);
}

function parseJsonText(text: string, what: string): unknown {
  if (isBlank(text)) throw new WebhookNotJsonError(`${what} is empty, which is not JSON`);
  try {
    return JSON.parse(text);
  } catch {
    const problem = findJsonSyntaxError(text);
    throw new WebhookNotJsonError(
      problem
        ? `${what} is not valid JSON: ${formatJsonSyntaxProblem(problem)}`
        : `${what} is not valid JSON`,
    );
  }
}

function parseUntyped(raw: Buffer): ParsedWebhookBody {
  const rawText = decode(raw, new TextDecoder("utf-8", { fatal: true }), "Request body");
  const first = rawText.trimStart()[0];
  if (first === "{" || first === "[") {
    try {
      return { kind: "json", payload: JSON.parse(rawText), rawText, fromSlackForm: false };
    } catch {
      // Not JSON after all: a text message that happens to start with a bracket.
    }
  }
  return { kind: "text", payload: { text: rawText }, rawText };
}

const AMPERSAND = 0x26;
const EQUALS = 0x3d;

/**
 * application/x-www-form-urlencoded as the WHATWG URL standard parses it, working on bytes so the
 * declared charset applies to percent-encoded bytes too, except that bytes invalid in that charset
 * are an error instead of U+FFFD. Built with Object.fromEntries, so a field named `__proto__` is an
 * ordinary own property.
 */
function parseForm(raw: Buffer, decoder: TextDecoder): FormFields {
  const fields = new Map<string, string | string[]>();
  let fieldNo = 0;
  for (let start = 0; start <= raw.length; ) {
    const amp = raw.indexOf(AMPERSAND, start);
    const end = amp === -1 ? raw.length : amp;
    if (end > start) {
      fieldNo += 1;
      const pair = raw.subarray(start, end);
      const eq = pair.indexOf(EQUALS);
      const what = `Form field ${fieldNo}`;
      const name = decode(percentDecode(eq === -1 ? pair : pair.subarray(0, eq)), decoder, `${what}'s name`);
      const value = eq === -1 ? "" : decode(percentDecode(pair.subarray(eq + 1)), decoder, what);
      const previous = fields.get(name);
      if (previous === undefined) fields.set(name, value);
      else if (Array.isArray(previous)) previous.push(value);
      else fields.set(name, [previous, value]);
    }
    start = end + 1;
  }
  return Object.fromEntries(fields);
}

/** `+` is a space and `%XX` a byte; a `%` not followed by two hex digits stays as it is. */
function percentDecode(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  let o = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    const b = bytes[i]!;
    const hi = b === 0x25 ? hexValue(bytes[i + 1]) : -1;
    const lo = hi === -1 ? -1 : hexValue(bytes[i + 2]);
    if (lo !== -1) {
      out[o] = hi * 16 + lo;
      i += 2;
    } else {
      out[o] = b === 0x2b ? 0x20 : b;
    }
    o += 1;
  }
  return out.subarray(0, o);
}

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const lower = b | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}
