import type { Registry } from "prom-client";

/**
 * The metric named `name` on `registry`, made by `make` the first time. prom-client throws when a
 * name is registered twice, so a component built twice on one registry (two clients, a restarted
 * queue) shares the metric instead. A metric of another kind under that name is a programming
 * error, and throws.
 */
export function registeredMetric<T extends object>(
  registry: Registry,
  name: string,
  kind: abstract new (...args: never[]) => T,
  make: () => T,
): T {
  const existing: unknown = registry.getSingleMetric(name);
  if (existing === undefined) return make();
  if (!(existing instanceof kind)) throw new Error(`Metric ${name} is already registered as another kind`);
  return existing;
}
