import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../src/logging.js";
import { openNedbStores } from "../../src/stores/nedb/index.js";
import { EventDispatcher } from "../../src/transactions/dispatcher.js";
import { TransactionIngest } from "../../src/transactions/ingest.js";
import type { MatrixEvent } from "../../src/transactions/types.js";
import { tempDir } from "../stores/helpers.js";

const child = fileURLToPath(new URL("./fixtures/crash-child.ts", import.meta.url));

/** Runs the child until it has acknowledged `acks` transactions, then SIGKILLs it mid-stream. */
async function ackThenKill(dataDir: string, acks: number): Promise<number[]> {
  const proc = spawn(process.execPath, ["--import", "tsx", child, dataDir], {
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
      break;
    }
  }
  assert.equal(await exited, "SIGKILL");
  return acked;
}

describe("crash safety (kill -9)", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir("trestle-crash-"));
  });
  afterEach(() => cleanup());

  it("loses no acknowledged event and dispatches each exactly once after restart", async function () {
    this.timeout(60_000);
    const acked = await ackThenKill(dir, 40);

    const stores = await openNedbStores<MatrixEvent>({ dataDir: dir, logger: silentLogger() });
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
    await ingest.stop();
    await stores.close();
  });
});
