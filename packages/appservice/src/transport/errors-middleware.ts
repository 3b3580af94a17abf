import type { Context, Middleware } from "koa";
import { MatrixApiError } from "../client/errors.js";
import { MatrixError } from "../errors.js";
import type { Logger } from "../logging.js";

/**
 * Answers every failure as Matrix JSON `{errcode, error}` with one log line: warn for
 * client errors, error for server errors. Requests nothing handled (koa's default empty
 * 404) become the error `unmatched` returns, so routes a bridge adds later still count.
 */
export function handleErrors(log: Logger, unmatched: (ctx: Context) => MatrixError): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body == null) throw unmatched(ctx);
    } catch (err) {
      respondWithError(ctx, err, log);
    }
  };
}

function respondWithError(ctx: Context, err: unknown, log: Logger): void {
  const error = toMatrixError(err);
  // Only the path: the query string may carry a legacy access_token.
  const where = { method: ctx.method, path: ctx.path, status: error.httpStatus, errcode: error.errcode };
  if (error.httpStatus >= 500) log.error({ ...where, err }, "Request failed");
  else log.warn(where, error.message);
  if (ctx.headerSent) return;
  ctx.status = error.httpStatus;
  ctx.body = error.toJSON();
  // The rest of the body was never read; closing is the only way to resync the connection.
  if (error.httpStatus === 413) ctx.set("Connection", "close");
}

function toMatrixError(err: unknown): MatrixError {
  // A call we made to the homeserver failed while answering it: that is our failure (502), not
  // its status and errcode echoed back (a 401 M_UNKNOWN_TOKEN would blame the wrong token).
  if (err instanceof MatrixApiError) {
    return new MatrixError(502, "M_UNKNOWN", `A request to the homeserver failed: ${err.message}`);
  }
  if (err instanceof MatrixError) return err;
  // koa's ctx.throw and http-errors: keep client errors their author chose to expose.
  const { status, expose, message } = (err ?? {}) as {
    status?: unknown;
    expose?: unknown;
    message?: unknown;
  };
  if (typeof status === "number" && status >= 400 && status < 500 && expose === true) {
    return new MatrixError(status, "M_UNKNOWN", typeof message === "string" ? message : "Bad request");
  }
  return new MatrixError(500, "M_UNKNOWN", "Internal server error");
}
