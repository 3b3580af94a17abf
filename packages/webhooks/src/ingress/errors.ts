import { MatrixError } from "@trestle/appservice";

/**
 * Every failure of the receiving side of a webhook. The route answers all of them the same way:
 * status `httpStatus`, JSON `toJSON()` (`{errcode, error, ...extra}`).
 *
 * Messages are written for the sender of the webhook and may end up in logs: they name the part
 * of the request that failed (a header, a position, a media type) and never repeat a secret, a
 * signature or the body.
 *
 * Error codes: Matrix reserves the `M_` prefix for codes its specification defines, so the codes
 * it has (`M_NOT_JSON`, `M_TOO_LARGE`, `M_FORBIDDEN`, `M_LIMIT_EXCEEDED`) are used with their spec
 * meaning, and the conditions it has no code for get a `TRESTLE_` code instead of a made-up
 * `M_` one that a future spec version could define differently.
 */
export class WebhookError extends MatrixError {}

/** 415: a media type (or charset, or content coding) this bridge does not decode. */
export class UnsupportedMediaTypeError extends WebhookError {
  constructor(message: string) {
    super(415, "TRESTLE_UNSUPPORTED_MEDIA_TYPE", message);
  }
}

/** 400: a body declared (or sniffed) as JSON that does not parse. */
export class WebhookNotJsonError extends WebhookError {
  constructor(message: string) {
    super(400, "M_NOT_JSON", message);
  }
}

/** 400: bytes that are not valid in the body's charset (UTF-8 unless declared otherwise). */
export class BadEncodingError extends WebhookError {
  constructor(message: string) {
    super(400, "TRESTLE_BAD_ENCODING", message);
  }
}

/** 413: the body is (or is declared to be) larger than the limit. */
export class BodyTooLargeError extends WebhookError {
  constructor(readonly limitBytes: number) {
    super(413, "M_TOO_LARGE", `Request body is larger than the limit of ${limitBytes} bytes`);
  }
}

/** 400: the body ended before its declared length, or the client went away while sending it. */
export class IncompleteBodyError extends WebhookError {
  constructor(message: string) {
    super(400, "TRESTLE_INCOMPLETE_BODY", message);
  }
}

export type SignatureProblem = "missing" | "malformed" | "mismatch" | "ambiguous";

const SIGNATURE_PROBLEM_TEXT: Record<SignatureProblem, string> = {
  missing: "is missing",
  malformed: "is malformed",
  mismatch: "does not match",
  ambiguous: "is repeated",
};

/** 403: a hook that requires a signature or token got none, or a wrong one. */
export class SignatureError extends WebhookError {
  constructor(
    /** The header that failed, as the sender spells it (e.g. `X-Hub-Signature-256`). */
    readonly header: string,
    readonly problem: SignatureProblem,
    detail?: string,
  ) {
    super(
      403,
      "M_FORBIDDEN",
      `${header} header ${SIGNATURE_PROBLEM_TEXT[problem]}${detail ? ` (${detail})` : ""}`,
    );
  }
}

/**
 * 429 with the spec's `retry_after_ms`. The route should also set `Retry-After: retryAfterSeconds`,
 * which is what webhook senders (as opposed to Matrix clients) read.
 */
export class RateLimitedError extends WebhookError {
  constructor(readonly retryAfterSeconds: number) {
    super(429, "M_LIMIT_EXCEEDED", "Too many requests to this webhook", {
      retry_after_ms: retryAfterSeconds * 1000,
    });
  }
}
