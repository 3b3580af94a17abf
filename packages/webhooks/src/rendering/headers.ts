import type { HeaderInput, WebhookHeaders } from "./types.js";

/**
 * Headers that carry credentials. Templates can show any header they see, and their output
 * lands in a room, so these never reach a template: a room admin could otherwise print the
 * hook's shared secret or a signature into the room.
 */
const SECRET_HEADER = /authorization|cookie|token|secret|signature|password|api[-_]?key/i;

/** Lower-case names, list values joined with ", ", credentials removed, no prototype. */
export function normalizeHeaders(headers: HeaderInput | undefined): WebhookHeaders {
  const normalized: Record<string, string> = Object.create(null);
  if (!headers) return normalized;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || SECRET_HEADER.test(name)) continue;
    normalized[name.toLowerCase()] = typeof value === "string" ? value : value.join(", ");
  }
  return normalized;
}
