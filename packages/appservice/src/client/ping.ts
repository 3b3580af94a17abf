import { MatrixApiError, MatrixConnectionError } from "./errors.js";

const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNRESET",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "TIMEOUT",
]);

/**
 * Turns a failed `HomeserverClient.ping()` into one sentence for the start-up log, naming the
 * side that is misconfigured. Codes per the spec's appservice ping endpoint and Synapse's
 * observed answers (`M_BAD_STATUS` carries the status our own server returned).
 */
export function diagnosePingFailure(err: unknown): string {
  if (err instanceof MatrixConnectionError) {
    const why = UNREACHABLE_CODES.has(err.code) ? err.code : `${err.code}: ${err.message}`;
    return `homeserver URL unreachable (${why}): check the homeserver url in the bridge config and that the homeserver is running.`;
  }
  if (!(err instanceof MatrixApiError)) {
    return `appservice ping failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  switch (err.errcode) {
    case "M_UNKNOWN_TOKEN":
    case "M_MISSING_TOKEN":
      return "as_token rejected: is the registration file loaded by the homeserver?";
    case "M_FORBIDDEN":
      // Synapse says "Mismatching application service ID in path" when the token is fine.
      return /mismatch/i.test(err.message)
        ? "appservice id does not match the registration the as_token belongs to: check `id` in the registration file."
        : "as_token rejected: is the registration file loaded by the homeserver?";
    case "M_NOT_FOUND":
      return "appservice id not known to the homeserver: check `id` in the registration file and that the homeserver loaded it.";
    case "M_UNRECOGNIZED":
      return "the homeserver does not support the appservice ping endpoint (Matrix v1.7); cannot check that it reaches us.";
    case "M_URL_NOT_SET":
      return "the homeserver reached no one: the registration has no `url`, so the homeserver will never send us transactions.";
    case "M_BAD_STATUS": {
      const status = typeof err.extra.status === "number" ? ` HTTP ${err.extra.status}` : " an error";
      return `the homeserver reached the appservice but got${status} back: check that hs_token in the registration matches the bridge's.`;
    }
    case "M_CONNECTION_FAILED":
      return "the homeserver could not connect to the appservice: check the registration `url` and that the bridge listens on an address the homeserver can reach.";
    case "M_CONNECTION_TIMEOUT":
      return "the homeserver timed out connecting to the appservice: check the registration `url`, firewalls, and that the bridge is not blocked.";
    default:
      return `appservice ping failed: HTTP ${err.httpStatus} ${err.errcode}: ${err.message}`;
  }
}
