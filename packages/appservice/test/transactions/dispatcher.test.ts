import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Registry } from "prom-client";
import { silentLogger } from "../../src/logging.js";
import { TransactionJournal } from "../../src/stores/journal/journal.js";
import { openNedbStores } from "../../src/stores/nedb/index.js";
import { openStores } from "../../src/stores/open.js";
import type { Stores } from "../../src/stores/types.js";
import { EventDispatcher, type EventDispatcherOptions } from "../../src/transactions/dispatcher.js";
import type { MatrixEvent } from "../../src/transactions/types.js";
import { capturingLogger } from "../stores/helpers.js";
import { deferred, metricValue, roomEvent, sleep, until } from "./helpers.js";

/** Both queue engines; their processed stores answer `hasSync`, the test of batched writes does not. */
const engines = [
  { name: "transaction journal", open: openStores },
  { name: "NeDB", open: openNedbStores },
];

for (const engine of engines)
  describe(`EventDispatcher (${engine.name})`, () => {
    let stores: Stores<MatrixEvent>;
    let registry: Registry;
    const dispatchers: EventDispatcher<MatrixEvent>[] = [];

    beforeEach(async () => {
      stores = await engine.open<MatrixEvent>({ inMemory: true, logger: silentLogger() });
      registry = new Registry();
    });
    afterEach(async () => {
      for (const d of dispatchers.splice(0)) await d.stop(100);
      await stores.close();
    });

    function dispatcher(
      handler: EventDispatcherOptions<MatrixEvent>["handler"],
      options: Partial<EventDispatcherOptions<MatrixEvent>> = {},
    ): EventDispatcher<MatrixEvent> {
      const d = new EventDispatcher<MatrixEvent>({
        handler,
        transactions: stores.transactions,
        processed: stores.processedEvents,
        registry,
        logger: silentLogger(),
        ...options,
      });
      dispatchers.push(d);
      return d;
    }

    /** Persists then queues, as the ingest does. */
    async function push(
      d: EventDispatcher<MatrixEvent>,
      txnId: string,
      events: MatrixEvent[],
    ): Promise<void> {
      d.enqueue(await stores.transactions.append(txnId, events));
    }

    /**
     * Pushes 10 transactions of 30 events spread at random over `roomCount` rooms through a handler
     * with random delays; returns what each room saw and the peak parallelism.
     */
    async function runRandomLoad(roomCount: number, roomConcurrency: number) {
      const rooms = Array.from({ length: roomCount }, (_, i) => `!room${i}:hs`);
      const expected = new Map(rooms.map((r) => [r, [] as string[]]));
      const seen = new Map(rooms.map((r) => [r, [] as string[]]));
      const runningInRoom = new Map<string, number>();
      let running = 0;
      let maxRunning = 0;
      let maxInOneRoom = 0;
      const d = dispatcher(
        async (event) => {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          const inRoom = (runningInRoom.get(event.room_id) ?? 0) + 1;
          runningInRoom.set(event.room_id, inRoom);
          maxInOneRoom = Math.max(maxInOneRoom, inRoom);
          await sleep(Math.random() * 3);
          seen.get(event.room_id)?.push(event.event_id);
          runningInRoom.set(event.room_id, inRoom - 1);
          running -= 1;
        },
        { roomConcurrency },
      );
      await d.start();
      let n = 0;
      for (let t = 0; t < 10; t++) {
        const events = Array.from({ length: 30 }, () => {
          const room = rooms[Math.floor(Math.random() * rooms.length)]!;
          const event = roomEvent(`$${n++}`, room);
          expected.get(room)?.push(event.event_id);
          return event;
        });
        await push(d, `t${t}`, events);
        // Let handlers run while later transactions arrive, so rooms are busy when events join them.
        await sleep(1);
      }
      assert.equal(await d.drain(10_000), true);
      return { seen, expected, maxRunning, maxInOneRoom };
    }

    it("keeps each room's order while handling rooms in parallel, within the concurrency bound", async () => {
      const { seen, expected, maxRunning, maxInOneRoom } = await runRandomLoad(12, 4);
      assert.deepEqual(seen, expected);
      assert.equal(maxRunning, 4, "rooms ran in parallel, never more than the bound");
      assert.equal(maxInOneRoom, 1);
      assert.equal(await metricValue(registry, "trestle_events_dispatched_total"), 300);
      // Every completion was written: nothing left pending, every id remembered.
      assert.equal(await stores.transactions.count(), 0);
      assert.equal(await stores.processedEvents.has("$299"), true);
      assert.equal(await metricValue(registry, "trestle_event_queue_depth"), 0);
    });

    it("never runs two events of one room at once, even with spare concurrency", async () => {
      const { seen, expected, maxRunning, maxInOneRoom } = await runRandomLoad(3, 8);
      assert.equal(maxInOneRoom, 1);
      assert.equal(maxRunning, 3);
      assert.deepEqual(seen, expected);
    });

    it("logs and counts a throwing handler without blocking the room, and marks the event handled", async () => {
      const { logger, records } = capturingLogger();
      const handled: string[] = [];
      const d = dispatcher(
        (event) => {
          if (event.event_id === "$bad") throw new Error("boom");
          handled.push(event.event_id);
        },
        { logger },
      );
      await d.start();
      await push(d, "t1", [roomEvent("$bad", "!a:hs"), roomEvent("$after", "!a:hs")]);
      await push(d, "t2", [roomEvent("$later", "!a:hs")]);
      assert.equal(await d.drain(), true);
      assert.deepEqual(handled, ["$after", "$later"]);
      assert.equal(
        await metricValue(registry, "trestle_event_handler_failures_total", { reason: "error" }),
        1,
      );
      assert.equal(await stores.processedEvents.has("$bad"), true, "a failed event is not retried forever");
      const logged = records.find((r) => r.msg === "Event handler failed");
      assert.equal(logged?.level, 50);
      assert.equal(logged?.eventId, "$bad");
      assert.equal(logged?.roomId, "!a:hs");
      assert.ok(!JSON.stringify(records).includes("secret body"), "no message body in logs");
    });

    it("moves a room on past a handler that never settles", async () => {
      const handled: string[] = [];
      const d = dispatcher(
        async (event) => {
          if (event.event_id === "$stuck") await new Promise(() => {});
          handled.push(event.event_id);
        },
        { handlerTimeoutMs: 30 },
      );
      await d.start();
      await push(d, "t1", [roomEvent("$stuck", "!a:hs"), roomEvent("$next", "!a:hs")]);
      assert.equal(await d.drain(), true);
      assert.deepEqual(handled, ["$next"]);
      assert.equal(
        await metricValue(registry, "trestle_event_handler_failures_total", { reason: "timeout" }),
        1,
      );
    });

    it("times out a handler at its own deadline even when another's timeout starts a new handler", async () => {
      const d = dispatcher(() => new Promise(() => {}), { handlerTimeoutMs: 300 });
      const timeouts = () =>
        metricValue(registry, "trestle_event_handler_failures_total", { reason: "timeout" });
      await d.start();
      const started = performance.now();
      await push(d, "t1", [roomEvent("$a1", "!a:hs"), roomEvent("$a2", "!a:hs")]);
      await sleep(150);
      await push(d, "t2", [roomEvent("$b1", "!b:hs")]);
      // $a1 times out at ~300 ms and $a2 starts then (deadline ~600); $b1's deadline is ~450.
      while ((await timeouts()) < 2) await sleep(5);
      const second = performance.now() - started;
      assert.ok(second < 540, `$b1 timed out after ${Math.round(second)} ms, not at its own deadline`);
      await d.stop(0);
    });

    it("never abandons a handler before its timeout, even one started as another is abandoned", async () => {
      const started: number[] = [];
      // One room at a time: each handler starts in the watchdog's tick that abandons the one before.
      const d = dispatcher(
        () => {
          started.push(performance.now());
          return new Promise(() => {});
        },
        { handlerTimeoutMs: 20, roomConcurrency: 1 },
      );
      await d.start();
      await push(
        d,
        "t1",
        ["!a:hs", "!b:hs", "!c:hs", "!d:hs"].map((room, i) => roomEvent(`$${i}`, room)),
      );
      await until(() => started.length === 4);
      for (let i = 1; i < started.length; i++) {
        const ran = (started[i] as number) - (started[i - 1] as number);
        assert.ok(ran >= 20, `handler ${i - 1} was abandoned after ${ran.toFixed(1)} ms of its 20`);
      }
      await d.stop(0);
    });

    it("waits forever with an infinite timeout", async () => {
      const handled: string[] = [];
      const d = dispatcher(
        async (event) => {
          await sleep(60);
          handled.push(event.event_id);
        },
        { handlerTimeoutMs: Number.POSITIVE_INFINITY },
      );
      await d.start();
      await push(d, "t1", [roomEvent("$slow", "!a:hs")]);
      assert.equal(await d.drain(), true);
      assert.deepEqual(handled, ["$slow"]);
      assert.equal(
        await metricValue(registry, "trestle_event_handler_failures_total", { reason: "timeout" }),
        0,
      );
    });

    it("times handlers out one by one, and only logs a timed-out handler that settles later", async () => {
      const { logger, records } = capturingLogger("info");
      const late = deferred();
      const handled: string[] = [];
      const d = dispatcher(
        async (event) => {
          if (event.event_id === "$late") await late.promise;
          else if (event.event_id === "$slow") await sleep(60);
          handled.push(event.event_id);
        },
        { handlerTimeoutMs: 30, logger },
      );
      await d.start();
      await push(d, "t1", [
        roomEvent("$late", "!a:hs"),
        roomEvent("$a2", "!a:hs"),
        roomEvent("$slow", "!b:hs"),
      ]);
      await push(d, "t2", [roomEvent("$b2", "!b:hs")]);
      assert.equal(await d.drain(), true);
      // Both rooms moved on; $slow (60 ms) and $late were abandoned at 30 ms.
      assert.deepEqual(handled.sort(), ["$a2", "$b2"]);
      assert.equal(
        await metricValue(registry, "trestle_event_handler_failures_total", { reason: "timeout" }),
        2,
      );
      late.resolve();
      await until(
        () => records.filter((r) => r.msg === "Timed-out event handler finished after all").length === 2,
      );
      assert.deepEqual(handled.sort(), ["$a2", "$b2", "$late", "$slow"]);
      assert.equal(await stores.transactions.count(), 0, "each event completed once");
    });

    it("yields to the event loop during a burst of handlers that settle at once", async () => {
      let handled = 0;
      const d = dispatcher(() => void handled++, { roomConcurrency: 4 });
      await d.start();
      const events = Array.from({ length: 5_000 }, (_, i) => roomEvent(`$${i}`, `!r${i % 4}:hs`));
      await push(d, "t1", events);
      const seenByIo = await new Promise<number>((resolve) => setImmediate(() => resolve(handled)));
      assert.ok(seenByIo > 0 && seenByIo < 5_000, `other work ran after ${seenByIo} of 5000 events`);
      assert.equal(await d.drain(), true);
      assert.equal(handled, 5_000);
    });

    it("skips events already handled, whether written to the store or still in the batch", async () => {
      await stores.processedEvents.add("$old");
      const handled: string[] = [];
      // A long flush interval keeps `$dup` in the unwritten batch when its second copy comes up.
      const d = dispatcher((event) => void handled.push(event.event_id), { flushIntervalMs: 60_000 });
      await d.start();
      await push(d, "t1", [roomEvent("$old", "!a:hs"), roomEvent("$dup", "!a:hs")]);
      await push(d, "t2", [roomEvent("$dup", "!a:hs"), roomEvent("$new", "!a:hs")]);
      assert.equal(await d.drain(), true);
      assert.deepEqual(handled, ["$dup", "$new"]);
      assert.equal(await metricValue(registry, "trestle_events_duplicate_total"), 2);
      assert.equal(await stores.transactions.count(), 0);
    });

    it("recovers pending transactions on start, in order, skipping what was already handled", async () => {
      await stores.transactions.append("1", [roomEvent("$1", "!a:hs"), roomEvent("$2", "!b:hs")]);
      await stores.transactions.append("2", [roomEvent("$3", "!a:hs")]);
      await stores.processedEvents.add("$2");
      const handled: string[] = [];
      const d = dispatcher((event) => void handled.push(event.event_id));
      assert.equal(await d.start(), 3);
      await push(d, "3", [roomEvent("$4", "!a:hs")]);
      assert.equal(await d.drain(), true);
      assert.deepEqual(handled, ["$1", "$3", "$4"]);
      assert.equal(await stores.transactions.count(), 0);
    });

    it("on stop, finishes running handlers and leaves unstarted events pending", async () => {
      const gate = deferred();
      const handled: string[] = [];
      const started: string[] = [];
      const d = dispatcher(
        async (event) => {
          started.push(event.event_id);
          if (event.event_id === "$1") await gate.promise;
          handled.push(event.event_id);
        },
        { roomConcurrency: 1 },
      );
      await d.start();
      await push(d, "t1", [roomEvent("$1", "!a:hs")]);
      await push(d, "t2", [roomEvent("$2", "!b:hs")]);
      // Handlers start from a macrotask after enqueue; wait for $1 to be running.
      await until(() => started.length === 1 && d.depth === 2);
      const stopping = d.stop(5_000);
      await sleep(10);
      gate.resolve();
      await stopping;
      assert.deepEqual(handled, ["$1"]);
      const pending = await stores.transactions.pending();
      assert.deepEqual(
        pending.map((t) => t.txnId),
        ["t2"],
      );
      assert.equal(await stores.processedEvents.has("$1"), true);
      assert.throws(() => d.enqueue(pending[0]!), /stopped/);
    });

    it("hands an event abandoned by a stop to the next run, which handles it once", async () => {
      const gate = deferred();
      const handled: string[] = [];
      const d = dispatcher(async (event) => {
        if (event.event_id === "$slow") await gate.promise;
        handled.push(event.event_id);
      });
      await d.start();
      await push(d, "t1", [roomEvent("$fast", "!a:hs"), roomEvent("$slow", "!b:hs")]);
      await until(() => handled.length === 1);
      await d.stop(20);
      gate.resolve();
      await sleep(5);
      const again: string[] = [];
      const next = dispatcher((event) => void again.push(event.event_id));
      assert.equal(await next.start(), 2);
      assert.equal(await next.drain(), true);
      assert.deepEqual(again, ["$slow"]);
      assert.equal(await stores.transactions.count(), 0);
      assert.equal(await stores.processedEvents.has("$slow"), true);
    });

    it("exports a dispatch latency observation for every handled event", async () => {
      const d = dispatcher(async () => {});
      await d.start();
      await push(
        d,
        "t1",
        Array.from({ length: 250 }, (_, i) => roomEvent(`$${i}`, `!r${i % 5}:hs`)),
      );
      await push(d, "t2", [roomEvent("$0", "!r0:hs")]);
      assert.equal(await d.drain(), true);
      const text = await registry.getSingleMetricAsString("trestle_event_dispatch_latency_seconds");
      // Duplicates are not handled, so not timed.
      assert.match(text, /^trestle_event_dispatch_latency_seconds_count 250$/m);
      assert.match(text, /^trestle_event_dispatch_latency_seconds_bucket\{le="\+Inf"\} 250$/m);
      const sum = Number(/^trestle_event_dispatch_latency_seconds_sum (\S+)$/m.exec(text)?.[1]);
      assert.ok(sum > 0 && sum < 250, `sum ${sum}`);
      registry.resetMetrics();
      await push(d, "t3", [roomEvent("$new", "!r0:hs")]);
      assert.equal(await d.drain(), true);
      assert.match(
        await registry.getSingleMetricAsString("trestle_event_dispatch_latency_seconds"),
        /^trestle_event_dispatch_latency_seconds_count 1$/m,
      );
    });

    it("gives a handler its whole timeout even after slow synchronous handlers in the same turn", async () => {
      const { logger, records } = capturingLogger();
      const d = dispatcher(
        (event) => {
          if (event.event_id === "$slow") {
            const until = performance.now() + 300;
            while (performance.now() < until) {}
            return;
          }
          if (event.event_id === "$async") return sleep(50);
        },
        { logger, handlerTimeoutMs: 200, roomConcurrency: 1 },
      );
      await d.start();
      await push(d, "t1", [
        roomEvent("$first", "!a:hs"),
        roomEvent("$slow", "!b:hs"),
        roomEvent("$async", "!c:hs"),
      ]);
      assert.equal(await d.drain(), true);
      assert.deepEqual(
        records.filter((r) => /timed out/.test(String(r.msg))),
        [],
        "the async handler took 50 ms of its 200",
      );
    });

    it("keeps idle rooms for their next events, but not without bound", async () => {
      const seen: string[] = [];
      const d = dispatcher((event) => {
        seen.push(event.event_id);
      });
      await d.start();
      await push(d, "t1", [roomEvent("$1", "!a:hs"), roomEvent("$2", "!b:hs")]);
      assert.equal(await d.drain(), true);
      assert.equal(d.roomsHeld, 2, "idle rooms are kept");
      await push(d, "t2", [roomEvent("$3", "!a:hs"), roomEvent("$4", "!a:hs")]);
      assert.equal(await d.drain(), true);
      assert.deepEqual(seen, ["$1", "$2", "$3", "$4"]);
      for (let t = 0; t < 30; t++) {
        await push(
          d,
          `many${t}`,
          Array.from({ length: 100 }, (_, i) => roomEvent(`$m${t}-${i}`, `!room${t * 100 + i}:hs`)),
        );
      }
      assert.equal(await d.drain(), true);
      assert.equal(seen.length, 3_004);
      assert.ok(d.roomsHeld <= 1_001, `${d.roomsHeld} rooms held after 3,002 distinct rooms`);
    });

    it("writes completions in batches, processed ids before removing their transaction", async () => {
      const writes: string[] = [];
      const processed = stores.processedEvents;
      const transactions = stores.transactions;
      const d = dispatcher(() => {}, {
        processed: {
          has: (id) => processed.has(id),
          add: (id) => processed.add(id),
          size: () => processed.size(),
          close: () => processed.close(),
          addMany: async (ids) => {
            writes.push(`processed:${ids.length}`);
            await processed.addMany(ids);
          },
        },
        transactions: {
          append: (txnId, events) => transactions.append(txnId, events),
          pending: () => transactions.pending(),
          count: () => transactions.count(),
          close: () => transactions.close(),
          remove: async (seqs) => {
            writes.push(`removed:${seqs.length}`);
            await transactions.remove(seqs);
          },
        },
        flushIntervalMs: 200,
      });
      for (let t = 0; t < 5; t++) {
        await transactions.append(
          `t${t}`,
          Array.from({ length: 20 }, (_, i) => roomEvent(`$${t}-${i}`, `!r${i % 3}:hs`)),
        );
      }
      await d.start();
      assert.equal(await d.drain(), true);
      assert.deepEqual(writes, ["processed:100", "removed:5"]);
    });
  });

describe("EventDispatcher on the transaction journal file", () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "trestle-dispatch-"));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  async function records(fileName = "transactions.journal"): Promise<Record<string, unknown>[]> {
    const text = await readFile(path.join(dataDir, fileName), "utf8");
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it("writes a done transaction's ids only as its done mark, and a restart still knows them", async () => {
    const stores = await openStores<MatrixEvent>({ dataDir, logger: silentLogger() });
    const slow = deferred();
    const handled: string[] = [];
    const d = new EventDispatcher<MatrixEvent>({
      handler: async (event) => {
        if (event.event_id === "$b2") await slow.promise;
        handled.push(event.event_id);
      },
      transactions: stores.transactions,
      processed: stores.processedEvents,
      logger: silentLogger(),
    });
    await d.start();
    const a = await stores.transactions.append("a", [roomEvent("$a1", "!r1:hs"), roomEvent("$a2", "!r2:hs")]);
    d.enqueue(a);
    const b = await stores.transactions.append("b", [roomEvent("$b1", "!r1:hs"), roomEvent("$b2", "!r3:hs")]);
    d.enqueue(b);
    await until(() => handled.includes("$b1"), 5_000, "$b1 handled");
    await d.flush();
    // `a` is done: its ids are implied by its done mark. `b` is not: `$b1` is written out.
    const done = (await records()).filter((r) => r.op === "done");
    assert.deepEqual(done, [{ op: "done", seqs: [a.seq], ids: ["$b1"] }]);
    assert.ok(!(await records()).some((r) => r.op === "ids"), "no separate ids record");
    slow.resolve();
    assert.equal(await d.drain(), true);
    assert.deepEqual((await records()).filter((r) => r.op === "done").at(-1), { op: "done", seqs: [b.seq] });

    // As a killed process leaves it (no close, so no compaction): replaying the done marks restores the ids.
    await copyFile(path.join(dataDir, "transactions.journal"), path.join(dataDir, "copy.journal"));
    const replayed = await TransactionJournal.open({
      dataDir,
      fileName: "copy.journal",
      logger: silentLogger(),
    });
    assert.deepEqual(replayed.processedEvents.windowIds().sort(), ["$a1", "$a2", "$b1", "$b2"]);
    assert.equal(await replayed.count(), 0);
    await replayed.close();
    await d.stop();
    await stores.close();
  });

  it("lets the journal free a handled transaction before its done mark, unless an id went unclaimed", async () => {
    const journal = await TransactionJournal.open<MatrixEvent>({ dataDir, logger: silentLogger() });
    const released: number[] = [];
    const release = journal.releaseHandled.bind(journal);
    journal.releaseHandled = (seq) => {
      released.push(seq);
      release(seq);
    };
    const processed = journal.processedEvents;
    const claim = processed.claimSync.bind(processed);
    processed.claimSync = (id) => {
      if (id === "$lookup-fails") throw new Error("disk on fire");
      return claim(id);
    };
    const handled: string[] = [];
    const d = new EventDispatcher<MatrixEvent>({
      handler: async (event) => {
        handled.push(event.event_id);
      },
      transactions: journal,
      processed,
      logger: silentLogger(),
      flushIntervalMs: 60_000, // no done mark during the test unless asked for
    });
    await d.start();
    const a = await journal.append("a", [roomEvent("$a1", "!r1:hs"), roomEvent("$a2", "!r2:hs")]);
    d.enqueue(a);
    const b = await journal.append("b", [roomEvent("$lookup-fails", "!r1:hs")]);
    d.enqueue(b);
    await until(() => handled.length === 3, 5_000, "all three handled");
    assert.deepEqual(released, [a.seq], "b's id is only written at the flush: b must stay in the file");

    // Killed after a compaction but before the done marks: `a` is not handled again, `b` is.
    await journal.compact();
    await copyFile(path.join(dataDir, "transactions.journal"), path.join(dataDir, "copy.journal"));
    const replayed = await TransactionJournal.open<MatrixEvent>({
      dataDir,
      fileName: "copy.journal",
      logger: silentLogger(),
    });
    assert.deepEqual(
      (await replayed.pending()).map((t) => t.txnId),
      ["b"],
    );
    assert.equal(replayed.processedEvents.hasSync("$a1"), true);
    assert.equal(replayed.processedEvents.hasSync("$a2"), true);
    await replayed.close();

    // The done marks still come, and replay cleanly after the compaction that dropped `a`.
    assert.equal(await d.drain(), true);
    assert.equal(await journal.count(), 0);
    await copyFile(path.join(dataDir, "transactions.journal"), path.join(dataDir, "copy2.journal"));
    const final = await TransactionJournal.open<MatrixEvent>({
      dataDir,
      fileName: "copy2.journal",
      logger: silentLogger(),
    });
    assert.equal(await final.count(), 0);
    assert.deepEqual(final.processedEvents.windowIds().sort(), ["$a1", "$a2", "$lookup-fails"]);
    await final.close();
    await d.stop();
    await journal.close();
  });

  it("marks done, in the next run, a released transaction whose done mark failed to be written", async () => {
    const journal = await TransactionJournal.open<MatrixEvent>({ dataDir, logger: silentLogger() });
    const processed = journal.processedEvents;
    const complete = processed.complete.bind(processed);
    let failing = true;
    processed.complete = async (completion) => {
      if (failing) throw new Error("disk full");
      return complete(completion);
    };
    const handled: string[] = [];
    const options = {
      handler: async (event: MatrixEvent) => {
        handled.push(event.event_id);
      },
      transactions: journal,
      processed,
      logger: silentLogger(),
      flushIntervalMs: 60_000,
    };
    const first = new EventDispatcher<MatrixEvent>(options);
    await first.start();
    const a = await journal.append("a", [roomEvent("$a1", "!r1:hs")]);
    first.enqueue(a);
    await until(() => handled.length === 1, 5_000, "$a1 handled");
    await first.stop(); // its last flush fails: no done mark
    assert.equal(await journal.count(), 1);

    failing = false;
    const second = new EventDispatcher<MatrixEvent>(options);
    assert.equal(await second.start(), 0, "nothing to handle again");
    assert.equal(await second.drain(), true);
    assert.deepEqual(handled, ["$a1"]);
    assert.equal(await journal.count(), 0, "its done mark is written");
    await second.stop();
    await journal.close();
  });

  it("frees nothing early when the processed ids live in another store", async () => {
    const journal = await TransactionJournal.open<MatrixEvent>({ dataDir, logger: silentLogger() });
    const other = await TransactionJournal.open<MatrixEvent>({
      dataDir,
      fileName: "other.journal",
      logger: silentLogger(),
    });
    const released: number[] = [];
    journal.releaseHandled = (seq) => {
      released.push(seq);
    };
    const handled: string[] = [];
    const d = new EventDispatcher<MatrixEvent>({
      handler: async (event) => {
        handled.push(event.event_id);
      },
      transactions: journal,
      processed: other.processedEvents,
      logger: silentLogger(),
    });
    await d.start();
    d.enqueue(await journal.append("a", [roomEvent("$a1", "!r1:hs")]));
    await until(() => handled.length === 1, 5_000, "$a1 handled");
    assert.equal(await d.drain(), true);
    assert.deepEqual(released, [], "the window that would name its events is not written with it");
    await d.stop();
    await other.close();
    await journal.close();
  });
});
