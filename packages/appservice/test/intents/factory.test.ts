import assert from "node:assert/strict";
import { HomeserverClient } from "../../src/client/index.js";
import { IntentFactory } from "../../src/intents/index.js";

describe("IntentFactory", () => {
  // No request is made here, so the client never needs a server behind its URL.
  const client = new HomeserverClient({ homeserverUrl: "http://127.0.0.1:9", asToken: "t" });
  const make = (maxIntents?: number) =>
    new IntentFactory({ client, serverName: "example.org", botLocalpart: "_bridge_bot", maxIntents });

  it("keeps one intent per user", () => {
    const factory = make();
    const a = factory.getIntent("@_ghost_a:example.org");
    assert.equal(factory.getIntentForLocalpart("_ghost_a"), a);
    assert.equal(a.localpart, "_ghost_a");
    assert.equal(factory.size, 1);
  });

  it("bounds the cache: 20,000 ghosts with max 1,000 leave 1,000 intents", () => {
    const factory = make(1_000);
    const bot = factory.getBotIntent();
    const first = factory.getIntentForLocalpart("_ghost_0");
    for (let i = 0; i < 20_000; i++) factory.getIntentForLocalpart(`_ghost_${i}`);
    assert.equal(factory.size, 1_000);
    assert.notEqual(factory.getIntentForLocalpart("_ghost_0"), first, "evicted and created anew");
    assert.equal(
      factory.getIntentForLocalpart("_ghost_19999"),
      factory.getIntentForLocalpart("_ghost_19999"),
    );
    assert.equal(factory.getBotIntent(), bot, "the bot is pinned");
    assert.equal(factory.getIntent("@_bridge_bot:example.org"), bot);
    assert.ok(bot.isBot && bot.isRegistered);
  });

  it("defaults to 10,000 intents", () => {
    const factory = make();
    for (let i = 0; i < 10_050; i++) factory.getIntentForLocalpart(`_g${i}`);
    assert.equal(factory.size, 10_000);
  });

  it("refuses users of other servers and malformed IDs", () => {
    const factory = make();
    assert.throws(() => factory.getIntent("@alice:matrix.org"), TypeError);
    assert.throws(() => factory.getIntent("alice"), TypeError);
  });
});
