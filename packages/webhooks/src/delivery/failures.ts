import { MatrixApiError, MatrixConnectionError, MatrixError } from "@trestle/appservice";

/**
 * - `transient`: the homeserver is down, overloaded or rate limiting (network errors, 5xx, 429).
 *   Retried forever: the message gets through once it is back.
 * - `permanent`: the homeserver refused (4xx other than 429: the bot was kicked, the ghost is
 *   outside the namespace…), or our own code failed. Retried a few times in case it was a race,
 *   then dead-lettered.
 */
export type FailureKind = "transient" | "permanent";

export interface ClassifiedFailure {
  kind: FailureKind;
  /** For the log, the dead letter and the sender's 502; never contains a secret. */
  reason: string;
  /** What a 429 asked for, when it said. */
  retryAfterMs?: number;
}

/** Node's and undici's names for failures that never reached (or never heard from) the server. */
const TRANSIENT_ERROR_NAMES = new Set(["AbortError", "TimeoutError", "FetchError"]);
const TRANSIENT_CODES =
  /^(E(CONNREFUSED|CONNRESET|CONNABORTED|HOSTUNREACH|NETUNREACH|PIPE|AI_AGAIN|TIMEDOUT|NOTFOUND)|UND_ERR_\w+)$/;

export function classifyDeliveryError(err: unknown): ClassifiedFailure {
  if (err instanceof MatrixApiError) {
    const reason = `the homeserver answered ${err.httpStatus} ${err.errcode}: ${err.message}`;
    if (err.httpStatus === 429) {
      const failure: ClassifiedFailure = { kind: "transient", reason };
      if (err.retryAfterMs !== undefined) failure.retryAfterMs = err.retryAfterMs;
      return failure;
    }
    return { kind: err.httpStatus >= 500 ? "transient" : "permanent", reason };
  }
  if (err instanceof MatrixConnectionError) {
    return { kind: "transient", reason: `the homeserver could not be reached (${err.code})` };
  }
  if (err instanceof MatrixError) {
    const reason = `${err.errcode}: ${err.message}`;
    return { kind: err.httpStatus >= 500 || err.httpStatus === 429 ? "transient" : "permanent", reason };
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (TRANSIENT_ERROR_NAMES.has(err.name) || (typeof code === "string" && TRANSIENT_CODES.test(code))) {
      return { kind: "transient", reason: `${err.name}: ${err.message}` };
    }
    return { kind: "permanent", reason: `internal error: ${err.message}` };
  }
  return { kind: "permanent", reason: `internal error: ${String(err)}` };
}
