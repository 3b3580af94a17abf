import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** prom-client throws on a duplicate name, so a second instance on one registry shares the metric. */
function reuse<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function counter<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  return reuse(registry, name, () => new Counter({ name, help, labelNames, registers: [registry] }));
}

export interface DispatchMetrics {
  dispatched: Counter;
  failures: Counter<"reason">;
  duplicates: Counter;
  queueDepth: Gauge;
  latency: Histogram;
}

export function createDispatchMetrics(registry: Registry): DispatchMetrics {
  return {
    dispatched: counter(
      registry,
      "trestle_events_dispatched_total",
      "Room events handed to the event handler",
    ),
    failures: counter(
      registry,
      "trestle_event_handler_failures_total",
      "Room events whose handler threw (reason=error) or did not settle in time (reason=timeout)",
      ["reason"],
    ),
    duplicates: counter(
      registry,
      "trestle_events_duplicate_total",
      "Room events skipped because their event id was already handled",
    ),
    queueDepth: reuse(
      registry,
      "trestle_event_queue_depth",
      () =>
        new Gauge({
          name: "trestle_event_queue_depth",
          help: "Room events accepted and not yet handled, including those being handled",
          registers: [registry],
        }),
    ),
    latency: reuse(
      registry,
      "trestle_event_dispatch_latency_seconds",
      () =>
        new Histogram({
          name: "trestle_event_dispatch_latency_seconds",
          help: "Time from queueing a room event to its handler settling: queue wait plus handling",
          buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
          registers: [registry],
        }),
    ),
  };
}

export interface IngestMetrics {
  transactions: Counter<"outcome">;
  sinkFailures: Counter<"sink">;
  backPressureWaits: Counter;
}

export function createIngestMetrics(registry: Registry): IngestMetrics {
  return {
    transactions: counter(
      registry,
      "trestle_transactions_total",
      "Transactions received from the homeserver: accepted, or duplicate (same txnId and content)",
      ["outcome"],
    ),
    sinkFailures: counter(
      registry,
      "trestle_transaction_sink_failures_total",
      "Ephemeral, to-device or device-list deliveries whose sink threw",
      ["sink"],
    ),
    backPressureWaits: counter(
      registry,
      "trestle_transaction_backpressure_waits_total",
      "Transactions whose acknowledgement waited for the event queue to drain",
    ),
  };
}
