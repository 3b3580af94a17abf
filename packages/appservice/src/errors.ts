/**
 * Errors that cross the HTTP boundary carry a Matrix `errcode` and an HTTP status,
 * so the transport layer can answer every failure the same way.
 */
export class MatrixError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }

  toJSON(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export class MissingTokenError extends MatrixError {
  constructor(message = "Missing access token") {
    super(401, "M_MISSING_TOKEN", message);
  }
}

export class ForbiddenError extends MatrixError {
  constructor(message = "Forbidden") {
    super(403, "M_FORBIDDEN", message);
  }
}

export class NotFoundError extends MatrixError {
  constructor(message = "Not found", errcode = "M_NOT_FOUND") {
    super(404, errcode, message);
  }
}

export class UnrecognizedError extends MatrixError {
  constructor(httpStatus: 404 | 405, message = "Unrecognized request") {
    super(httpStatus, "M_UNRECOGNIZED", message);
  }
}

export class NotJsonError extends MatrixError {
  constructor(message = "Content not JSON") {
    super(400, "M_NOT_JSON", message);
  }
}

export class BadJsonError extends MatrixError {
  constructor(message: string) {
    super(400, "M_BAD_JSON", message);
  }
}

export class TooLargeError extends MatrixError {
  constructor(limitBytes: number) {
    super(413, "M_TOO_LARGE", `Request body is larger than ${limitBytes} bytes`);
  }
}

/** Thrown at start-up or load time when a config or registration file is invalid. */
export class ConfigError extends Error {
  constructor(
    message: string,
    /** Each problem, already naming the offending path, e.g. `namespaces.users[0].regex: must be string`. */
    readonly problems: string[] = [],
  ) {
    super(problems.length ? `${message}:\n  - ${problems.join("\n  - ")}` : message);
    this.name = "ConfigError";
  }
}
