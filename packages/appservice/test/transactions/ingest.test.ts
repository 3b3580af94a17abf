import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { silentLogger } from "../../src/logging.js";
import { openNedbStores } from "../../src/stores/nedb/index.js";
import { openStores } from "../../src/stores/open.js";
import type { Stores } from "../../src/stores/types.js";
import { EventDispatcher, type EventHandler } from "../../src/transactions/dispatcher.js";
import {
  IngestUnavailableError,
  TransactionIngest,
  type TransactionIngestOptions,
} from "../../src/transactions/ingest.js";
import type { MatrixEvent, ParsedTransaction } from "../../src/transactions/types.js";
import { tempDir } from "../stores/helpers.js";
import { deferred, metricValue, roomEvent, sleep, txn, until } from "./helpers.js";

/** A running ingest over a set of stores; `stop` stops it and closes the stores, as an app would. */
interface Harness {
  ingest: TransactionIngest;
  dispatcher: EventDispatcher<MatrixEvent>;
  stores: Stores<MatrixEvent>;
  registry: Registry;
  stop(): Promise<void>;
}

type OpenStores = typeof openStores;

/** Both queue engines: the journal `Appservice` uses, and NeDB for every store. */
const engines: { name: string; open: OpenStores }[] = [
  { name: "transaction journal", open: openStores },
  { name: "NeDB", open: openNedbStores },
];

async function harness(
  openEngine: OpenStores,
  handler: EventHandler<MatrixEvent>,
  options: {
    dataDir?: string;
    ingest?: Partial<TransactionIngestOptions<ParsedTransaction>>;
    handlerTimeoutMs?: number;
  } = {},
): Promise<Harness> {
  const stores = await openEngine<MatrixEvent>({
    ...(options.dataDir ? { dataDir: options.dataDir } : { inMemory: true }),
    logger: silentLogger(),
    // Abandoned instances in these tests must not rewrite a file another instance has reopened.
    autocompactionIntervalMs: 0,
  });
  const registry = new Registry();
  const dispatcher = new EventDispatcher<MatrixEvent>({
    handler,
    transactions: stores.transactions,
    processed: stores.processedEvents,
    registry,
    handlerTimeoutMs: options.handlerTimeoutMs ?? 0,
  });
  const ingest = new TransactionIngest({ dispatcher, registry, ...options.ingest });
  await ingest.start();
  return {
    ingest,
    dispatcher,
    stores,
    registry,
    stop: async () => {
      await ingest.stop({ drain: true, timeoutMs: 2_000 });
      await stores.close();
    },
  };
}

for (const engine of engines)
  describe(`TransactionIngest (${engine.name})`, () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    const running: Harness[] = [];
    beforeEach(async () => {
      ({ dir, cleanup } = await tempDir("trestle-ingest-"));
    });
    afterEach(async () => {
      for (const h of running.splice(0)) await h.stop().catch(() => {});
      await cleanup();
    });

    async function start(
      handler: EventHandler<MatrixEvent>,
      options?: Parameters<typeof harness>[2],
    ): Promise<Harness> {
      const h = await harness(engine.open, handler, options);
      running.push(h);
      return h;
    }

    it("persists the transaction before resolving, then dispatches it", async () => {
      const gate = deferred();
      const handled: string[] = [];
      const h = await start(async (event) => {
        await gate.promise;
        handled.push(event.event_id);
      });
      await h.ingest.accept("1", txn([roomEvent("$1", "!a:hs"), roomEvent("$2", "!a:hs")]));
      const pending = await h.stores.transactions.pending();
      assert.deepEqual(
        pending.flatMap((t) => t.events.map((e) => e.event_id)),
        ["$1", "$2"],
      );
      gate.resolve();
      await until(() => handled.length === 2);
      assert.equal(await h.dispatcher.drain(), true);
      assert.equal(await h.stores.transactions.count(), 0);
    });

    it("answers a repeated txnId with the first attempt's outcome, without handling twice", async () => {
      const handled: string[] = [];
      const h = await start((event) => void handled.push(event.event_id));
      const body = txn([roomEvent("$1", "!a:hs")]);
      const first = h.ingest.accept("7", body);
      const concurrentRetry = h.ingest.accept("7", body);
      await Promise.all([first, concurrentRetry]);
      await h.ingest.accept("7", body);
      assert.equal(await h.dispatcher.drain(), true);
      assert.deepEqual(handled, ["$1"]);
      assert.equal(await metricValue(h.registry, "trestle_transactions_total", { outcome: "duplicate" }), 2);
      assert.equal(await metricValue(h.registry, "trestle_transactions_total", { outcome: "accepted" }), 1);
    });

    it("accepts a reused txnId carrying different events (homeserver counter restarted)", async () => {
      const handled: string[] = [];
      const h = await start((event) => void handled.push(event.event_id));
      await h.ingest.accept("1", txn([roomEvent("$1", "!a:hs")]));
      await h.ingest.accept("1", txn([roomEvent("$2", "!a:hs")]));
      assert.equal(await h.dispatcher.drain(), true);
      assert.deepEqual(handled, ["$1", "$2"]);
    });

    it("accepts a reused txnId whose events differ only in the middle, or whose ephemeral data differs", async () => {
      const handled: string[] = [];
      const ephemeral: unknown[] = [];
      const h = await start((event) => void handled.push(event.event_id), {
        ingest: { sink: { onEphemeral: (events) => void ephemeral.push(...events) } },
      });
      const ids = (middle: string) => [
        roomEvent("$a", "!a:hs"),
        roomEvent(middle, "!a:hs"),
        roomEvent("$z", "!a:hs"),
      ];
      await h.ingest.accept("1", txn(ids("$m1")));
      await h.ingest.accept("1", txn(ids("$m2")));
      const typing = (user: string) => ({
        type: "m.typing",
        room_id: "!a:hs",
        content: { user_ids: [user] },
      });
      await h.ingest.accept("2", { ...txn([]), ephemeral: [typing("@x:hs")] });
      await h.ingest.accept("2", { ...txn([]), ephemeral: [typing("@y:hs")] });
      assert.equal(await h.dispatcher.drain(), true);
      // The repeated $a and $z are skipped by event id; $m2 is new, so the transaction was not a replay.
      assert.deepEqual(handled, ["$a", "$m1", "$z", "$m2"]);
      assert.equal(ephemeral.length, 2, "the second typing update is not mistaken for a replay");
    });

    it("accepts a reused txnId whose server-made event ids differ only after their 16th character", async () => {
      const handled: string[] = [];
      const h = await start((event) => void handled.push(event.event_id));
      // Ids of room versions 1 and 2 are the sending server's to make, sequential ones included.
      await h.ingest.accept("1", txn([roomEvent("$1700000000000001:hs.example", "!a:hs")]));
      await h.ingest.accept("1", txn([roomEvent("$1700000000000002:hs.example", "!a:hs")]));
      assert.equal(await h.dispatcher.drain(), true);
      assert.deepEqual(handled, ["$1700000000000001:hs.example", "$1700000000000002:hs.example"]);
    });

    it("skips events resent under a new txnId after a restart", async () => {
      const handled: string[] = [];
      const first = await harness(engine.open, (event) => void handled.push(event.event_id), {
        dataDir: dir,
      });
      await first.ingest.accept("1", txn([roomEvent("$1", "!a:hs"), roomEvent("$2", "!b:hs")]));
      await first.stop();

      const second = await start((event) => void handled.push(event.event_id), { dataDir: dir });
      // Same txnId, as a homeserver that restarted its counter would send; the LRU is empty anyway.
      await second.ingest.accept("1", txn([roomEvent("$2", "!b:hs"), roomEvent("$3", "!b:hs")]));
      assert.equal(await second.dispatcher.drain(), true);
      assert.deepEqual(handled, ["$1", "$2", "$3"]);
      assert.equal(await metricValue(second.registry, "trestle_events_duplicate_total"), 1);
    });

    it("delays the acknowledgement while the queue is over the limit, until it drains to the low-water mark", async () => {
      const gates = new Map<string, () => void>();
      let open = false;
      const h = await start(
        (event) =>
          new Promise<void>((resolve) => {
            if (open) resolve();
            else gates.set(event.event_id, resolve);
          }),
        { ingest: { maxPendingEvents: 10, lowWaterMark: 4 } },
      );
      // One room, so events run one at a time and the test controls the drain.
      const events = Array.from({ length: 15 }, (_, i) => roomEvent(`$${i}`, "!a:hs"));
      let acked = false;
      let depthAtAck = -1;
      const accepting = h.ingest.accept("1", txn(events)).then(() => {
        acked = true;
        depthAtAck = h.dispatcher.depth;
      });
      await until(() => gates.has("$0"));
      await sleep(20);
      assert.equal(acked, false, "no 200 while 15 events wait");
      assert.equal(await h.stores.transactions.count(), 1, "but the events are already persisted");
      for (let i = 0; i < 15 && !acked; i++) {
        await until(() => gates.has(`$${i}`));
        gates.get(`$${i}`)?.();
        await sleep(2);
      }
      await accepting;
      assert.equal(depthAtAck, 4);
      assert.equal(await metricValue(h.registry, "trestle_transaction_backpressure_waits_total"), 1);
      open = true;
      for (const release of gates.values()) release();
      // Below the limit, accepting does not wait.
      await h.ingest.accept("2", txn([roomEvent("$x", "!b:hs")]));
    });

    it("recovers after a crash: acknowledged events are dispatched exactly once", async () => {
      const handled: string[] = [];
      const crashed = await harness(
        engine.open,
        async (event) => {
          // Events of the second transaction are still being handled when the process "dies".
          if (event.content.batch === 2) await new Promise(() => {});
          handled.push(event.event_id);
        },
        { dataDir: dir },
      );
      await crashed.ingest.accept(
        "1",
        txn([roomEvent("$1", "!a:hs", { batch: 1 }), roomEvent("$2", "!b:hs", { batch: 1 })]),
      );
      assert.equal(await crashed.dispatcher.drain(), true);
      await crashed.ingest.accept(
        "2",
        txn([roomEvent("$3", "!a:hs", { batch: 2 }), roomEvent("$4", "!b:hs", { batch: 2 })]),
      );
      await crashed.ingest.accept("3", txn([roomEvent("$5", "!a:hs", { batch: 3 })]));
      await until(() => crashed.dispatcher.depth === 3);
      // Abandoned without stop(): no flush, no close, as after kill -9.

      const recovered = await start((event) => void handled.push(event.event_id), { dataDir: dir });
      // The homeserver never saw a 200 for a transaction in flight at the crash, so it resends it.
      await recovered.ingest.accept("3", txn([roomEvent("$5", "!a:hs", { batch: 3 })]));
      assert.equal(await recovered.dispatcher.drain(), true);
      // Sorted equality with five distinct ids: each handled exactly once, none lost.
      assert.deepEqual([...handled].sort(), ["$1", "$2", "$3", "$4", "$5"]);
      assert.ok(
        handled.indexOf("$3") < handled.indexOf("$5"),
        "room !a:hs keeps its order across the restart",
      );
    });

    it("hands crypto data to the sink before queueing events, and survives a failing sink", async () => {
      const calls: string[] = [];
      const h = await start((event) => void calls.push(`event:${event.event_id}`), {
        ingest: {
          sink: {
            onToDevice: async (events, txnId) => {
              await sleep(5);
              calls.push(`toDevice:${txnId}:${events.map((e) => e.type).join()}`);
            },
            onDeviceLists: (lists) => void calls.push(`deviceLists:${lists.changed.join()}`),
            onDeviceKeyCounts: (counts) =>
              void calls.push(`keys:${Object.keys(counts.oneTimeKeysCount).join()}`),
            onEphemeral: () => {
              throw new Error("typing handler broke");
            },
          },
        },
      });
      await h.ingest.accept(
        "1",
        txn([roomEvent("$1", "!a:hs")], {
          toDevice: [
            { type: "m.room_key", sender: "@b:hs", content: {}, to_user_id: "@bot:hs", to_device_id: "D" },
          ],
          deviceLists: { changed: ["@b:hs"], left: [] },
          deviceOneTimeKeysCount: { "@bot:hs": { D: { signed_curve25519: 3 } } },
          ephemeral: [{ type: "m.typing", room_id: "!a:hs", content: { user_ids: [] } }],
        }),
      );
      await h.dispatcher.drain();
      assert.deepEqual(calls, ["toDevice:1:m.room_key", "deviceLists:@b:hs", "keys:@bot:hs", "event:$1"]);
      assert.equal(
        await metricValue(h.registry, "trestle_transaction_sink_failures_total", { sink: "ephemeral" }),
        1,
      );
      // Transactions with nothing for a sink do not call it, and ephemeral-only ones store nothing.
      await h.ingest.accept(
        "2",
        txn([], { ephemeral: [{ type: "m.presence", sender: "@b:hs", content: {} }] }),
      );
      assert.equal(calls.length, 4);
      assert.equal(await h.stores.transactions.count(), 0);
    });

    it("refuses transactions with a 503 before start and after stop", async () => {
      const stores = await engine.open<MatrixEvent>({ inMemory: true, logger: silentLogger() });
      const dispatcher = new EventDispatcher<MatrixEvent>({
        handler: () => {},
        transactions: stores.transactions,
        processed: stores.processedEvents,
      });
      const ingest = new TransactionIngest({ dispatcher });
      await assert.rejects(ingest.accept("1", txn([])), (err: unknown) => {
        assert.ok(err instanceof IngestUnavailableError);
        assert.equal(err.httpStatus, 503);
        return true;
      });
      await ingest.start();
      await ingest.accept("1", txn([roomEvent("$1", "!a:hs")]));
      await ingest.stop({ drain: true });
      assert.equal(await stores.transactions.count(), 0, "drained before stopping");
      await assert.rejects(ingest.accept("2", txn([])), IngestUnavailableError);
      await stores.close();
    });
  });

describe("TransactionIngest: what is persisted", () => {
  it("hands the store the body text only when its events are as sent and it holds no to-device messages", async () => {
    const stores = await openStores<MatrixEvent>({ inMemory: true, logger: silentLogger() });
    const bodies: (string | Uint8Array | undefined)[] = [];
    const transactions = stores.transactions;
    const dispatcher = new EventDispatcher<MatrixEvent>({
      handler: () => {},
      processed: stores.processedEvents,
      transactions: {
        ...transactions,
        append: (txnId, events, options) => {
          bodies.push(options?.body);
          return transactions.append(txnId, events, options);
        },
        pending: () => transactions.pending(),
        remove: (seqs) => transactions.remove(seqs),
        count: () => transactions.count(),
        close: () => transactions.close(),
      },
    });
    const ingest = new TransactionIngest({ dispatcher });
    await ingest.start();
    const events = [roomEvent("$1", "!a:hs")];
    const body = JSON.stringify({ events });
    await ingest.accept("1", txn(events), { body, eventsAsSent: true });
    await ingest.accept("2", txn([roomEvent("$2", "!a:hs")]), { body, eventsAsSent: false });
    const toDevice = [
      { type: "m.room_key", sender: "@b:hs", content: {}, to_user_id: "@u:hs", to_device_id: "D" },
    ];
    await ingest.accept("3", txn([roomEvent("$3", "!a:hs")], { toDevice }), { body, eventsAsSent: true });
    await ingest.accept("4", txn([roomEvent("$4", "!a:hs")]));
    assert.deepEqual(bodies, [body, undefined, undefined, undefined]);
    await ingest.stop({ drain: true });
    await stores.close();
  });
});
