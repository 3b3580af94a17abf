import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { StoreCorruptError, silentLogger } from "@trestle/appservice";
import { NedbHookStore } from "../../src/hooks/hook-store.js";
import { capturingLogger } from "../commands/helpers.js";
import { makeHook } from "../delivery/helpers.js";

describe("NedbHookStore on disk", () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "trestle-hooks-"));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  async function storeWith(count: number) {
    const store = await NedbHookStore.open({ dataDir, logger: silentLogger() });
    const hooks = Array.from({ length: count }, () => makeHook());
    for (const hook of hooks) await store.put(hook);
    await store.close();
    return hooks;
  }

  it("keeps its hooks across a restart, and a crash's cut-short last line costs none of them", async () => {
    const hooks = await storeWith(3);
    // What a crash in the middle of appending the next update leaves.
    await appendFile(path.join(dataDir, "hooks.db"), '{"_id":"hook-x","roomId":"!a:exam');
    const { logger, text } = capturingLogger();
    const reopened = await NedbHookStore.open({ dataDir, logger });
    for (const hook of hooks) assert.deepEqual(await reopened.get(hook.id), hook);
    assert.match(text(), /Dropping unreadable datafile lines/);
    await reopened.close();
  });

  it("keeps a hook whose template or name holds U+2028, which NeDB reads as a line break", async () => {
    const store = await NedbHookStore.open({ dataDir, logger: silentLogger() });
    const hook = makeHook({
      template: "first\u2028second\u2029third",
      sender: { displayName: "CI\u0085bot" },
    });
    await store.put(hook);
    await store.put(makeHook());
    await store.close();
    const reopened = await NedbHookStore.open({ dataDir, logger: silentLogger() });
    assert.deepEqual(await reopened.get(hook.id), hook);
    await reopened.close();
  });

  it("refuses to open a datafile with more damage than a crash leaves, naming the lines", async () => {
    await storeWith(2);
    const file = path.join(dataDir, "hooks.db");
    const whole = (await readFile(file, "utf8")).split("\n").filter(Boolean).length;
    await appendFile(file, "not json\nnor this\n");
    await assert.rejects(NedbHookStore.open({ dataDir, logger: silentLogger() }), (err: unknown) => {
      assert.ok(err instanceof StoreCorruptError, String(err));
      assert.equal(err.filename, file);
      assert.deepEqual(err.corruptLines, [whole + 1, whole + 2]);
      return true;
    });
  });
});
