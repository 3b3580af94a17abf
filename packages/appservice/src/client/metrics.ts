import { Counter, Histogram, type Registry } from "prom-client";
import { registeredMetric } from "../metrics-registry.js";

export type RequestOutcome = "success" | "client_error" | "rate_limited" | "server_error" | "network_error";
export type RetryReason = "rate_limited" | "server_error" | "network_error";

export interface ClientMetrics {
  requests: Counter<"method" | "endpoint" | "outcome">;
  retries: Counter<"method" | "endpoint" | "reason">;
  duration: Histogram<"method" | "endpoint" | "outcome">;
}

/**
 * Registers (or, when another client already did on this registry, reuses) the homeserver
 * client's metrics. Reuse matters because prom-client throws on a duplicate name.
 */
export function createClientMetrics(registry: Registry): ClientMetrics {
  return {
    requests: registeredMetric(
      registry,
      "trestle_homeserver_requests_total",
      Counter,
      () =>
        new Counter({
          name: "trestle_homeserver_requests_total",
          help: "Client-server API calls to the homeserver, by final outcome after retries",
          labelNames: ["method", "endpoint", "outcome"] as const,
          registers: [registry],
        }),
    ),
    retries: registeredMetric(
      registry,
      "trestle_homeserver_request_retries_total",
      Counter,
      () =>
        new Counter({
          name: "trestle_homeserver_request_retries_total",
          help: "Retries of client-server API calls, by the reason of the failed attempt",
          labelNames: ["method", "endpoint", "reason"] as const,
          registers: [registry],
        }),
    ),
    duration: registeredMetric(
      registry,
      "trestle_homeserver_request_duration_seconds",
      Histogram,
      () =>
        new Histogram({
          name: "trestle_homeserver_request_duration_seconds",
          help: "Duration of client-server API calls including retries and waits",
          labelNames: ["method", "endpoint", "outcome"] as const,
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
          registers: [registry],
        }),
    ),
  };
}
