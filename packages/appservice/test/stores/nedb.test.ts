import assert from "node:assert/strict";
import { appendFile, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { silentLogger } from "../../src/logging.js";
import { StoreClosedError, StoreCorruptError, StoreValueError } from "../../src/stores/errors.js";
import { namespacedKeyValue } from "../../src/stores/namespaced.js";
import {
  NedbKeyValueStore,
  NedbProcessedEventStore,
  NedbTransactionStore,
  openNedbStores,
} from "../../src/stores/nedb/index.js";
import type { Stores } from "../../src/stores/types.js";
import { capturingLogger, ev, type TestEvent, tempDir } from "./helpers.js";

/** A key-value document as NeDB writes it: n/k = 1. */
const kvLine = JSON.stringify({ _id: JSON.stringify(["n", "k"]), namespace: "n", key: "k", value: "1" });

describe("NeDB stores", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(() => cleanup());

  describe("datafile loading", () => {
    it("loads a datafile whose last line was cut short by a crash, and logs it", async () => {
      const first = await NedbTransactionStore.open<TestEvent>({ dataDir: dir, logger: silentLogger() });
      await first.append("1", [ev("$a")]);
      await first.append("2", [ev("$b")]);
      await first.close();
      // What an append interrupted mid-write leaves: a partial JSON line without its newline.
      await appendFile(
        path.join(dir, "transactions.db"),
        '{"_id":"3","seq":3,"txnId":"TRUNCATED","events":"[{\\"ev',
      );

      const { logger, records } = capturingLogger();
      const reopened = await NedbTransactionStore.open<TestEvent>({ dataDir: dir, logger });
      const pending = await reopened.pending();
      assert.deepEqual(
        pending.map((t) => t.events.map((e) => e.event_id)),
        [["$a"], ["$b"]],
      );
      const warning = records.find((r) => String(r.msg).includes("unreadable datafile lines"));
      assert.ok(warning, "a warning names the dropped line");
      assert.deepEqual(warning.corruptLines, [3]);
      assert.equal(warning.store, "transactions");
      // The bad line is gone after load (NeDB rewrote the file), and the store keeps working.
      const text = await readFile(path.join(dir, "transactions.db"), "utf8");
      assert.ok(!text.includes("TRUNCATED"));
      const third = await reopened.append("3", [ev("$c")]);
      assert.equal(third.seq, 3);
      await reopened.close();
    });

    it("tolerates one bad line even in a tiny file, where NeDB's 10% ratio alone would refuse", async () => {
      await writeFile(path.join(dir, "key-value.db"), `${kvLine}\n{"_id`);
      const kv = await NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger() });
      assert.equal(await kv.get("n", "k"), 1);
      await kv.close();
    });

    it("refuses a datafile with more corrupt lines than a crash can explain", async () => {
      await writeFile(path.join(dir, "key-value.db"), `garbage\n${kvLine}\n{"_id`);
      await assert.rejects(
        NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger() }),
        (err: unknown) => {
          assert.ok(err instanceof StoreCorruptError);
          assert.deepEqual(err.corruptLines, [1, 3]);
          return true;
        },
      );
      // The limit is configurable for an operator who accepts the loss.
      const kv = await NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger(), maxCorruptLines: 2 });
      assert.equal(await kv.get("n", "k"), 1);
      await kv.close();
    });

    it("recovers from a crash between writing the compaction temp file and renaming it", async () => {
      const kv = await NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger() });
      await kv.set("n", "k", "v");
      await kv.close();
      await rename(path.join(dir, "key-value.db"), path.join(dir, "key-value.db~"));
      const reopened = await NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger() });
      assert.equal(await reopened.get("n", "k"), "v");
      await reopened.close();
    });

    it("rejects use after close with a typed error", async () => {
      const kv = await NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger() });
      await kv.close();
      await assert.rejects(kv.get("n", "k"), StoreClosedError);
    });

    it("keeps values holding U+2028, U+2029 and U+0085, which NeDB reads as line breaks", async () => {
      const value = { name: "one\u2028two\u2029three\u0085four", plain: "ok" };
      const kv = await NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger() });
      await kv.set("n", "k", value);
      await kv.set("n", "other", 2);
      await kv.close();
      const again = await NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger() });
      assert.deepEqual(await again.get("n", "k"), value);
      assert.equal(await again.get("n", "other"), 2);
      await again.close();
    });

    it("repairs a datafile an earlier version wrote with those separators unescaped", async () => {
      const file = path.join(dir, "key-value.db");
      const line = (key: string, value: string) =>
        JSON.stringify({
          _id: JSON.stringify(["n", key]),
          namespace: "n",
          key,
          value: JSON.stringify(value),
        });
      await writeFile(file, `${line("a", "x\u2028y")}\n${line("b", "p\u2029q\u0085r")}\n${kvLine}\n`);
      const { logger, records } = capturingLogger("info");
      const kv = await NedbKeyValueStore.open({ dataDir: dir, logger });
      assert.equal(await kv.get("n", "a"), "x\u2028y");
      assert.equal(await kv.get("n", "b"), "p\u2029q\u0085r");
      assert.equal(await kv.get("n", "k"), 1);
      assert.ok(records.some((r) => /Escaped line separators/.test(String(r.msg))));
      assert.ok(!records.some((r) => /unreadable/.test(String(r.msg))), "nothing was dropped");
      await kv.close();
    });

    it("compacts on close, leaving one line per live document", async () => {
      const kv = await NedbKeyValueStore.open({ dataDir: dir, logger: silentLogger() });
      for (let i = 0; i < 20; i++) await kv.set("n", "k", i);
      await kv.delete("n", "k");
      await kv.set("n", "kept", true);
      await kv.close();
      const lines = (await readFile(path.join(dir, "key-value.db"), "utf8")).split("\n").filter(Boolean);
      // The live document plus NeDB's line recording the `namespace` index.
      assert.equal(lines.length, 2);
    });
  });

  describe("TransactionStore", () => {
    it("keeps whole transactions in order, including content keys NeDB itself would reject", async () => {
      const store = await NedbTransactionStore.open<TestEvent>({ dataDir: dir, logger: silentLogger() });
      const content = { body: "hi", "m.relates_to": { rel_type: "m.replace", $weird: 1 } };
      const a = await store.append("t1", [ev("$1", content), ev("$2")]);
      const b = await store.append("t2", [ev("$3")]);
      assert.ok(b.seq > a.seq);
      await store.close();

      const reopened = await NedbTransactionStore.open<TestEvent>({ dataDir: dir, logger: silentLogger() });
      const pending = await reopened.pending();
      assert.deepEqual(
        pending.map((t) => [t.txnId, t.events.map((e) => e.event_id)]),
        [
          ["t1", ["$1", "$2"]],
          ["t2", ["$3"]],
        ],
      );
      assert.deepEqual(pending[0]?.events[0]?.content, content);

      await reopened.remove([a.seq, 999]);
      assert.equal(await reopened.count(), 1);
      // Sequence numbers keep growing past the pending ones after a restart.
      const c = await reopened.append("t3", [ev("$4")]);
      assert.ok(c.seq > b.seq);
      await reopened.close();
    });
  });

  describe("ProcessedEventStore", () => {
    it("keeps only the newest `window` ids, across a reopen", async () => {
      const store = await NedbProcessedEventStore.open({ dataDir: dir, logger: silentLogger(), window: 10 });
      for (let i = 0; i < 25; i++) await store.add(`$${i}`);
      assert.equal(await store.size(), 10);
      assert.equal(await store.has("$14"), false);
      assert.equal(await store.has("$15"), true);
      assert.equal(await store.has("$24"), true);
      await store.close();

      const reopened = await NedbProcessedEventStore.open({
        dataDir: dir,
        logger: silentLogger(),
        window: 10,
      });
      assert.equal(await reopened.size(), 10);
      assert.equal(await reopened.has("$14"), false);
      assert.equal(await reopened.has("$15"), true);
      // A smaller window on the next run prunes on open.
      await reopened.close();
      const smaller = await NedbProcessedEventStore.open({ dataDir: dir, logger: silentLogger(), window: 3 });
      assert.equal(await smaller.size(), 3);
      assert.equal(await smaller.has("$22"), true);
      assert.equal(await smaller.has("$21"), false);
      await smaller.close();
    });

    it("prunes whole batches, never below the window, and ignores ids it already has", async () => {
      const store = await NedbProcessedEventStore.open({ dataDir: dir, logger: silentLogger(), window: 5 });
      await store.addMany(["$a", "$b", "$c", "$a"]);
      await store.addMany(["$c", "$d", "$e", "$f"]);
      // 6 ids in two batches: dropping the first batch would leave 3 < 5, so both stay.
      assert.equal(await store.size(), 6);
      await store.addMany(["$g", "$h"]);
      assert.equal(await store.size(), 5);
      assert.equal(await store.has("$a"), false);
      assert.equal(await store.has("$d"), true);
      await store.close();
    });
  });

  describe("mapping stores", () => {
    let stores: Stores;
    beforeEach(async () => {
      stores = await openNedbStores({ dataDir: dir, logger: silentLogger() });
    });
    afterEach(() => stores.close());

    const reopen = async () => {
      await stores.close();
      stores = await openNedbStores({ dataDir: dir, logger: silentLogger() });
    };

    it("RoomLinkStore looks links up both ways, many remotes per room", async () => {
      await stores.roomLinks.link("!a:hs", "#chan1", { "irc.server": "libera" });
      await stores.roomLinks.link("!a:hs", "#chan2");
      await stores.roomLinks.link("!b:hs", "#chan2", { mode: "+s" });
      await reopen();
      const { roomLinks } = stores;
      assert.deepEqual(
        (await roomLinks.getByRoom("!a:hs")).map((l) => l.remoteId),
        ["#chan1", "#chan2"],
      );
      assert.deepEqual(
        (await roomLinks.getByRemote("#chan2")).map((l) => l.roomId),
        ["!a:hs", "!b:hs"],
      );
      assert.deepEqual(await roomLinks.get("!a:hs", "#chan1"), {
        roomId: "!a:hs",
        remoteId: "#chan1",
        data: { "irc.server": "libera" },
      });
      await roomLinks.link("!a:hs", "#chan1", { replaced: true });
      assert.deepEqual((await roomLinks.get("!a:hs", "#chan1"))?.data, { replaced: true });
      assert.equal(await roomLinks.unlink("!a:hs", "#chan1"), true);
      assert.equal(await roomLinks.unlink("!a:hs", "#chan1"), false);
      assert.equal(await roomLinks.get("!a:hs", "#chan1"), null);
      assert.equal((await roomLinks.getByRoom("!a:hs")).length, 1);
    });

    it("UserMappingStore looks users up both ways and keeps each side unique", async () => {
      await stores.userMappings.set("@irc_alice:hs", "alice", { nick: "alice" });
      await stores.userMappings.set("@irc_bob:hs", "bob");
      await reopen();
      const { userMappings } = stores;
      assert.equal((await userMappings.getByRemoteId("alice"))?.matrixId, "@irc_alice:hs");
      assert.deepEqual(await userMappings.getByMatrixId("@irc_alice:hs"), {
        matrixId: "@irc_alice:hs",
        remoteId: "alice",
        data: { nick: "alice" },
      });
      // Moving the remote id to another Matrix user removes the old mapping.
      await userMappings.set("@irc_alice2:hs", "alice");
      assert.equal(await userMappings.getByMatrixId("@irc_alice:hs"), null);
      assert.equal((await userMappings.getByRemoteId("alice"))?.matrixId, "@irc_alice2:hs");
      // Re-mapping a Matrix user to a new remote id frees the old one.
      await userMappings.set("@irc_bob:hs", "robert");
      assert.equal(await userMappings.getByRemoteId("bob"), null);
      assert.equal(await userMappings.removeByMatrixId("@irc_bob:hs"), true);
      assert.equal(await userMappings.getByRemoteId("robert"), null);
    });

    it("EventMappingStore looks events up both ways, per room, and prunes by age", async () => {
      const mapping = (
        roomId: string,
        eventId: string,
        remoteRoomId: string,
        remoteMessageId: string,
        createdAt: number,
      ) => ({
        roomId,
        eventId,
        remoteRoomId,
        remoteMessageId,
        data: { "m.x": createdAt },
        createdAt,
      });
      const { eventMappings } = stores;
      await eventMappings.add(mapping("!a:hs", "$e1", "#c", "m1", 1000));
      // One long Matrix message became two remote lines.
      await eventMappings.add(mapping("!a:hs", "$e2", "#c", "m2", 2000));
      await eventMappings.add(mapping("!a:hs", "$e2", "#c", "m3", 2001));
      // The same remote message id in another channel is a different message.
      const other = mapping("!b:hs", "$e9", "#d", "m1", 3000);
      await eventMappings.add(other);
      await reopen();
      const mappings = stores.eventMappings;
      assert.deepEqual(
        (await mappings.getByEvent("!a:hs", "$e2")).map((m) => m.remoteMessageId),
        ["m2", "m3"],
      );
      assert.deepEqual(await mappings.getByEvent("!b:hs", "$e2"), []);
      assert.deepEqual(await mappings.getByRemote("#d", "m1"), [other]);
      assert.equal((await mappings.getByRemote("#c", "m1"))[0]?.eventId, "$e1");
      assert.equal(await mappings.removeOlderThan(2001), 2);
      assert.deepEqual(await mappings.getByRemote("#c", "m1"), []);
      assert.equal(await mappings.removeByEvent("!a:hs", "$e2"), 1);
      assert.deepEqual(await mappings.getByEvent("!a:hs", "$e2"), []);
    });

    it("KeyValueStore keeps typed JSON per namespace", async () => {
      const { keyValue } = stores;
      await keyValue.set("irc", "state", { "server.name": "libera", channels: ["#a"], n: 1 });
      await keyValue.set("irc", "counter", 41);
      await keyValue.set("webhooks", "state", "other bridge");
      await assert.rejects(keyValue.set("irc", "bad", undefined), StoreValueError);
      await reopen();
      const irc = namespacedKeyValue(stores.keyValue, "irc");
      assert.deepEqual(await irc.get<{ channels: string[] }>("state"), {
        "server.name": "libera",
        channels: ["#a"],
        n: 1,
      });
      assert.equal(await irc.get<number>("counter"), 41);
      assert.deepEqual(await irc.keys(), ["counter", "state"]);
      assert.equal(await stores.keyValue.get("webhooks", "state"), "other bridge");
      assert.equal(await irc.delete("counter"), true);
      assert.equal(await irc.delete("counter"), false);
      assert.equal(await irc.get("counter"), undefined);
      assert.equal(await irc.get("missing"), undefined);
    });
  });

  it("in-memory stores need no dataDir", async () => {
    const stores = await openNedbStores({ inMemory: true, logger: silentLogger() });
    await stores.keyValue.set("n", "k", 1);
    await stores.transactions.append("1", [ev("$a")]);
    assert.equal(await stores.keyValue.get("n", "k"), 1);
    assert.equal(await stores.transactions.count(), 1);
    await stores.close();
  });

  it("openNedbStores requires a dataDir unless in memory", async () => {
    await assert.rejects(openNedbStores({ logger: silentLogger() }), StoreValueError);
  });
});
