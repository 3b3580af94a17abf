import assert from "node:assert/strict";
import { appendFile, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { StoreCorruptError } from "@trestle/appservice";
import Datastore from "nedb-promises";
import type { DeliveryJob } from "../../src/delivery/job.js";
import { DELIVERY_JOURNAL_FILE, DeliveryJournal, LEGACY_DELIVERY_FILE } from "../../src/delivery/journal.js";
import { capturingLogger } from "../commands/helpers.js";
import { ROOM_A, ROOM_B } from "./helpers.js";

let counter = 0;
function job(roomId: string, seq: number, text: string, extra: Partial<DeliveryJob> = {}): DeliveryJob {
  counter += 1;
  return {
    id: `job-${counter}`,
    hookId: "hook1",
    roomId,
    seq,
    receivedAt: 1_700_000_000_000 + counter,
    payload: { text, nested: { list: [1, "two", null] } },
    headers: Object.assign(Object.create(null), { "x-github-event": "push" }),
    ...extra,
  };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const texts = (jobs: DeliveryJob[]) => jobs.map((j) => (j.payload as { text: string }).text);

describe("DeliveryJournal", () => {
  let dataDir: string;
  const open: DeliveryJournal[] = [];

  async function openJournal(options: { compactAfterBytes?: number } = {}) {
    const { logger, text } = capturingLogger();
    const journal = await DeliveryJournal.open({ dataDir, logger, ...options });
    open.push(journal);
    return { journal, logText: text };
  }

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "trestle-delivery-journal-"));
  });

  afterEach(async () => {
    for (const journal of open.splice(0)) await journal.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("replays jobs, completions, dead letters and requeues after a reopen", async () => {
    const { journal } = await openJournal();
    const a1 = job(ROOM_A, 1, "a1");
    const a2 = job(ROOM_A, 2, "a2\nwith a newline");
    const b1 = job(ROOM_B, 1, "b1", { deliveryKey: "hook1:github:abc" });
    const b2 = job(ROOM_B, 2, "b2");
    for (const j of [a1, a2, b1, b2]) journal.insert(j);
    journal.remove(a1.id);
    journal.markFailed(b1.id, { reason: "M_FORBIDDEN: kicked", attempts: 5, at: 42 });
    journal.markFailed(b2.id, { reason: "M_FORBIDDEN: kicked", attempts: 5, at: 43 });
    assert.equal(journal.markPending(b2.id, 3), true);
    assert.equal(journal.markPending(a2.id, 9), false, "only a dead letter can be requeued");
    // Not closed: what a killed process leaves behind is what the next one reads.
    open.splice(0);

    const { journal: reopened } = await openJournal();
    const pending = reopened.pending();
    assert.deepEqual(texts(pending), ["a2\nwith a newline", "b2"]);
    assert.deepEqual(
      pending.map((j) => j.seq),
      [2, 3],
    );
    assert.deepEqual(pending[0]?.payload, a2.payload);
    assert.equal(pending[0]?.headers["x-github-event"], "push");
    assert.equal(Object.getPrototypeOf(pending[0]?.headers), null);
    const failed = reopened.failed();
    assert.deepEqual(
      failed.map((f) => [f.id, f.failure.reason, f.deliveryKey]),
      [[b1.id, "M_FORBIDDEN: kicked", "hook1:github:abc"]],
    );
    assert.deepEqual(reopened.getFailed(b1.id)?.payload, b1.payload);
    assert.deepEqual(
      [...reopened.lastSeqs()],
      [
        [ROOM_A, 2],
        [ROOM_B, 3],
      ],
    );
  });

  it("drops a last line cut short by a crash, with a warning, and keeps everything before it", async () => {
    const { journal } = await openJournal();
    journal.insert(job(ROOM_A, 1, "kept"));
    open.splice(0);
    await appendFile(path.join(dataDir, DELIVERY_JOURNAL_FILE), '{"op":"job","job":{"id":"half');

    const { journal: reopened, logText } = await openJournal();
    assert.deepEqual(texts(reopened.pending()), ["kept"]);
    assert.match(logText(), /unreadable line of the delivery journal/);
    // The torn line is gone from the file, so a later append does not follow it.
    reopened.insert(job(ROOM_A, 2, "after"));
    open.splice(0);
    const { journal: again, logText: secondLog } = await openJournal();
    assert.deepEqual(texts(again.pending()), ["kept", "after"]);
    assert.doesNotMatch(secondLog(), /unreadable/);
  });

  it("refuses a journal with more damage than a crash can explain", async () => {
    const { journal } = await openJournal();
    journal.insert(job(ROOM_A, 1, "x"));
    await journal.close();
    open.splice(0);
    await appendFile(path.join(dataDir, DELIVERY_JOURNAL_FILE), "garbage\nmore garbage\n");
    await assert.rejects(openJournal(), StoreCorruptError);
  });

  it("refuses a journal written by a newer format", async () => {
    await writeFile(path.join(dataDir, DELIVERY_JOURNAL_FILE), '{"op":"journal","version":99}\n');
    await assert.rejects(openJournal(), /format 99/);
  });

  it("compacts once it has grown, keeping only live jobs", async () => {
    const { journal } = await openJournal({ compactAfterBytes: 4_096 });
    const live = job(ROOM_A, 1, "still queued");
    journal.insert(live);
    for (let i = 0; i < 200; i++) {
      const done = job(ROOM_B, i + 1, `done ${i} ${"x".repeat(100)}`);
      journal.insert(done);
      journal.remove(done.id);
    }
    await journal.compact();
    const size = (await stat(path.join(dataDir, DELIVERY_JOURNAL_FILE))).size;
    assert.ok(size < 4_096, `the file is ${size} bytes after compaction`);
    open.splice(0);
    const { journal: reopened } = await openJournal();
    assert.deepEqual(texts(reopened.pending()), ["still queued"]);
  });

  it("imports the NeDB queue of an earlier version once, then keeps the old file aside", async () => {
    const legacy = Datastore.create({ filename: path.join(dataDir, LEGACY_DELIVERY_FILE) });
    await legacy.insert([
      {
        _id: "old-2",
        hookId: "hook1",
        roomId: ROOM_A,
        seq: 2,
        receivedAt: 2,
        data: JSON.stringify({ payload: { text: "second" }, headers: {} }),
        state: "pending",
      },
      {
        _id: "old-1",
        hookId: "hook1",
        roomId: ROOM_A,
        seq: 1,
        receivedAt: 1,
        data: JSON.stringify({ payload: { text: "first" }, headers: { "x-gitlab-event": "Push Hook" } }),
        state: "pending",
      },
      {
        _id: "old-dead",
        hookId: "hook1",
        roomId: ROOM_B,
        seq: 1,
        receivedAt: 3,
        data: JSON.stringify({ payload: { text: "dead" }, headers: {} }),
        state: "failed",
        failure: { reason: "M_FORBIDDEN", attempts: 5, at: 4 },
      },
    ]);

    const { journal, logText } = await openJournal();
    assert.deepEqual(texts(journal.pending()), ["first", "second"]);
    assert.equal(journal.pending()[0]?.headers["x-gitlab-event"], "Push Hook");
    assert.deepEqual(
      journal.failed().map((f) => f.id),
      ["old-dead"],
    );
    assert.match(logText(), /imported the delivery queue of an earlier version/);
    const files = await readdir(dataDir);
    assert.ok(files.includes(`${LEGACY_DELIVERY_FILE}.imported`), files.join(", "));
    assert.ok(!files.includes(LEGACY_DELIVERY_FILE));

    journal.remove("old-1");
    await journal.close();
    open.splice(0);
    const { journal: reopened } = await openJournal();
    assert.deepEqual(texts(reopened.pending()), ["second"], "imported once: the journal is the truth now");
  });

  it("a job whose write failed is not kept: it was refused, and must not come back", async () => {
    const { journal } = await openJournal();
    const file = (journal as unknown as { file: { append(record: string): void } }).file;
    const append = file.append.bind(file);
    file.append = () => {
      throw new Error("ENOSPC: no space left on device");
    };
    assert.throws(() => journal.insert(job(ROOM_A, 1, "refused")), /ENOSPC/);
    file.append = append;
    journal.insert(job(ROOM_A, 2, "accepted"));
    assert.deepEqual(texts(journal.pending()), ["accepted"]);
    await journal.compact();
    open.splice(0);
    const { journal: reopened } = await openJournal();
    assert.deepEqual(texts(reopened.pending()), ["accepted"]);
  });

  it("a compaction set off by an insert keeps that job, and a removal after it", async () => {
    const { journal } = await openJournal({ compactAfterBytes: 1 });
    const kept = job(ROOM_A, 1, "kept");
    const gone = job(ROOM_A, 2, "gone");
    journal.insert(kept);
    await delay(100); // the compaction this insert set off has finished
    journal.insert(gone);
    await delay(100);
    journal.remove(gone.id);
    await delay(100);
    // Reopened as after a kill: no close, no final compaction.
    open.splice(0);
    const { journal: reopened } = await openJournal();
    assert.deepEqual(texts(reopened.pending()), ["kept"]);
  });

  it("imports an old queue that NeDB left only as its temp file (deliveries.db~)", async () => {
    const legacy = Datastore.create({ filename: path.join(dataDir, LEGACY_DELIVERY_FILE) });
    await legacy.insert({
      _id: "tmp-only",
      hookId: "hook1",
      roomId: ROOM_A,
      seq: 1,
      receivedAt: 1,
      data: JSON.stringify({ payload: { text: "from the temp file" }, headers: {} }),
      state: "pending",
    });
    await rename(path.join(dataDir, LEGACY_DELIVERY_FILE), path.join(dataDir, `${LEGACY_DELIVERY_FILE}~`));
    const { journal } = await openJournal();
    assert.deepEqual(texts(journal.pending()), ["from the temp file"]);
    const files = await readdir(dataDir);
    assert.ok(
      !files.includes(LEGACY_DELIVERY_FILE) && !files.includes(`${LEGACY_DELIVERY_FILE}~`),
      files.join(", "),
    );
  });

  it("writes one line per record, so a payload cannot forge a record", async () => {
    const { journal } = await openJournal();
    journal.insert(job(ROOM_A, 1, '"}\n{"op":"done","id":"job-1"}\n'));
    const lines = (await readFile(path.join(dataDir, DELIVERY_JOURNAL_FILE), "utf8")).trimEnd().split("\n");
    assert.equal(lines.length, 2);
    for (const line of lines) JSON.parse(line);
  });
});
