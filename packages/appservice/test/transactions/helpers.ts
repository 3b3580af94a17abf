import type { MatrixEvent, ParsedTransaction } from "../../src/transactions/types.js";

export function roomEvent(
  eventId: string,
  roomId: string,
  content: Record<string, unknown> = {},
): MatrixEvent {
  return {
    type: "m.room.message",
    event_id: eventId,
    room_id: roomId,
    sender: "@alice:hs",
    content: { msgtype: "m.text", body: `secret body of ${eventId}`, ...content },
    origin_server_ts: 0,
    unsigned: {},
  };
}

/** A parsed transaction with only the given parts non-empty. */
export function txn(events: MatrixEvent[], extra: Partial<ParsedTransaction> = {}): ParsedTransaction {
  return {
    events,
    ephemeral: [],
    toDevice: [],
    deviceLists: { changed: [], left: [] },
    deviceOneTimeKeysCount: {},
    deviceUnusedFallbackKeyTypes: {},
    dropped: 0,
    ...extra,
  };
}

/** A promise with its resolve exposed, to hold a handler until the test lets it go. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds, failing after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Reads a counter's value (summed over labels matching `labels`) from a registry. */
export async function metricValue(
  registry: { getSingleMetric(name: string): unknown },
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name) as
    | { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }
    | undefined;
  if (!metric) throw new Error(`No metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}
