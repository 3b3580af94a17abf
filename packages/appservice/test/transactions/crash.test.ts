import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../src/logging.js";
import { openNedbStores } from "../../src/stores/nedb/index.js";
import { openStores } from "../../src/stores/open.js";
import type { Stores } from "../../src/stores/types.js";
import { EventDispatcher } from "../../src/transactions/dispatcher.js";
import { TransactionIngest } from "../../src/transactions/ingest.js";
import type { MatrixEvent } from "../../src/transactions/types.js";
import { tempDir } from "../stores/helpers.js";

const child = fileURLToPath(new URL("./fixtures/crash-child.ts", import.meta.url));

/** Runs the child until it has acknowledged `acks` transactions, then SIGKILLs it mid-stream. */
async function ackThenKill(dataDir: string, acks: number, childArgs: string[]): Promise<number[]> {
  const proc = spawn(process.execPath, ["--import", "tsx", child, dataDir, ...childArgs], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const acked: number[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    proc.on("exit", (_code, signal) => resolve(signal)),
  );
  for await (const line of createInterface({ input: proc.stdout })) {
    const match = /^acked (\d+)$/.exec(line);
    if (match) acked.push(Number(match[1]));
    if (acked.length === acks) {
      // The child is already persisting the next transaction; the kill may cut that write short.
      proc.kill("SIGKILL");
    }
    // Read on to the end: acknowledgements the child wrote before it died are still in the pipe.
  }
  assert.equal(await exited, "SIGKILL");
  return acked;
}

interface Engine {
  name: string;
  childArgs: string[];
  open: (dir: string) => Promise<Stores<MatrixEvent>>;
}

const engines: Engine[] = [
  {
    name: "transaction journal",
    childArgs: ["journal"],
    open: (dataDir) => openStores<MatrixEvent>({ dataDir, logger: silentLogger() }),
  },
  {
    // Compactions run back to back, so the kill lands in one: before, during or after the rename.
    name: "transaction journal, compacting all the time",
    childArgs: ["journal", "20000"],
    open: (dataDir) => openStores<MatrixEvent>({ dataDir, logger: silentLogger() }),
  },
  {
    name: "NeDB",
    childArgs: ["nedb"],
    open: (dataDir) => openNedbStores<MatrixEvent>({ dataDir, logger: silentLogger() }),
  },
];

describe("crash safety (kill -9)", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir("trestle-crash-"));
  });
  afterEach(() => cleanup());

  for (const engine of engines) {
    it(`loses no acknowledged event and dispatches each exactly once after restart (${engine.name})`, async function () {
      this.timeout(60_000);
      const acked = await ackThenKill(dir, 40, engine.childArgs);

      const stores = await engine.open(dir);
      const handled: string[] = [];
      const dispatcher = new EventDispatcher<MatrixEvent>({
        handler: (event) => void handled.push(event.event_id),
        transactions: stores.transactions,
        processed: stores.processedEvents,
      });
      const ingest = new TransactionIngest({ dispatcher });
      await ingest.start();
      assert.equal(await dispatcher.drain(), true);

      const expected = acked.flatMap((t) => Array.from({ length: 50 }, (_, i) => `$${t}-${i}`));
      const handledSet = new Set(handled);
      assert.equal(handledSet.size, handled.length, "no event handled twice");
      for (const id of expected) assert.ok(handledSet.has(id), `acknowledged event ${id} was lost`);
      // At most the one transaction being written at the kill comes on top, and only whole.
      const extra = handled.filter((id) => !expected.includes(id));
      assert.ok(
        extra.length === 0 || extra.length === 50,
        `a partial transaction was dispatched: ${extra.length}`,
      );
      // Each room's events come back in the order they were acknowledged.
      for (let room = 0; room < 5; room++) {
        const inRoom = handled.filter((id) => Number(id.split("-")[1]) % 5 === room);
        const order = inRoom.map((id) => Number(id.slice(1).split("-")[0]));
        assert.deepEqual(
          order,
          [...order].sort((a, b) => a - b),
          `room ${room} out of order`,
        );
      }
      await ingest.stop();
      await stores.close();

      // Handled and recorded: a second restart has nothing left to do.
      const reopened = await engine.open(dir);
      assert.equal(await reopened.transactions.count(), 0);
      await reopened.close();
    });
  }
});
