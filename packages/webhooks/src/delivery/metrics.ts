import { registeredMetric } from "@trestle/appservice";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface DeliveryMetrics {
  accepted: Counter;
  delivered: Counter;
  skipped: Counter<"reason">;
  retries: Counter<"kind">;
  failed: Counter;
  deadLettersDiscarded: Counter;
  templateErrors: Counter;
  depth: Gauge;
  latency: Histogram;
}

/** No label names a hook or a room: their number is unbounded. */
export function createDeliveryMetrics(registry: Registry): DeliveryMetrics {
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    registeredMetric(
      registry,
      name,
      Counter<L>,
      () => new Counter<L>({ name, help, labelNames, registers: [registry] }),
    );
  return {
    accepted: counter(
      "trestle_webhook_deliveries_accepted_total",
      "Webhooks persisted to the delivery queue",
    ),
    delivered: counter("trestle_webhook_deliveries_delivered_total", "Webhook messages sent to their room"),
    skipped: counter(
      "trestle_webhook_deliveries_skipped_total",
      "Webhooks not sent: the template rendered nothing (empty), or the hook was removed first (hook_removed)",
      ["reason"],
    ),
    retries: counter(
      "trestle_webhook_delivery_retries_total",
      "Failed delivery attempts that will be retried, by kind of failure (transient, permanent)",
      ["kind"],
    ),
    failed: counter(
      "trestle_webhook_deliveries_failed_total",
      "Webhooks given up on after repeated permanent failures (dead-lettered, kept in the store)",
    ),
    deadLettersDiscarded: counter(
      "trestle_webhook_dead_letters_discarded_total",
      "Dead letters discarded, the one that failed longest ago first, because their room held more than its cap (1,000 by default)",
    ),
    templateErrors: counter(
      "trestle_webhook_template_errors_total",
      "Webhooks whose template failed, sent with the generic template instead",
    ),
    depth: registeredMetric(
      registry,
      "trestle_webhook_delivery_queue_depth",
      Gauge,
      () =>
        new Gauge({
          name: "trestle_webhook_delivery_queue_depth",
          help: "Webhooks accepted and not yet delivered, including those being sent or waiting to retry",
          registers: [registry],
        }),
    ),
    latency: registeredMetric(
      registry,
      "trestle_webhook_delivery_latency_seconds",
      Histogram,
      () =>
        new Histogram({
          name: "trestle_webhook_delivery_latency_seconds",
          help: "Time from receiving a webhook to its message being in the room, retries included",
          buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
          registers: [registry],
        }),
    ),
  };
}
