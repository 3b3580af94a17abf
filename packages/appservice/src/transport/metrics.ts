import type { Context, Middleware } from "koa";
import { Counter, type Registry } from "prom-client";
import { registeredMetric } from "../metrics-registry.js";

export interface AppserviceHttpMetrics {
  /** Every HTTP request, by matched route pattern (never the raw path), method and status. */
  requests: Counter<"route" | "method" | "status">;
  /** Transactions received and parsed, including the homeserver's retries. */
  transactions: Counter;
  /** Events received in transactions, by kind; `invalid` counts the ones dropped as malformed. */
  events: Counter<"kind">;
}

export type EventKind = "room" | "ephemeral" | "to_device" | "invalid";

/**
 * Registers the HTTP metrics on `registry`. A second app on the same registry reuses the
 * metrics already there instead of failing on duplicate registration.
 */
export function createAppserviceHttpMetrics(registry: Registry): AppserviceHttpMetrics {
  return {
    requests: counter(registry, "trestle_appservice_http_requests_total", "HTTP requests served", [
      "route",
      "method",
      "status",
    ]),
    transactions: counter(registry, "trestle_appservice_transactions_total", "Transactions received", []),
    events: counter(registry, "trestle_appservice_events_received_total", "Events received in transactions", [
      "kind",
    ]),
  };
}

function counter<T extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: T[],
): Counter<T> {
  return registeredMetric(
    registry,
    name,
    Counter<T>,
    () => new Counter({ name, help, labelNames, registers: [registry] }),
  );
}

/** Counts each request once its final status is known. Must run outside the error middleware. */
export function countRequests(metrics: AppserviceHttpMetrics, routeOf: (ctx: Context) => string): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } finally {
      metrics.requests.inc({ route: routeOf(ctx), method: ctx.method, status: String(ctx.status) });
    }
  };
}

/** Serves the registry in the Prometheus text format. */
export function serveMetrics(registry: Registry): Middleware {
  return async (ctx) => {
    ctx.set("Content-Type", registry.contentType);
    ctx.body = await registry.metrics();
  };
}
