import { MatrixError } from "../errors.js";

export interface RequestDescription {
  /** HTTP method of the failed request. */
  method: string;
  /** Path without the query string: tokens never travel in it, but keep logs short and uniform. */
  path: string;
}

/** The homeserver answered with a non-2xx status. */
export class MatrixApiError extends MatrixError {
  readonly method: string;
  readonly path: string;
  /** How long the homeserver asked us to wait (429 only), in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    httpStatus: number,
    errcode: string,
    message: string,
    request: RequestDescription,
    extra: Record<string, unknown> = {},
    retryAfterMs?: number,
  ) {
    super(httpStatus, errcode, message, extra);
    this.method = request.method;
    this.path = request.path;
    this.retryAfterMs = retryAfterMs;
  }

  override toString(): string {
    return `${this.name}: ${this.method} ${this.path} -> ${this.httpStatus} ${this.errcode}: ${this.message}`;
  }
}

/**
 * The request never got an HTTP answer: DNS failure, refused or reset connection, timeout.
 * `code` is the system or undici code (`ECONNREFUSED`, `ENOTFOUND`, `UND_ERR_SOCKET`) or `TIMEOUT`.
 */
export class MatrixConnectionError extends Error {
  readonly method: string;
  readonly path: string;

  constructor(
    readonly code: string,
    message: string,
    request: RequestDescription,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "MatrixConnectionError";
    this.method = request.method;
    this.path = request.path;
  }

  /** The request certainly never reached the homeserver, so even a non-idempotent one may be resent. */
  get neverSent(): boolean {
    return NEVER_SENT_CODES.has(this.code);
  }
}

const NEVER_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

export function isMatrixApiError(err: unknown, errcode?: string): err is MatrixApiError {
  return err instanceof MatrixApiError && (errcode === undefined || err.errcode === errcode);
}
