import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { registeredMetric } from "../metrics-registry.js";

function counter<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  return registeredMetric(
    registry,
    name,
    Counter,
    () => new Counter({ name, help, labelNames, registers: [registry] }),
  );
}

/** The latency histogram's upper bounds, in seconds. */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The shape prom-client 15 keeps an unlabelled histogram's values in (`hashMap[""]`). */
interface HistogramValues {
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * Observations gathered in plain arrays and added to a prom-client histogram in one step, at
 * `fold()` (the dispatcher's completion flush, every few dozen ms under load): `observe` costs
 * ~180 ns a call, most of it label handling, which at 100,000 events/s is a few percent of a core.
 * The exported histogram is the same (every observation, same buckets, sum and count); it lags
 * the events by at most one flush. Should prom-client ever keep its values in another shape,
 * `record` falls back to calling `observe` for each value.
 */
export class LatencyRecorder {
  private readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  private sum = 0;
  private count = 0;
  private readonly direct: boolean;

  constructor(readonly histogram: Histogram) {
    this.direct = histogramValues(histogram) === undefined;
  }

  record(seconds: number): void {
    if (this.direct) {
      this.histogram.observe(seconds);
      return;
    }
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += seconds;
    this.count += 1;
  }

  /** Adds what was recorded since the last fold to the histogram. */
  fold(): void {
    if (this.count === 0) return;
    let values = histogramValues(this.histogram);
    if (!values) {
      // Reset (`registry.resetMetrics()`) since: recreate the empty series.
      this.histogram.zero({});
      values = histogramValues(this.histogram);
    }
    if (values) {
      values.sum += this.sum;
      values.count += this.count;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        const n = this.counts[i] as number;
        const bound = LATENCY_BUCKETS[i] as number;
        if (n > 0) values.bucketValues[bound] = (values.bucketValues[bound] ?? 0) + n;
      }
    }
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** The unlabelled values of a prom-client histogram, if they are where prom-client 15 keeps them. */
function histogramValues(histogram: Histogram): HistogramValues | undefined {
  const map = (histogram as unknown as { hashMap?: Record<string, HistogramValues | undefined> }).hashMap;
  const values = map?.[""];
  if (
    !values ||
    typeof values.sum !== "number" ||
    typeof values.count !== "number" ||
    typeof values.bucketValues !== "object" ||
    values.bucketValues === null ||
    !LATENCY_BUCKETS.every((b) => typeof values.bucketValues[b] === "number")
  ) {
    return undefined;
  }
  return values;
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
    queueDepth: registeredMetric(
      registry,
      "trestle_event_queue_depth",
      Gauge,
      () =>
        new Gauge({
          name: "trestle_event_queue_depth",
          help: "Room events accepted and not yet handled, including those being handled",
          registers: [registry],
        }),
    ),
    latency: registeredMetric(
      registry,
      "trestle_event_dispatch_latency_seconds",
      Histogram,
      () =>
        new Histogram({
          name: "trestle_event_dispatch_latency_seconds",
          help: "Time from queueing a room event to its handler settling: queue wait plus handling",
          buckets: LATENCY_BUCKETS,
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
