import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  DEFAULT_DELIVERY_KEY_MAX_ENTRIES,
  DEFAULT_DELIVERY_KEY_TTL_MS,
  deriveDeliveryKey,
  NedbDeliveryKeyStore,
  type NedbDeliveryKeyStoreOptions,
} from "../../src/ingress/idempotency.js";

const ALL_HEADERS = {
  "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
  "x-gitea-delivery": "gitea-1",
  "x-forgejo-delivery": "forgejo-1",
  "x-gitlab-event-uuid": "gitlab-1",
  "idempotency-key": "custom-1",
};

describe("deriveDeliveryKey", () => {
  it("scopes the key to the hook", () => {
    assert.deepEqual(deriveDeliveryKey("hookA", { "x-github-delivery": "d1" }), {
      key: "hookA:d1",
      header: "X-GitHub-Delivery",
      ignored: [],
    });
    assert.notEqual(
      deriveDeliveryKey("hookA", { "idempotency-key": "k" }).key,
      deriveDeliveryKey("hookB", { "idempotency-key": "k" }).key,
    );
  });

  it("takes the headers in precedence order", () => {
    const order: [string, string][] = [
      ["x-github-delivery", "X-GitHub-Delivery"],
      ["x-gitea-delivery", "X-Gitea-Delivery"],
      ["x-forgejo-delivery", "X-Forgejo-Delivery"],
      ["x-gitlab-event-uuid", "X-Gitlab-Event-UUID"],
      ["idempotency-key", "Idempotency-Key"],
    ];
    const headers: Record<string, string> = { ...ALL_HEADERS };
    for (const [name, spelled] of order) {
      const derived = deriveDeliveryKey("h", headers);
      assert.equal(derived.header, spelled);
      assert.equal(derived.key, `h:${headers[name]}`);
      delete headers[name];
    }
    assert.deepEqual(deriveDeliveryKey("h", headers), { key: undefined, header: undefined, ignored: [] });
  });

  it("trims surrounding whitespace", () => {
    assert.equal(deriveDeliveryKey("h", { "idempotency-key": "  abc  " }).key, "h:abc");
  });

  it("accepts 200 characters and ignores 201, falling back to the next header", () => {
    assert.equal(deriveDeliveryKey("h", { "idempotency-key": "k".repeat(200) }).key, `h:${"k".repeat(200)}`);
    assert.deepEqual(
      deriveDeliveryKey("h", { "x-github-delivery": "g".repeat(201), "x-gitlab-event-uuid": "gl-1" }),
      {
        key: "h:gl-1",
        header: "X-Gitlab-Event-UUID",
        ignored: [{ header: "X-GitHub-Delivery", reason: "longer than 200 characters" }],
      },
    );
  });

  it("ignores empty, unprintable and conflicting values with a reason that does not quote them", () => {
    const cases: [string | string[], string][] = [
      ["   ", "empty"],
      ["tab\there", "contains characters other than printable ASCII"],
      ["del\x7f", "contains characters other than printable ASCII"],
      ["caf\u00e9", "contains characters other than printable ASCII"],
      [["one", "two"], "sent more than once with different values"],
    ];
    for (const [value, reason] of cases) {
      assert.deepEqual(deriveDeliveryKey("h", { "idempotency-key": value }), {
        key: undefined,
        header: undefined,
        ignored: [{ header: "Idempotency-Key", reason }],
      });
    }
    assert.equal(deriveDeliveryKey("h", { "idempotency-key": ["same", "same"] }).key, "h:same");
  });
});

describe("NedbDeliveryKeyStore", () => {
  const stores: NedbDeliveryKeyStore[] = [];
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "trestle-delivery-keys-"));
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await rm(dir, { recursive: true, force: true });
  });

  async function open(options: Partial<NedbDeliveryKeyStoreOptions> = {}): Promise<NedbDeliveryKeyStore> {
    const store = await NedbDeliveryKeyStore.open({ dataDir: dir, ...options });
    stores.push(store);
    return store;
  }

  async function datafileLines(): Promise<number> {
    const text = await readFile(path.join(dir, "delivery-keys.db"), "utf8");
    return text.split("\n").filter((line) => line !== "").length;
  }

  it("defaults to the newest 50,000 keys for 7 days", () => {
    assert.equal(DEFAULT_DELIVERY_KEY_MAX_ENTRIES, 50_000);
    assert.equal(DEFAULT_DELIVERY_KEY_TTL_MS, 7 * 24 * 3600 * 1000);
  });

  it("remembers keys and says whether an add was new", async () => {
    const store = await open({ inMemory: true, dataDir: undefined });
    assert.equal(await store.has("h:1"), false);
    assert.equal(await store.add("h:1"), true);
    assert.equal(await store.has("h:1"), true);
    assert.equal(await store.add("h:1"), false);
    assert.equal(await store.has("h:2"), false);
  });

  it("lets exactly one of concurrent adds of a key claim it", async () => {
    const store = await open({ inMemory: true, dataDir: undefined });
    const results = await Promise.all(Array.from({ length: 10 }, () => store.add("h:same")));
    assert.equal(results.filter(Boolean).length, 1);
  });

  it("keeps keys across a reopen", async () => {
    const first = await open();
    await first.add("h:a");
    await first.add("h:b");
    await first.close();
    const second = await open();
    assert.equal(await second.has("h:a"), true);
    assert.equal(await second.has("h:b"), true);
    assert.equal(await second.has("h:c"), false);
    assert.equal(await second.add("h:a"), false);
  });

  it("keeps only the newest maxEntries keys, also after a reopen", async () => {
    const store = await open({ maxEntries: 5 });
    for (let i = 1; i <= 8; i += 1) await store.add(`h:${i}`);
    assert.equal(store.size, 5);
    const present = async (s: NedbDeliveryKeyStore) =>
      Promise.all(Array.from({ length: 8 }, (_, i) => s.has(`h:${i + 1}`)));
    assert.deepEqual(await present(store), [false, false, false, true, true, true, true, true]);
    await store.close();
    const reopened = await open({ maxEntries: 5 });
    assert.deepEqual(await present(reopened), [false, false, false, true, true, true, true, true]);
    await reopened.close();
    // A smaller bound applies at once on open.
    const smaller = await open({ maxEntries: 2 });
    assert.deepEqual(await present(smaller), [false, false, false, false, false, false, true, true]);
  });

  it("forgets keys after the TTL, on reopen too", async () => {
    let now = 1_000_000;
    const clock = () => now;
    const store = await open({ ttlMs: 60_000, now: clock });
    await store.add("h:old");
    now += 30_000;
    await store.add("h:new");
    now += 29_999;
    assert.equal(await store.has("h:old"), true);
    now += 1;
    assert.equal(await store.has("h:old"), false);
    assert.equal(await store.has("h:new"), true);
    await store.close();
    const reopened = await open({ ttlMs: 60_000, now: clock });
    assert.equal(reopened.size, 1, "the expired key was dropped on open");
    assert.equal(await reopened.add("h:old"), true, "an expired key can be claimed again");
    now += 30_000;
    assert.equal(await reopened.has("h:new"), false);
    assert.equal(await reopened.has("h:old"), true);
  });

  it("keeps the datafile bounded and compacts it on close", async () => {
    const store = await open({ maxEntries: 10 });
    for (let i = 0; i < 1200; i += 1) await store.add(`h:${i}`);
    // Compaction runs once 1000 lines were appended; the file never holds much more than that.
    assert.ok((await datafileLines()) < 1100, `${await datafileLines()} lines`);
    await store.close();
    assert.equal(await datafileLines(), 10);
    const reopened = await open({ maxEntries: 10 });
    assert.equal(await reopened.has("h:1199"), true);
    assert.equal(await reopened.has("h:1189"), false);
  });

  it("refuses use after close, and a missing dataDir", async () => {
    const store = await open({ inMemory: true, dataDir: undefined });
    await store.close();
    await assert.rejects(store.has("h:1"), /closed/);
    await assert.rejects(store.add("h:1"), /closed/);
    await assert.rejects(NedbDeliveryKeyStore.open({}), RangeError);
    await assert.rejects(NedbDeliveryKeyStore.open({ inMemory: true, maxEntries: 0 }), RangeError);
  });
});
