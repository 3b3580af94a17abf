import assert from "node:assert/strict";
import {
  BRIDGE_INFO_EVENT_TYPES,
  type BridgeInfoContent,
  bridgeInfoStateKey,
  buildBridgeInfo,
  writeBridgeInfo,
} from "../src/bridge-info.js";
import { HomeserverClient } from "../src/client/index.js";
import { IntentFactory } from "../src/intents/index.js";
import { FakeHomeserver } from "./helpers/fake-homeserver.js";

const IRC: BridgeInfoContent = {
  bridgebot: "@_bridge_bot:fake.test",
  creator: "@alice:fake.test",
  protocol: { id: "irc", displayname: "IRC" },
  network: { id: "libera.chat", displayname: "Libera.Chat", external_url: "ircs://irc.libera.chat" },
  channel: { id: "#trestle", displayname: "#trestle", external_url: "ircs://irc.libera.chat/#trestle" },
  "org.trestle.irc.room_mode": "+nt",
};

describe("bridge info (MSC2346)", () => {
  it("builds the state key from bridge, protocol, network and channel", () => {
    assert.equal(
      buildBridgeInfo("org.trestle.irc", IRC).stateKey,
      "org.trestle.irc://irc/libera.chat/#trestle",
    );
    assert.equal(
      bridgeInfoStateKey("org.trestle.webhooks", { protocol: "webhooks", channel: "hook-1" }),
      "org.trestle.webhooks://webhooks/hook-1",
      "no network segment when there is no network",
    );
  });

  it("escapes IDs so each stays one segment and distinct IDs stay distinct", () => {
    const key = (channel: string, network?: string) =>
      bridgeInfoStateKey("org.trestle.github", { protocol: "github", network, channel });
    assert.equal(
      key("2346", "matrix-org/matrix-doc"),
      "org.trestle.github://github/matrix-org%2Fmatrix-doc/2346",
    );
    assert.notEqual(key("a/b"), key("a%2Fb"));
    assert.equal(key("a%2Fb"), "org.trestle.github://github/a%252Fb");
    assert.equal(key("x\ny"), "org.trestle.github://github/x%0Ay");
    assert.notEqual(key("b", "a"), key("a/b"), "a network is not confused with a slash in the channel");
    assert.throws(() => key(""), TypeError);
    assert.throws(() => bridgeInfoStateKey("bad/prefix", { protocol: "p", channel: "c" }), TypeError);
  });

  it("keeps the content as given, dropping undefined optionals", () => {
    const { content } = buildBridgeInfo("org.trestle.irc", {
      ...IRC,
      creator: undefined,
      network: undefined,
    });
    assert.deepEqual(content, {
      bridgebot: "@_bridge_bot:fake.test",
      protocol: { id: "irc", displayname: "IRC" },
      channel: IRC.channel,
      "org.trestle.irc.room_mode": "+nt",
    });
  });

  describe("writing", () => {
    let hs: FakeHomeserver;
    beforeEach(async () => {
      hs = await FakeHomeserver.start();
    });
    afterEach(async () => {
      await hs.close();
    });

    it("writes m.bridge and uk.half-shot.bridge with one state key as the bot", async () => {
      const client = new HomeserverClient({ homeserverUrl: hs.url, asToken: hs.asToken });
      const factory = new IntentFactory({ client, serverName: hs.serverName, botLocalpart: "_bridge_bot" });
      const ids = await writeBridgeInfo(factory.getBotIntent(), "!room:fake.test", "org.trestle.irc", IRC);
      assert.equal(ids.length, 2);
      const events = hs.room("!room:fake.test").events;
      assert.deepEqual(
        events.map((e) => [e.type, e.state_key, e.sender]),
        BRIDGE_INFO_EVENT_TYPES.map((t) => [t, "org.trestle.irc://irc/libera.chat/#trestle", hs.botUserId]),
      );
      assert.deepEqual(events[0]!.content, IRC);
      assert.deepEqual(events[1]!.content, IRC);
      const paths = hs.requestsTo("PUT", /\/state\//).map((r) => r.path);
      assert.equal(
        paths[0],
        "/_matrix/client/v3/rooms/!room%3Afake.test/state/m.bridge/org.trestle.irc%3A%2F%2Firc%2Flibera.chat%2F%23trestle",
      );
    });
  });
});
