import assert from "node:assert/strict";
import { Counter, Gauge, Registry } from "prom-client";
import { registeredMetric } from "../src/metrics-registry.js";

describe("registeredMetric", () => {
  it("makes a metric once per registry and hands the same one out after", () => {
    const registry = new Registry();
    const make = () => new Counter({ name: "demo_total", help: "demo", registers: [registry] });
    const first = registeredMetric(registry, "demo_total", Counter, make);
    const second = registeredMetric(registry, "demo_total", Counter, make);
    assert.equal(first, second);
    first.inc(2);
    assert.equal(registry.getMetricsAsArray().length, 1);
  });

  it("throws when the name is taken by another kind of metric", () => {
    const registry = new Registry();
    new Gauge({ name: "taken", help: "a gauge", registers: [registry] });
    assert.throws(
      () => registeredMetric(registry, "taken", Counter, () => new Counter({ name: "taken", help: "x" })),
      /already registered as another kind/,
    );
  });
});
