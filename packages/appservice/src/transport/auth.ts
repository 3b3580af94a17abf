import { timingSafeEqual } from "node:crypto";
import type { Middleware } from "koa";
import { ForbiddenError, MissingTokenError } from "../errors.js";

/**
 * Compares a presented token with the expected one in time that depends only on their lengths,
 * as Python's `hmac.compare_digest` does for Synapse. The length is no secret (generated tokens
 * are all 64 hex digits); hashing both sides to hide it cost a SHA-256 per request.
 */
export function createTokenCheck(expected: string): (presented: string) => boolean {
  const expectedBytes = Buffer.from(expected, "utf8");
  return (presented) => {
    const presentedBytes = Buffer.from(presented, "utf8");
    if (presentedBytes.length !== expectedBytes.length) {
      // Still a comparison of the expected length, so a wrong length takes as long as a wrong token.
      timingSafeEqual(expectedBytes, expectedBytes);
      return false;
    }
    return timingSafeEqual(presentedBytes, expectedBytes);
  };
}

/** The token of an `Authorization: Bearer …` header; undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

/**
 * Koa middleware that lets a request through only with the homeserver's `hs_token`.
 * Missing token → 401 `M_MISSING_TOKEN`; wrong token → 403 `M_FORBIDDEN`.
 *
 * The legacy `?access_token=` is accepted when the header is absent or carries the same
 * token (spec: "Application services should ensure both match if both are provided").
 */
export function requireHsToken(hsToken: string): Middleware {
  const matches = createTokenCheck(hsToken);
  return async (ctx, next) => {
    const fromHeader = bearerToken(ctx.get("Authorization") || undefined);
    const fromQuery = ctx.query.access_token;
    if (Array.isArray(fromQuery)) throw new ForbiddenError("More than one access_token query parameter");
    if (fromHeader === undefined && fromQuery === undefined) {
      throw new MissingTokenError("Missing hs_token: send an Authorization: Bearer header");
    }
    if (fromHeader !== undefined && !matches(fromHeader)) {
      throw new ForbiddenError("Bad hs_token in the Authorization header");
    }
    if (fromQuery !== undefined && !matches(fromQuery)) {
      throw new ForbiddenError(
        fromHeader === undefined
          ? "Bad hs_token in the access_token query parameter"
          : "The access_token query parameter does not match the Authorization header",
      );
    }
    await next();
  };
}
