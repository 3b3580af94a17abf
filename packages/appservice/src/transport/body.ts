import type { Context } from "koa";
import getRawBody from "raw-body";
import { MatrixError, NotJsonError, TooLargeError } from "../errors.js";

/**
 * Default request body limit: 10 MiB. Synapse puts at most 100 events (each at most
 * 64 KiB), 100 ephemeral events and 100 to-device messages in one transaction, so a full
 * one stays well under this. Too small a limit would stall the bridge: Synapse resends a
 * rejected transaction forever.
 */
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface ReadJsonOptions {
  limitBytes: number;
  /** An empty body reads as `{}` instead of failing with `M_NOT_JSON`. */
  allowEmpty?: boolean;
}

/** Reads and parses a JSON request body, mapping every failure to a Matrix error. */
export async function readJsonBody(ctx: Context, options: ReadJsonOptions): Promise<unknown> {
  return (await readJsonBodyWithBytes(ctx, options)).value;
}

/**
 * {@link readJsonBody}, also returning the body's bytes (UTF-8 JSON, a byte-order mark removed),
 * for a store that can keep them as they came.
 */
export async function readJsonBodyWithBytes(
  ctx: Context,
  options: ReadJsonOptions,
): Promise<{ bytes: Buffer; value: unknown }> {
  const { limitBytes } = options;
  const declared = ctx.request.length;
  // Refuse before reading a byte when the client already told us the size.
  if (declared !== undefined && declared > limitBytes) throw new TooLargeError(limitBytes);
  let bytes: Buffer;
  try {
    bytes = await getRawBody(ctx.req, { limit: limitBytes, length: declared ?? null });
  } catch (err) {
    throw rawBodyError(err, limitBytes);
  }
  if (hasByteOrderMark(bytes)) bytes = bytes.subarray(3);
  // Kept until its events are handled: never as a view that would pin a much larger buffer (a
  // slice of Node's small-buffer pool is fine, the pool is shared anyway).
  if (bytes.buffer.byteLength > 2 * bytes.byteLength + Buffer.poolSize) bytes = Buffer.from(bytes);
  const text = bytes.toString("utf8");
  if (options.allowEmpty && text.trim() === "") return { bytes, value: {} };
  try {
    return { bytes, value: JSON.parse(text) };
  } catch {
    throw new NotJsonError("Request body is not valid JSON");
  }
}

function hasByteOrderMark(bytes: Buffer): boolean {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

function rawBodyError(err: unknown, limitBytes: number): unknown {
  const type = (err as { type?: unknown } | null)?.type;
  switch (type) {
    case "entity.too.large":
      return new TooLargeError(limitBytes);
    case "request.size.invalid":
      return new NotJsonError("Request body length does not match Content-Length");
    case "request.aborted":
      return new MatrixError(400, "M_UNKNOWN", "Client closed the request before sending the whole body");
    default:
      return err;
  }
}
