import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Router } from "@koa/router";
import Koa, { type Context, type Middleware } from "koa";
import type { Registry } from "prom-client";
import { type MatrixError, UnrecognizedError } from "../errors.js";
import { Deadline } from "../lifecycle/deadline.js";
import { type Logger, silentLogger } from "../logging.js";
import { requireHsToken } from "./auth.js";
import { DEFAULT_MAX_BODY_BYTES } from "./body.js";
import { handleErrors } from "./errors-middleware.js";
import type { AppserviceHttpHandlers } from "./handlers.js";
import {
  type AppserviceHttpMetrics,
  countRequests,
  createAppserviceHttpMetrics,
  serveMetrics,
} from "./metrics.js";
import { addAppserviceRoutes, isAppservicePath } from "./routes.js";

/**
 * Longer than the 120 s Synapse keeps an idle pooled connection, so Synapse always closes
 * first: a server-side close racing a reused connection fails a transaction push, and
 * Synapse then marks the appservice down and backs off.
 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 125_000;

export interface AppserviceHttpOptions {
  /** The registration's `hs_token`; every request under `/_matrix/app/` must carry it. */
  hsToken: string;
  handlers: AppserviceHttpHandlers;
  /** Where the HTTP metrics are registered and which `GET /metrics` serves. */
  metrics: Registry;
  logger?: Logger;
  /** Largest accepted request body; default `DEFAULT_MAX_BODY_BYTES` (10 MiB). */
  maxBodyBytes?: number;
  /**
   * Also serve the unprefixed legacy paths (`/transactions/…`, `/users/…`, `/rooms/…`,
   * `/_matrix/app/unstable/thirdparty/…`) for homeservers from before spec v1.1.
   * Default true. Synapse 1.90+ never calls them; turn this off if a bridge needs those paths.
   */
  legacyRoutes?: boolean;
  keepAliveTimeoutMs?: number;
}

export interface ListeningServer {
  /** The bound port; useful after listening on port 0. */
  port: number;
  server: Server;
  /**
   * Stops accepting connections and resolves once in-flight requests have been answered, or after
   * `timeoutMs` (default: no limit), when the connections still open are cut. Idempotent.
   */
  close(timeoutMs?: number): Promise<void>;
}

export interface AppserviceHttp {
  /**
   * The koa app. A bridge may `app.use()` its own routers: only paths under `/_matrix/app/`
   * (and the legacy paths) require the hs_token; anything else is open unless the bridge
   * adds `requireHsToken` itself. Add middleware before `listen()`: koa composes it then.
   */
  app: Koa;
  /** The router holding the appservice API, `GET /metrics` and `GET /health`. */
  router: Router;
  /** The hs_token check, for a bridge that wants it on routes of its own. */
  requireHsToken: Middleware;
  metrics: AppserviceHttpMetrics;
  /** Starts an HTTP server; `port` 0 picks a free one. Middleware added to `app` later is not served. */
  listen(port: number, host: string): Promise<ListeningServer>;
}

/** Builds the homeserver-facing HTTP API of an appservice on koa. */
export function createAppserviceHttp(options: AppserviceHttpOptions): AppserviceHttp {
  const log = options.logger ?? silentLogger();
  const legacyRoutes = options.legacyRoutes ?? true;
  const keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  const metrics = createAppserviceHttpMetrics(options.metrics);
  const auth = requireHsToken(options.hsToken);
  const app = new Koa();
  const router = new Router();

  // Without a listener koa prints escaped errors to stderr; keep them in the structured log.
  app.on("error", (err: unknown) => log.error({ err }, "Unhandled HTTP error"));
  app.use(countRequests(metrics, (ctx) => routeLabel(router, ctx)));
  app.use(handleErrors(log, (ctx) => unmatchedError(router, ctx)));
  app.use((ctx, next) => (isAppservicePath(ctx.path, legacyRoutes) ? auth(ctx, next) : next()));

  router.get("/health", (ctx) => {
    ctx.body = { status: "ok" };
  });
  router.get("/metrics", serveMetrics(options.metrics));
  addAppserviceRoutes(router, {
    handlers: options.handlers,
    logger: log,
    metrics,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    legacyRoutes,
  });
  app.use(router.routes());

  return {
    app,
    router,
    requireHsToken: auth,
    metrics,
    listen: (port, host) => listen(app, port, host, keepAliveTimeoutMs),
  };
}

async function listen(
  app: Koa,
  port: number,
  host: string,
  keepAliveTimeoutMs: number,
): Promise<ListeningServer> {
  const server = createServer(app.callback());
  server.keepAliveTimeout = keepAliveTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: (timeoutMs) => {
      closed ??= new Promise<void>((resolve, reject) => {
        // Since Node 19 this also drops idle keep-alive sockets, and in-flight requests
        // are answered with Connection: close, so it cannot hang on keepAliveTimeout.
        server.close((err) => (err ? reject(err) : resolve()));
      });
      if (timeoutMs === undefined) return closed;
      // A request still unanswered by then (a client sending its body slowly, say) is cut off.
      return new Deadline(timeoutMs).within(closed).then((inTime) => {
        if (!inTime) server.closeAllConnections();
        return closed;
      });
    },
  };
}

/** Route pattern for metrics; the raw path would give one time series per user ID. */
function routeLabel(router: Router, ctx: Context): string {
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === "string") return matched;
  // Rejected before routing (e.g. by auth): name the route the request was aimed at.
  const layer = router.match(ctx.path, ctx.method).path.findLast((l) => l.methods.length > 0);
  return typeof layer?.path === "string" ? layer.path : "unmatched";
}

/** 405 when the path exists with other methods, 404 otherwise; both `M_UNRECOGNIZED` per the spec. */
function unmatchedError(router: Router, ctx: Context): MatrixError {
  const allowed = new Set(router.match(ctx.path, ctx.method).path.flatMap((layer) => layer.methods));
  if (allowed.size === 0 || allowed.has(ctx.method))
    return new UnrecognizedError(404, "Unrecognized request");
  ctx.set("Allow", [...allowed].join(", "));
  return new UnrecognizedError(405, `Method ${ctx.method} is not allowed here`);
}
