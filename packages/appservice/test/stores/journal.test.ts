import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { appendFile, copyFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { silentLogger } from "../../src/logging.js";
import { StoreClosedError, StoreCorruptError, StoreError } from "../../src/stores/errors.js";
import {
  DEFAULT_JOURNAL_FILE,
  TransactionJournal,
  type TransactionJournalOptions,
} from "../../src/stores/journal/journal.js";
import { NedbProcessedEventStore, NedbTransactionStore } from "../../src/stores/nedb/index.js";
import { openStores } from "../../src/stores/open.js";
import { capturingLogger, ev, type TestEvent, tempDir } from "./helpers.js";

const ids = (pending: { events: TestEvent[] }[]) => pending.map((t) => t.events.map((e) => e.event_id));

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Transaction journal", () => {
  let dir: string;
  let file: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir("trestle-journal-"));
    file = path.join(dir, DEFAULT_JOURNAL_FILE);
  });
  afterEach(() => cleanup());

  const open = (options: Partial<TransactionJournalOptions<TestEvent>> = {}) =>
    TransactionJournal.open<TestEvent>({ dataDir: dir, logger: silentLogger(), ...options });

  /** The journal's lines, parsed. */
  async function records(): Promise<Record<string, unknown>[]> {
    const text = await readFile(file, "utf8");
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  describe("transactions", () => {
    it("keeps whole transactions in order across a reopen, and continues the sequence", async () => {
      const journal = await open();
      const content = { body: "hi", "m.relates_to": { rel_type: "m.replace" }, nl: "a\nb" };
      const a = await journal.append("t1", [ev("$1", content), ev("$2")]);
      const b = await journal.append("t2", [ev("$3")]);
      const c = await journal.append("t3", [ev("$4")]);
      assert.ok(a.seq < b.seq && b.seq < c.seq);
      await journal.remove([b.seq, 999]);
      assert.equal(await journal.count(), 2);
      await journal.close();

      const reopened = await open();
      const pending = await reopened.pending();
      assert.deepEqual(
        pending.map((t) => t.txnId),
        ["t1", "t3"],
      );
      assert.deepEqual(ids(pending), [["$1", "$2"], ["$4"]]);
      assert.deepEqual(pending[0]?.events[0]?.content, content);
      const d = await reopened.append("t4", [ev("$5")]);
      assert.ok(d.seq > c.seq, "a sequence number is never reused, even one already removed");
      await reopened.close();
    });

    it("stores the body text as given, on one line, and reads its events back", async () => {
      const journal = await open();
      const events = [ev("$1", { body: "two\nlines" }), ev("$2")];
      // Pretty-printed, as a homeserver may send it: newlines between tokens.
      const body = JSON.stringify({ events, ephemeral: [] }, null, 2);
      await journal.append("t1", events, { body });
      await journal.close();

      const lines = (await readFile(file, "utf8")).split("\n").filter(Boolean);
      const txnLines = lines.filter((line) => line.includes('"op":"txn"'));
      assert.equal(txnLines.length, 1, "the transaction is one line");
      assert.ok(txnLines[0]?.includes('"body":'), "the body is stored instead of re-serialised events");

      const reopened = await open();
      const [pending] = await reopened.pending();
      assert.deepEqual(pending?.events, events);
      await reopened.close();
    });

    it("stores a body given as bytes as received, and reads its events back, also after compaction", async () => {
      const journal = await open();
      const events = [ev("$1", { body: "zwei\nZeilen, grüße 🎉" }), ev("$2")];
      const text = JSON.stringify({ events }, null, 1);
      const bytes = Buffer.from(text, "utf8");
      await journal.append("t1", events, { body: bytes });
      assert.equal(bytes.toString("utf8"), text, "the caller's bytes are not changed");
      // A compaction while it is pending copies the record, and one appended during it.
      const compacting = journal.compact();
      await new Promise((resolve) => setImmediate(resolve)); // the snapshot is taken, its copy being written
      await journal.append("t2", [ev("$3")], { body: Buffer.from(JSON.stringify({ events: [ev("$3")] })) });
      await compacting;
      // Read as a killed process would leave it: no close.
      const reopened = await open();
      const pending = await reopened.pending();
      assert.deepEqual(pending[0]?.events, events);
      assert.deepEqual(ids(pending), [["$1", "$2"], ["$3"]]);
      const lines = (await readFile(file, "utf8")).split("\n").filter(Boolean);
      assert.equal(
        lines.filter((line) => line.includes('"op":"txn"')).length,
        2,
        "each transaction is one line",
      );
      await reopened.close();
      await journal.close();
    });

    it("refuses use after close with a typed error", async () => {
      const journal = await open();
      await journal.close();
      await assert.rejects(journal.append("t", [ev("$1")]), StoreClosedError);
      await assert.rejects(journal.pending(), StoreClosedError);
      await assert.rejects(journal.processedEvents.has("$1"), StoreClosedError);
      await journal.processedEvents.close();
    });

    it("works in memory, without a file", async () => {
      const journal = await TransactionJournal.open<TestEvent>({ inMemory: true, logger: silentLogger() });
      const a = await journal.append("t1", [ev("$1")]);
      await journal.processedEvents.addMany(["$1"]);
      await journal.remove([a.seq]);
      assert.equal(await journal.count(), 0);
      assert.equal(journal.processedEvents.hasSync("$1"), true);
      // Read twice, as a dispatcher stopped and started again on the same stores does.
      await journal.append("t2", [ev("$2")]);
      assert.deepEqual(ids(await journal.pending()), [["$2"]]);
      assert.deepEqual(ids(await journal.pending()), [["$2"]]);
      await journal.close();
      assert.equal(existsSync(file), false);
    });
  });

  describe("processed event ids", () => {
    it("keeps exactly the newest `window` ids, across a reopen and a smaller window", async () => {
      const journal = await open({ processedEventWindow: 10 });
      const store = journal.processedEvents;
      for (let i = 0; i < 15; i++) await store.add(`$${i}`);
      await store.addMany(Array.from({ length: 10 }, (_, i) => `$${15 + i}`).concat("$24"));
      assert.equal(await store.size(), 10);
      assert.equal(store.hasSync("$14"), false);
      assert.equal(await store.has("$15"), true);
      assert.equal(await store.has("$24"), true);
      await journal.close();

      const reopened = await open({ processedEventWindow: 10 });
      assert.equal(await reopened.processedEvents.size(), 10);
      assert.equal(reopened.processedEvents.hasSync("$14"), false);
      assert.equal(reopened.processedEvents.hasSync("$15"), true);
      await reopened.close();

      const smaller = await open({ processedEventWindow: 3 });
      assert.deepEqual(smaller.processedEvents.windowIds(), ["$22", "$23", "$24"]);
      await smaller.close();
    });

    it("claims ids in one step, commits them when handled, and persists them with addClaimed", async () => {
      const journal = await open({ processedEventWindow: 5 });
      const store = journal.processedEvents;
      await store.addMany(["$old"]);
      assert.equal(store.claimSync("$old"), undefined, "an id in the window cannot be claimed");
      const a = store.claimSync("$a");
      assert.notEqual(a, undefined);
      assert.equal(store.claimSync("$a"), undefined, "nor one already claimed");
      assert.equal(store.hasSync("$a"), true);
      assert.equal(await store.size(), 1, "claims are not counted until committed");
      const b = store.claimSync("$b");
      assert.notEqual(b, undefined);
      store.unclaimSync("$b", b as number);
      assert.equal(store.hasSync("$b"), false);
      assert.notEqual(store.claimSync("$c"), undefined);
      store.commitSync("$a", a as number);
      assert.equal(await store.size(), 2, "committed: counted");
      /** The journal as a crash now would leave it, reopened. */
      const afterCrash = async (): Promise<string[]> => {
        const copy = path.join(path.dirname(file), "copy.journal");
        await writeFile(copy, await readFile(file));
        const crashed = await TransactionJournal.open({
          dataDir: path.dirname(file),
          fileName: "copy.journal",
          logger: silentLogger(),
        });
        const ids = crashed.processedEvents.windowIds();
        await crashed.close();
        return ids;
      };
      assert.deepEqual(await afterCrash(), ["$old"], "committed, not yet written");
      await store.addClaimed(["$a"]);
      // `$c` is claimed but was never committed: a crash forgets it.
      assert.deepEqual(await afterCrash(), ["$old", "$a"]);
      for (const id of ["$d", "$e"]) {
        store.commitSync(id, store.claimSync(id) as number);
        await store.addClaimed([id]);
      }
      // The window is the last 5 ids claimed or added ($b given back, $c still claimed): $old went first.
      assert.deepEqual(store.windowIds(), ["$a", "$d", "$e"], "the oldest is evicted");
      assert.equal(store.hasSync("$old"), false);
      assert.equal(store.hasSync("$c"), true, "still claimed");
      await journal.close();
      const reopened = await open({ processedEventWindow: 5 });
      assert.deepEqual(reopened.processedEvents.windowIds(), ["$a", "$d", "$e"]);
      assert.equal(reopened.processedEvents.hasSync("$c"), false);
      await reopened.close();
    });
  });

  describe("crash tolerance", () => {
    it("drops a torn last line, logs it, and appends cleanly after it", async () => {
      const journal = await open();
      await journal.append("t1", [ev("$1")]);
      await journal.append("t2", [ev("$2")]);
      // Abandoned without close, as after kill -9; then a write cut short mid-record.
      await appendFile(file, '{"op":"txn","seq":3,"txnId":"TORN","at":1,"events":[{"event_id":"$');

      const { logger, records: logged } = capturingLogger();
      const reopened = await open({ logger });
      assert.deepEqual(ids(await reopened.pending()), [["$1"], ["$2"]]);
      const warning = logged.find((r) => String(r.msg).includes("unreadable journal lines"));
      assert.ok(warning, "a warning names the dropped line");
      assert.equal((warning.corruptLines as number[]).length, 1);
      // Rewritten on open: the next record cannot be glued onto the torn one.
      assert.ok(!(await readFile(file, "utf8")).includes("TORN"));
      await reopened.append("t3", [ev("$3")]);

      const again = await open();
      assert.deepEqual(ids(await again.pending()), [["$1"], ["$2"], ["$3"]]);
      await again.close();
    });

    it("treats a whole record without its newline as torn: it was never acknowledged", async () => {
      const journal = await open();
      await journal.append("t1", [ev("$1")]);
      await appendFile(file, '{"op":"ids","ids":["$1"]}');
      const reopened = await open();
      assert.equal(reopened.processedEvents.hasSync("$1"), false);
      assert.equal(await reopened.count(), 1);
      await reopened.close();
    });

    it("refuses a journal with more unreadable lines than a crash can explain", async () => {
      const journal = await open();
      await journal.append("t1", [ev("$1")]);
      await appendFile(file, "garbage\n{not json\n");
      await assert.rejects(open(), (err: unknown) => {
        assert.ok(err instanceof StoreCorruptError);
        assert.equal(err.corruptLines.length, 2);
        return true;
      });
      // An operator may accept the loss explicitly.
      const tolerant = await open({ maxCorruptLines: 2 });
      assert.deepEqual(ids(await tolerant.pending()), [["$1"]]);
      await tolerant.close();
    });

    it("reads a journal of format 1 (ids written out, done-marks without ids) and rewrites it as format 2", async () => {
      const txn = (seq: number, id: string) =>
        JSON.stringify({ op: "txn", seq, txnId: `t${seq}`, at: 1, events: [ev(id)] });
      await writeFile(
        file,
        [
          '{"op":"journal","version":1,"seq":0}',
          txn(1, "$1"),
          txn(2, "$2"),
          '{"op":"ids","ids":["$1"]}',
          '{"op":"done","seqs":[1]}',
          "",
        ].join("\n"),
      );
      const journal = await open();
      assert.deepEqual(ids(await journal.pending()), [["$2"]]);
      assert.deepEqual(journal.processedEvents.windowIds(), ["$1"]);
      await journal.close();
      assert.deepEqual((await records())[0], { op: "journal", version: 2, seq: 2 });
    });

    it("refuses a journal written by a newer format", async () => {
      await writeFile(file, '{"op":"journal","version":99,"seq":1}\n');
      await assert.rejects(open(), StoreError);
    });

    it("ignores the temp file of a compaction cut short, keeping the journal as it was", async () => {
      const journal = await open();
      await journal.append("t1", [ev("$1")]);
      // A crash while the compacted copy was being written: half a copy, never renamed.
      await writeFile(`${file}.tmp`, '{"op":"journal","version":1,"seq":0}\n{"op":"txn","se');
      const reopened = await open();
      assert.deepEqual(ids(await reopened.pending()), [["$1"]]);
      assert.equal(existsSync(`${file}.tmp`), false);
      await reopened.close();
    });
  });

  describe("compaction", () => {
    it("rewrites the journal to its live records once it has grown enough", async () => {
      const journal = await open({ compactAfterBytes: 4_096, processedEventWindow: 50 });
      const filler = { body: "x".repeat(200) };
      for (let t = 0; t < 100; t++) {
        const txn = await journal.append(`t${t}`, [ev(`$${t}`, filler)]);
        await journal.processedEvents.addMany([`$${t}`]);
        if (t < 98) await journal.remove([txn.seq]);
      }
      await journal.compact();
      const size = (await stat(file)).size;
      assert.ok(size < 4_096 + 1_024, `compacted to ${size} bytes`);
      const ops = (await records()).map((r) => r.op);
      assert.equal(ops[0], "journal");
      assert.equal(ops.filter((op) => op === "txn").length, 2);
      assert.ok(!ops.includes("done"), "done marks are dropped with their transactions");
      await journal.close();

      const reopened = await open({ processedEventWindow: 50 });
      assert.deepEqual(ids(await reopened.pending()), [["$98"], ["$99"]]);
      assert.equal(await reopened.processedEvents.size(), 50);
      assert.equal(reopened.processedEvents.hasSync("$99"), true);
      assert.equal(reopened.processedEvents.hasSync("$49"), false);
      await reopened.close();
    });

    it("after a failed compaction, waits for as much growth again before the next try", async () => {
      const { logger, records: logged } = capturingLogger();
      const journal = await open({ compactAfterBytes: 10_000, logger });
      await mkdir(`${file}.tmp`); // the compaction's temp file cannot be written: every try fails
      const filler = { body: "x".repeat(200) };
      for (let t = 0; t < 100; t++) {
        await journal.append(`t${t}`, [ev(`$${t}`, filler)]);
        await delay(1);
      }
      const failures = logged.filter((r) => r.msg === "Compaction failed").length;
      // ~30 KB appended: a try at ~10 KB and ~20 KB (and maybe ~30 KB), not one per append after.
      assert.ok(failures >= 1 && failures <= 3, `${failures} compaction attempts`);
      assert.equal(await journal.count(), 100, "appends go on meanwhile");
    });

    it("a compaction set off by an append keeps that append, and the removal after it", async () => {
      const journal = await open({ compactAfterBytes: 1 });
      const kept = await journal.append("t1", [ev("$1")]);
      await delay(100); // the compaction this append set off has finished
      const gone = await journal.append("t2", [ev("$2")]);
      await delay(100);
      await journal.remove([gone.seq]);
      await delay(100);
      // Read as a process killed now would leave it: no close, no final compaction.
      const txns = (await records()).filter((r) => r.op === "txn").map((r) => r.seq);
      const done = (await records()).filter((r) => r.op === "done").flatMap((r) => r.seqs as number[]);
      assert.deepEqual(
        txns.filter((seq) => !done.includes(seq as number)),
        [kept.seq],
      );
      await journal.close();
    });

    it("leaves a transaction released as handled out of a compaction; its ids stay in the window", async () => {
      const journal = await open();
      const handled = await journal.append("t1", [ev("$1"), ev("$2")]);
      await journal.append("t2", [ev("$3")]);
      for (const id of ["$1", "$2"]) {
        const claim = journal.processedEvents.claimSync(id);
        assert.notEqual(claim, undefined);
        journal.processedEvents.commitSync(id, claim as number);
      }
      journal.releaseHandled(handled.seq);
      assert.deepEqual(
        ids(await journal.pending()),
        [[], ["$3"]],
        "listed without its events until its done mark",
      );
      assert.equal(await journal.count(), 2, "still counted until its done mark");

      // Killed before its done mark and before any compaction: the file still replays it.
      await copyFile(file, path.join(dir, "early.journal"));
      const early = await open({ fileName: "early.journal" });
      assert.deepEqual(ids(await early.pending()), [["$1", "$2"], ["$3"]]);
      await early.close();

      await journal.compact();
      const txns = (await records()).filter((r) => r.op === "txn").map((r) => r.txnId);
      assert.deepEqual(txns, ["t2"], "the compacted file holds only the unhandled transaction");
      // The done mark still comes, after the compaction: replaying it must not disturb anything.
      await journal.remove([handled.seq]);
      await copyFile(file, path.join(dir, "late.journal"));
      const late = await open({ fileName: "late.journal" });
      assert.deepEqual(ids(await late.pending()), [["$3"]]);
      assert.equal(late.processedEvents.hasSync("$1"), true);
      assert.equal(late.processedEvents.hasSync("$2"), true);
      await late.close();
      await journal.close();
    });

    it("keeps what is appended and removed while the compacted copy is being written", async () => {
      const journal = await open();
      const first = await journal.append("t1", [ev("$1")]);
      const compacting = journal.compact();
      // These land in the old file while the copy is written, and must be carried over.
      await journal.append("t2", [ev("$2")]);
      await journal.remove([first.seq]);
      await journal.processedEvents.addMany(["$1"]);
      await compacting;
      await journal.append("t3", [ev("$3")]);

      // Read back without close(), which would compact again.
      const reopened = await open();
      assert.deepEqual(ids(await reopened.pending()), [["$2"], ["$3"]]);
      assert.equal(reopened.processedEvents.hasSync("$1"), true);
      await reopened.close();
      await journal.close();
    });
  });

  describe("openStores", () => {
    it("moves the queue and processed ids of the NeDB files of an earlier version into the journal", async () => {
      const oldQueue = await NedbTransactionStore.open<TestEvent>({ dataDir: dir, logger: silentLogger() });
      const done = await oldQueue.append("old1", [ev("$old1")]);
      await oldQueue.append("old2", [ev("$old2"), ev("$old3")]);
      await oldQueue.remove([done.seq]);
      await oldQueue.close();
      const oldIds = await NedbProcessedEventStore.open({ dataDir: dir, logger: silentLogger() });
      await oldIds.addMany(["$old1"]);
      await oldIds.close();

      const stores = await openStores<TestEvent>({ dataDir: dir, logger: silentLogger() });
      const pending = await stores.transactions.pending();
      assert.deepEqual(
        pending.map((t) => t.txnId),
        ["old2"],
      );
      assert.deepEqual(ids(pending), [["$old2", "$old3"]]);
      assert.equal(await stores.processedEvents.has("$old1"), true);
      assert.equal(existsSync(path.join(dir, "transactions.db")), false);
      assert.equal(existsSync(path.join(dir, "transactions.db.imported")), true);
      // The other stores are still NeDB files.
      await stores.keyValue.set("n", "k", 1);
      await stores.close();
      assert.equal(existsSync(path.join(dir, "key-value.db")), true);

      const again = await openStores<TestEvent>({ dataDir: dir, logger: silentLogger() });
      assert.deepEqual(ids(await again.transactions.pending()), [["$old2", "$old3"]], "imported once");
      await again.close();
    });
  });
});
