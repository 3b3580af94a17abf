import { randomBytes } from "node:crypto";
import { normalizeHeaders } from "../rendering/headers.js";
import type { HeaderInput, WebhookHeaders } from "../rendering/types.js";

/** What the route hands to the queue for one accepted webhook request. */
export interface DeliveryRequest {
  hookId: string;
  /** The hook's room: jobs are ordered per room. */
  roomId: string;
  /** When the request arrived (ms since the epoch); the message's timestamp. Default: now. */
  receivedAt?: number;
  /** The parsed body (`parseWebhookBody(...).payload`), or the query parameters of a GET. */
  payload: unknown;
  /** Request headers; only what templates may see is kept (see {@link templateHeaders}). */
  headers: HeaderInput;
  /** The delivery key the route claimed, if the sender sent one; kept for operators. */
  deliveryKey?: string;
}

/** A queued webhook, as persisted. */
export interface DeliveryJob {
  /** Random, unguessable; answered to the sender as `id`. */
  id: string;
  hookId: string;
  roomId: string;
  /** Increases with every job of the room; jobs are delivered in this order. */
  seq: number;
  receivedAt: number;
  payload: unknown;
  headers: WebhookHeaders;
  deliveryKey?: string;
}

/** A job that was given up on: kept in the store for an operator, never silently dropped. */
export interface FailedDelivery extends DeliveryJob {
  failure: DeliveryFailure;
}

export interface DeliveryFailure {
  /** Why it failed, in words the webhook's sender and an operator can act on. */
  reason: string;
  /** Attempts made, the last included. */
  attempts: number;
  /** When it was given up on (ms since the epoch). */
  at: number;
}

/**
 * How a delivery ended, as `enqueue(...).done` resolves. It never rejects.
 *
 * - `delivered`: the message is in the room.
 * - `skipped`: nothing was to be sent (the template rendered nothing).
 * - `failed`: given up (dead-lettered after permanent errors, or the hook was removed meanwhile).
 * - `pending`: the queue stopped first; the job stays persisted and is sent after a restart.
 */
export type DeliveryOutcome =
  | { status: "delivered"; eventId: string }
  | { status: "skipped"; reason: string }
  | { status: "failed"; error: string }
  | { status: "pending"; error: string };

const JOB_ID_BYTES = 12;

/**
 * Job ids, 96 random bits each: they are answered to senders and must not let one sender guess
 * another's. Bytes are drawn for 256 ids at a time, because one `randomBytes` call per id shows
 * on the ack path.
 */
export class JobIdSource {
  private pool = Buffer.alloc(0);
  private offset = 0;

  next(): string {
    if (this.offset + JOB_ID_BYTES > this.pool.length) {
      this.pool = randomBytes(JOB_ID_BYTES * 256);
      this.offset = 0;
    }
    const id = this.pool.toString("base64url", this.offset, this.offset + JOB_ID_BYTES);
    this.offset += JOB_ID_BYTES;
    return id;
  }
}

/**
 * Transport and proxy headers say nothing about the webhook and can identify the sender's
 * network (`x-forwarded-for`), so they are not stored with the job nor shown to templates.
 */
const TRANSPORT_HEADERS = new Set([
  "accept-encoding",
  "connection",
  "content-length",
  "expect",
  "forwarded",
  "host",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "via",
  "x-real-ip",
]);

/** Longer values are cut: templates show event names and ids, not kilobytes of header. */
const MAX_HEADER_VALUE_CHARS = 1_024;

/**
 * The headers a template may use (`{{@headers.[x-github-event]}}`): lower-case names, no
 * credentials (authorization, tokens, signatures, cookies: see normalizeHeaders), no transport
 * or proxy headers, values at most 1,024 characters.
 */
export function templateHeaders(headers: HeaderInput | undefined): WebhookHeaders {
  const kept: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(normalizeHeaders(headers))) {
    if (TRANSPORT_HEADERS.has(name) || name.startsWith("x-forwarded-")) continue;
    kept[name] = value.length > MAX_HEADER_VALUE_CHARS ? value.slice(0, MAX_HEADER_VALUE_CHARS) : value;
  }
  return kept;
}
