import { Router, type RouterContext } from "@koa/router";
import { type Logger, MatrixError, registeredMetric } from "@trestle/appservice";
import { Counter, Histogram, type Registry } from "prom-client";
import type { WebhooksConfig } from "../config.js";
import type { DeliveryOutcome } from "../delivery/job.js";
import type { DeliveryQueue } from "../delivery/queue.js";
import type { HookManager } from "../hooks/hook-manager.js";
import type { HookRecord } from "../hooks/model.js";
import { redactWebhookUrl } from "../hooks/secrets.js";
import { type FormFields, parseWebhookBody, readLimitedBody } from "../ingress/body.js";
import { RateLimitedError } from "../ingress/errors.js";
import { type DeliveryKeyStore, deriveDeliveryKey } from "../ingress/idempotency.js";
import type { HookRateLimiter } from "../ingress/rate-limit.js";
import { verifyWebhookSignature } from "../ingress/signatures.js";
import {
  DeliveryFailedError,
  DeliveryPendingError,
  HookMisconfiguredError,
  MethodNotAllowedError,
  UnknownWebhookPathError,
} from "./errors.js";

/** The webhook URL's path; `:secret` is the credential and never reaches a log or a metric. */
export const WEBHOOK_ROUTE = "/webhooks/v1/:hookId/:secret";

export interface WebhookRouterDeps {
  /** Authenticates `(hookId, secret)`: 404 unknown hook, 403 wrong secret. */
  manager: Pick<HookManager, "authenticate">;
  queue: Pick<DeliveryQueue, "enqueue" | "describe">;
  rateLimiter: HookRateLimiter;
  deliveryKeys: DeliveryKeyStore;
  config: Pick<WebhooksConfig["webhooks"], "bodyLimitBytes" | "waitTimeoutMs">;
  logger: Logger;
  /** The process's registry (`appservice.metrics`). */
  metrics: Registry;
  /** Milliseconds clock (default Date.now). */
  now?: () => number;
}

type Ctx = RouterContext;

/** Facts about one request for its log line: never the secret, the URL or the body. */
interface RequestLog {
  hook?: string;
  method: string;
  path: string;
}

const BODY_METHODS = new Set(["POST", "PUT"]);

/**
 * The public webhook endpoint: `POST`/`PUT /webhooks/v1/:hookId/:secret`, and `GET` for hooks
 * with `allowGet` (the query string is the payload).
 *
 * Checks, in order: the hook and its secret (404, 403); the method (405 with `Allow`); the rate
 * limit (429 with `Retry-After`); the body size (413, `Connection: close`); the body (400, 415);
 * the signature, when the hook has one (403 naming the header); the delivery key (a redelivery
 * answers 200 `{"status":"duplicate"}`). Then the webhook is persisted to the queue and answered
 * 202 `{"status":"accepted","id"}`, or with `?wait=true` (or the hook's `wait`) once it is
 * delivered: 200 `{"status":"delivered","event_id","id"}`, or 502 `TRESTLE_DELIVERY_FAILED` /
 * `TRESTLE_DELIVERY_PENDING`. Every error is `{errcode, error}` with its status, one log line
 * naming the problem and the hook id, and nothing queued.
 */
export function createWebhookRouter(deps: WebhookRouterDeps): Router {
  const log = deps.logger.child({ component: "webhooks-http" });
  const now = deps.now ?? Date.now;
  const requests = requestCounter(deps.metrics);
  const durations = durationHistogram(deps.metrics);
  const router = new Router();
  /** Delivery keys of requests being queued right now: a concurrent duplicate must see them. */
  const claimed = new Set<string>();

  const respond = (ctx: Ctx, status: number, body: Record<string, unknown>) => {
    ctx.status = status;
    // Typed by hand: koa's lookup for an object body costs more than the rest of a 202.
    ctx.set("Content-Type", "application/json; charset=utf-8");
    ctx.body = JSON.stringify(body);
    ctx.set("Cache-Control", "no-store");
    requests.inc({ method: ctx.method, status: String(status) });
    const startedAt = ctx.state.webhookStartedAt;
    if (typeof startedAt === "number") {
      durations.observe({ status: String(status) }, (performance.now() - startedAt) / 1000);
    }
  };

  const fail = (ctx: Ctx, err: unknown, where: RequestLog, bodyRead: boolean) => {
    const error = err instanceof MatrixError ? err : undefined;
    if (error && error.httpStatus < 500) log.warn({ ...where, status: error.httpStatus }, error.message);
    else if (error) log.error({ ...where, status: error.httpStatus, err: error.message }, error.message);
    else log.error({ ...where, err }, "webhook request failed");
    if (error instanceof RateLimitedError) ctx.set("Retry-After", String(error.retryAfterSeconds));
    if (error instanceof MethodNotAllowedError) ctx.set("Allow", error.allowed.join(", "));
    // An unread body would be read (and thrown away) to reuse the connection; closing is cheaper.
    if (error?.httpStatus === 413 || (!bodyRead && hasBody(ctx))) ctx.set("Connection", "close");
    const status = error?.httpStatus ?? 500;
    respond(ctx, status, error?.toJSON() ?? { errcode: "M_UNKNOWN", error: "Internal server error" });
  };

  const accept = async (
    ctx: Ctx,
    hook: HookRecord,
    payload: unknown,
    receivedAt: number,
    where: RequestLog,
  ) => {
    const { key, header, ignored } = deriveDeliveryKey(hook.id, ctx.headers);
    if (ignored.length > 0) log.debug({ ...where, ignored }, "ignoring unusable delivery key headers");
    if (key !== undefined) {
      if (claimed.has(key)) return duplicate(ctx, where, header);
      claimed.add(key);
    }
    try {
      if (key !== undefined && (await deps.deliveryKeys.has(key))) return duplicate(ctx, where, header);
      const { jobId, done } = await deps.queue.enqueue({
        hookId: hook.id,
        roomId: hook.roomId,
        receivedAt,
        payload,
        headers: ctx.headers,
        deliveryKey: key,
      });
      // Not awaited: the key is claimed in memory at once (a redelivery now is caught), and its
      // NeDB write is a thread-pool round trip the 202 need not wait for. A crash before it lands
      // only risks posting a redelivery twice; the webhook itself is already in the journal.
      if (key !== undefined) void rememberKey(key, where);
      if (!(hook.wait || wantsWait(ctx.query.wait))) {
        if (log.isLevelEnabled("debug")) log.debug({ ...where, job: jobId }, "webhook accepted");
        return respond(ctx, 202, { status: "accepted", id: jobId });
      }
      const outcome = await waitFor(done, deps.config.waitTimeoutMs);
      answerOutcome(ctx, outcome, jobId, where);
    } finally {
      if (key !== undefined) claimed.delete(key);
    }
  };

  const duplicate = (ctx: Ctx, where: RequestLog, header: string | undefined) => {
    log.info({ ...where, header }, "redelivered webhook ignored: it was accepted before");
    respond(ctx, 200, { status: "duplicate" });
  };

  /** The job is queued whatever happens here: a lost key only risks a duplicate later. */
  const rememberKey = async (key: string, where: RequestLog) => {
    try {
      await deps.deliveryKeys.add(key);
    } catch (err) {
      log.error({ ...where, err }, "could not record a delivery key; a redelivery would be posted again");
    }
  };

  const answerOutcome = (
    ctx: Ctx,
    outcome: DeliveryOutcome | undefined,
    jobId: string,
    where: RequestLog,
  ) => {
    switch (outcome?.status) {
      case "delivered":
        log.debug({ ...where, job: jobId }, "webhook delivered while the sender waited");
        return respond(ctx, 200, { status: "delivered", id: jobId, event_id: outcome.eventId });
      case "skipped":
        return respond(ctx, 200, { status: "skipped", id: jobId, reason: outcome.reason });
      case "failed":
        throw new DeliveryFailedError(outcome.error, jobId);
      case "pending":
        throw new DeliveryPendingError(`Not delivered yet: ${outcome.error}`, jobId);
      case undefined: {
        const lastError = deps.queue.describe(jobId)?.lastError;
        const detail = `Not delivered within ${deps.config.waitTimeoutMs} ms`;
        throw new DeliveryPendingError(lastError ? `${detail} (last attempt: ${lastError})` : detail, jobId);
      }
    }
  };

  router.all(WEBHOOK_ROUTE, async (ctx) => {
    ctx.state.webhookStartedAt = performance.now();
    const receivedAt = now();
    // The path is redacted only when a line is logged: most requests log nothing at info.
    const where: RequestLog = {
      hook: logSafeId(ctx.params.hookId),
      method: ctx.method,
      get path() {
        return logPath(ctx);
      },
    };
    let bodyRead = false;
    try {
      const hook = await deps.manager.authenticate(ctx.params.hookId ?? "", ctx.params.secret ?? "");
      // A signature covers the body, and a GET has none: its query string would go unsigned, and
      // one signed header would pass any payload. So a hook that checks signatures takes no GET.
      const allowed = hook.allowGet && !hook.signature ? ["GET", "POST", "PUT"] : ["POST", "PUT"];
      if (!allowed.includes(ctx.method)) {
        const signedGet = ctx.method === "GET" && hook.allowGet && hook.signature;
        throw signedGet
          ? new MethodNotAllowedError(
              ctx.method,
              allowed,
              "; this webhook checks signatures, and a GET has no body to sign",
            )
          : new MethodNotAllowedError(ctx.method, allowed);
      }
      const limited = deps.rateLimiter.take(hook.id, hook.rateLimit && toRateLimit(hook.rateLimit));
      if (!limited.allowed) throw new RateLimitedError(limited.retryAfterSeconds);

      const hasBody = BODY_METHODS.has(ctx.method);
      let raw: Buffer = Buffer.alloc(0);
      if (hasBody) {
        raw = await readLimitedBody(ctx.req, deps.config.bodyLimitBytes);
        bodyRead = true;
      }
      // The signature covers the bytes as received: checked before anything parses them, so an
      // unsigned sender cannot make the bridge parse what it sends, nor learn why it was refused.
      if (hook.signature) {
        if (!hook.signingSecret) {
          throw new HookMisconfiguredError("This webhook requires a signature but has no signing secret");
        }
        verifyWebhookSignature(
          { scheme: hook.signature.scheme, secret: hook.signingSecret },
          ctx.headers,
          raw,
        );
      }
      const payload = hasBody
        ? parseWebhookBody({ contentType: ctx.req.headers["content-type"], raw }).payload
        : queryPayload(ctx.querystring);
      await accept(ctx, hook, payload, receivedAt, where);
    } catch (err) {
      fail(ctx, err, where, bodyRead);
    }
  });

  // Anything else under /webhooks: a JSON 404 (not koa's text), without echoing the path.
  router.all(/^\/webhooks(?:\/.*)?$/, (ctx) => {
    ctx.state.webhookStartedAt = performance.now();
    fail(ctx, new UnknownWebhookPathError(), { method: ctx.method, path: logPath(ctx) }, false);
  });

  return router;
}

/** How long the bridge took to answer, from routing to the response: the ack path's own share. */
function durationHistogram(registry: Registry): Histogram<"status"> {
  const name = "trestle_webhook_request_duration_seconds";
  return registeredMetric(
    registry,
    name,
    Histogram<"status">,
    () =>
      new Histogram({
        name,
        help: "Time from routing a webhook request to its response, by status",
        labelNames: ["status"],
        buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5, 30],
        registers: [registry],
      }),
  );
}

function requestCounter(registry: Registry): Counter<"method" | "status"> {
  const name = "trestle_webhook_requests_total";
  return registeredMetric(
    registry,
    name,
    Counter<"method" | "status">,
    () =>
      new Counter({
        name,
        help: "Webhook HTTP requests by method and response status",
        labelNames: ["method", "status"],
        registers: [registry],
      }),
  );
}

/** `?wait`, `?wait=true`, `?wait=1`, `?wait=yes`. */
function wantsWait(value: string | string[] | undefined): boolean {
  return typeof value === "string" && ["", "true", "1", "yes"].includes(value.toLowerCase());
}

/** The query string of a GET as the payload; `wait` is ours, not the sender's. */
function queryPayload(querystring: string): FormFields {
  const fields = new Map<string, string | string[]>();
  for (const [name, value] of new URLSearchParams(querystring)) {
    if (name === "wait") continue;
    const previous = fields.get(name);
    if (previous === undefined) fields.set(name, value);
    else if (Array.isArray(previous)) previous.push(value);
    else fields.set(name, [previous, value]);
  }
  return Object.fromEntries(fields);
}

function toRateLimit(limit: { perMinute: number; burst: number }) {
  return { ratePerMinute: limit.perMinute, burst: limit.burst };
}

/** Resolves to undefined after `ms`. */
async function waitFor<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function hasBody(ctx: Ctx): boolean {
  const length = ctx.req.headers["content-length"];
  return ctx.req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/**
 * The path with everything after the hook id (the secret) and the query replaced. A mistyped
 * URL (`/webhooks//v1/…`, `/webhooks/v2/…`) may carry a secret anywhere, so of a path that is not
 * `/webhooks/v1/<id>/…` only the first segment is kept.
 */
function logPath(ctx: Ctx): string {
  const redacted = redactWebhookUrl(ctx.url);
  const cut = redacted.search(/[?#]/);
  const path = cut === -1 ? redacted : redacted.slice(0, cut);
  const segments = path.split("/");
  const keep = segments[2]?.toLowerCase() === "v1" ? 4 : 2;
  const kept = segments.length > keep ? `${segments.slice(0, keep).join("/")}/<redacted>` : path;
  return cut === -1 ? kept : `${kept}?<redacted>`;
}

/** Hook ids are 16 characters of base64url; whatever a stranger sends is cut and cleaned. */
function logSafeId(id: string | undefined): string | undefined {
  return id?.slice(0, 64).replace(/[^\w-]/g, "?");
}
