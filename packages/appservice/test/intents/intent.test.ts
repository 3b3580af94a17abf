import assert from "node:assert/strict";
import { HomeserverClient, MatrixApiError } from "../../src/client/index.js";
import { IntentFactory, KeyedSerialQueue } from "../../src/intents/index.js";
import { FakeHomeserver, rejectionOf } from "../helpers/fake-homeserver.js";

const REGISTER = "/_matrix/client/v3/register";
const SEND = "/_matrix/client/v3/rooms/:r/send/:t/:txn";

describe("Intent", () => {
  let hs: FakeHomeserver;
  let factory: IntentFactory;

  beforeEach(async () => {
    hs = await FakeHomeserver.start();
    const client = new HomeserverClient({
      homeserverUrl: hs.url,
      asToken: hs.asToken,
      retry: { baseDelayMs: 10 },
    });
    factory = new IntentFactory({ client, serverName: hs.serverName, botLocalpart: "_bridge_bot" });
  });
  afterEach(async () => {
    await hs.close();
  });

  describe("ensureRegistered", () => {
    it("registers once and remembers it", async () => {
      const intent = factory.getIntentForLocalpart("_ghost_a");
      await intent.ensureRegistered();
      await intent.ensureRegistered();
      assert.equal(hs.requestsTo("POST", REGISTER).length, 1);
      assert.ok(intent.isRegistered);
      assert.ok(hs.users.has("@_ghost_a:fake.test"));
    });

    it("coalesces concurrent calls into one request", async () => {
      hs.script("POST", REGISTER, {
        delayMs: 50,
        status: 200,
        body: { user_id: "@_ghost_b:fake.test", home_server: "fake.test" },
      });
      const intent = factory.getIntentForLocalpart("_ghost_b");
      await Promise.all(Array.from({ length: 20 }, () => intent.ensureRegistered()));
      assert.equal(hs.requestsTo("POST", REGISTER).length, 1);
    });

    it("counts M_USER_IN_USE as success", async () => {
      hs.addUser("@_ghost_c:fake.test");
      const intent = factory.getIntentForLocalpart("_ghost_c");
      await intent.ensureRegistered();
      await intent.ensureRegistered();
      assert.equal(hs.requestsTo("POST", REGISTER).length, 1);
      assert.ok(intent.isRegistered);
    });

    it("does not remember a failure", async () => {
      hs.script("POST", REGISTER, { status: 400, body: { errcode: "M_EXCLUSIVE", error: "not yours" } });
      const intent = factory.getIntentForLocalpart("_ghost_d");
      const err = await rejectionOf(intent.ensureRegistered());
      assert.ok(err instanceof MatrixApiError && err.errcode === "M_EXCLUSIVE");
      assert.equal(intent.isRegistered, false);
      await intent.ensureRegistered();
      assert.equal(hs.requestsTo("POST", REGISTER).length, 2);
    });

    it("registers before the first action, and survives the intent being evicted", async () => {
      const small = new IntentFactory({
        client: new HomeserverClient({ homeserverUrl: hs.url, asToken: hs.asToken }),
        serverName: hs.serverName,
        botLocalpart: "_bridge_bot",
        maxIntents: 1,
      });
      const first = small.getIntentForLocalpart("_ghost_e");
      await first.sendText("!room:fake.test", "hello");
      assert.deepEqual(
        hs.requests.map((r) => r.method),
        ["POST", "PUT"],
        "register, then send",
      );
      small.getIntentForLocalpart("_ghost_other"); // evicts _ghost_e
      const second = small.getIntentForLocalpart("_ghost_e");
      assert.notEqual(second, first);
      await second.sendText("!room:fake.test", "again");
      assert.equal(hs.requestsTo("POST", REGISTER).length, 1, "no second registration after re-creation");
    });

    it("re-registers once when the homeserver has lost a user we remembered", async () => {
      const intent = factory.getIntentForLocalpart("_ghost_f");
      await intent.ensureRegistered();
      hs.users.delete("@_ghost_f:fake.test"); // e.g. a wiped dev homeserver
      const eventId = await intent.sendText("!room:fake.test", "still here");
      assert.match(eventId, /^\$/);
      assert.deepEqual(
        hs.requests.map((r) => `${r.method} ${r.path.split("/")[4]}`),
        ["POST register", "PUT rooms", "POST register", "PUT rooms"],
      );
    });

    it("never registers the bot", async () => {
      const bot = factory.getBotIntent();
      await bot.sendText("!room:fake.test", "hi");
      assert.equal(hs.requestsTo("POST", REGISTER).length, 0);
      assert.equal(hs.requests[0]!.query.has("user_id"), false, "the bot is the token's own user");
    });
  });

  describe("profile", () => {
    it("sends the display name only when it changes", async () => {
      const intent = factory.getIntentForLocalpart("_ghost_g");
      assert.equal(await intent.setDisplayName("Gee"), true);
      assert.equal(await intent.setDisplayName("Gee"), false);
      await Promise.all([intent.setDisplayName("Gee2"), intent.setDisplayName("Gee2")]);
      assert.equal(await intent.setDisplayName("Gee"), true);
      const puts = hs.requestsTo("PUT", "/_matrix/client/v3/profile/:u/displayname");
      assert.deepEqual(
        puts.map((r) => r.body),
        [{ displayname: "Gee" }, { displayname: "Gee2" }, { displayname: "Gee" }],
      );
      assert.equal(puts[0]!.query.get("user_id"), "@_ghost_g:fake.test");
      assert.equal(hs.requestsTo("GET", "/_matrix/client/v3/profile/:u").length, 1, "profile fetched once");
    });

    it("fetches an unknown profile first and skips a value already set", async () => {
      hs.addUser("@_ghost_h:fake.test");
      hs.profiles.set("@_ghost_h:fake.test", { displayname: "Aitch", avatar_url: "mxc://fake.test/h" });
      const intent = factory.getIntentForLocalpart("_ghost_h");
      assert.equal(await intent.setDisplayName("Aitch"), false);
      assert.equal(await intent.setAvatarUrl("mxc://fake.test/h"), false);
      assert.equal(await intent.setAvatarUrl("mxc://fake.test/h2"), true);
      assert.equal(hs.requestsTo("PUT", /\/profile\//).length, 1);
      assert.deepEqual(await intent.getProfile(), { displayname: "Aitch", avatar_url: "mxc://fake.test/h2" });
    });
  });

  describe("membership", () => {
    it("makes a join into a room it is known to be in a no-op", async () => {
      const intent = factory.getIntentForLocalpart("_ghost_i");
      assert.equal(await intent.join("!room:fake.test"), "!room:fake.test");
      assert.equal(await intent.join("!room:fake.test"), "!room:fake.test");
      assert.equal(hs.requestsTo("POST", "/_matrix/client/v3/join/:r").length, 1);

      // The bridge saw the ghost leave (say, kicked by a moderator): the next join is real.
      factory.noteEvent({
        type: "m.room.member",
        room_id: "!room:fake.test",
        state_key: intent.userId,
        content: { membership: "leave" },
      });
      await intent.join("!room:fake.test");
      assert.equal(hs.requestsTo("POST", "/_matrix/client/v3/join/:r").length, 2);
    });

    it("shares observed membership with intents created later", async () => {
      factory.noteMembership("!known:fake.test", "@_ghost_j:fake.test", "join");
      await factory.getIntentForLocalpart("_ghost_j").join("!known:fake.test");
      assert.equal(hs.requestsTo("POST", "/_matrix/client/v3/join/:r").length, 0);
    });

    it("joins by alias and records the room ID", async () => {
      const bot = factory.getBotIntent();
      const roomId = await bot.createRoom({ name: "R", aliasLocalpart: "_bridge_r" });
      const ghost = factory.getIntentForLocalpart("_ghost_k");
      assert.equal(await ghost.join("#_bridge_r:fake.test"), roomId);
      assert.equal(ghost.membershipIn(roomId), "join");
    });

    it("tracks invite, kick, ban and leave of others and skips redundant ones", async () => {
      const bot = factory.getBotIntent();
      const target = "@_ghost_l:fake.test";
      const roomId = await bot.createRoom({ invite: [target] });
      await bot.invite(roomId, target);
      assert.equal(
        hs.requestsTo("POST", "/_matrix/client/v3/rooms/:r/invite").length,
        0,
        "invited at creation",
      );
      await bot.kick(roomId, target, { reason: "test" });
      await bot.kick(roomId, target);
      assert.equal(hs.requestsTo("POST", "/_matrix/client/v3/rooms/:r/kick").length, 1);
      await bot.invite(roomId, target);
      await bot.ban(roomId, target);
      await bot.ban(roomId, target);
      assert.equal(hs.requestsTo("POST", "/_matrix/client/v3/rooms/:r/ban").length, 1);
      assert.equal(hs.room(roomId).members.get(target), "ban");
      await bot.leave(roomId);
      await bot.leave(roomId);
      assert.equal(hs.requestsTo("POST", "/_matrix/client/v3/rooms/:r/leave").length, 1);
    });
  });

  describe("rooms and events", () => {
    it("maps createRoom options to the wire names", async () => {
      const ghost = factory.getIntentForLocalpart("_ghost_m");
      await ghost.createRoom({
        name: "N",
        topic: "T",
        invite: ["@human:fake.test"],
        isDirect: true,
        initialState: [{ type: "m.room.join_rules", content: { join_rule: "invite" } }],
        aliasLocalpart: "_bridge_m",
        powerLevelContentOverride: { users_default: 0 },
        visibility: "private",
        preset: "trusted_private_chat",
        roomVersion: "11",
      });
      const [req] = hs.requestsTo("POST", "/_matrix/client/v3/createRoom");
      assert.deepEqual(req!.body, {
        name: "N",
        topic: "T",
        invite: ["@human:fake.test"],
        is_direct: true,
        initial_state: [{ type: "m.room.join_rules", content: { join_rule: "invite" } }],
        room_alias_name: "_bridge_m",
        power_level_content_override: { users_default: 0 },
        visibility: "private",
        preset: "trusted_private_chat",
        room_version: "11",
      });
      assert.equal(req!.query.get("user_id"), "@_ghost_m:fake.test");
    });

    it("sends with ts, state, redactions and media as the user", async () => {
      const ghost = factory.getIntentForLocalpart("_ghost_n");
      const eventId = await ghost.sendMessage("!r:fake.test", { msgtype: "m.text", body: "x" }, { ts: 1234 });
      await ghost.sendState("!r:fake.test", "m.room.topic", "", { topic: "t" }, { ts: 5678 });
      await ghost.redact("!r:fake.test", eventId, { reason: "r" });
      const mxc = await ghost.uploadMedia(Buffer.from("png"), { contentType: "image/png" });
      assert.match(mxc, /^mxc:\/\//);
      const events = hs.room("!r:fake.test").events;
      assert.deepEqual(
        events.map((e) => [e.type, e.sender]),
        [
          ["m.room.message", "@_ghost_n:fake.test"],
          ["m.room.topic", "@_ghost_n:fake.test"],
          ["m.room.redaction", "@_ghost_n:fake.test"],
        ],
      );
      assert.deepEqual(
        events.slice(0, 2).map((e) => e.origin_server_ts),
        [1234, 5678],
      );
      assert.equal(hs.requestsTo("POST", "/_matrix/media/v3/upload")[0]!.query.get("user_id"), ghost.userId);
    });

    it("keeps per-room order under concurrent sends with random server delays", async () => {
      hs.sendDelayMs = () => Math.floor(Math.random() * 15);
      const ghosts = ["_ghost_x", "_ghost_y", "_ghost_z"].map((l) => factory.getIntentForLocalpart(l));
      const rooms = ["!one:fake.test", "!two:fake.test"];
      const sends: Promise<string>[] = [];
      for (let i = 0; i < 60; i++) {
        const ghost = ghosts[i % ghosts.length]!;
        sends.push(ghost.sendText(rooms[i % 2]!, `message ${i}`));
      }
      await Promise.all(sends);
      for (const [r, roomId] of rooms.entries()) {
        const bodies = hs
          .room(roomId)
          .events.filter((e) => e.type === "m.room.message")
          .map((e) => e.content.body);
        const expected = Array.from({ length: 30 }, (_, k) => `message ${2 * k + r}`);
        assert.deepEqual(bodies, expected, `order in ${roomId}`);
      }
    });

    it("passes every outgoing event through the outgoing transform, in send order", async () => {
      const seen: string[] = [];
      const client = new HomeserverClient({ homeserverUrl: hs.url, asToken: hs.asToken });
      const encrypting = new IntentFactory({
        client,
        serverName: hs.serverName,
        botLocalpart: "_bridge_bot",
        // Stands in for the crypto layer: delays vary, order must not.
        outgoing: async (event) => {
          await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 10)));
          seen.push(String(event.content.body));
          return {
            type: "m.room.encrypted",
            content: { ciphertext: `enc(${event.content.body})`, sender: event.userId },
          };
        },
      });
      const ghost = encrypting.getIntentForLocalpart("_ghost_enc");
      await Promise.all(["one", "two", "three"].map((body) => ghost.sendText("!enc:fake.test", body)));
      assert.deepEqual(seen, ["one", "two", "three"]);
      const sent = hs.room("!enc:fake.test").events.filter((e) => e.type === "m.room.encrypted");
      assert.deepEqual(
        sent.map((e) => e.content.ciphertext),
        ["enc(one)", "enc(two)", "enc(three)"],
      );
      assert.equal(sent[0]!.content.sender, ghost.userId);
    });

    it("keeps going after a failed send, and fails only that one", async () => {
      hs.script("PUT", SEND, { status: 403, body: { errcode: "M_FORBIDDEN", error: "no" } });
      const bot = factory.getBotIntent();
      const results = await Promise.allSettled([
        bot.sendText("!r:fake.test", "a"),
        bot.sendText("!r:fake.test", "b"),
        bot.sendText("!r:fake.test", "c"),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ["rejected", "fulfilled", "fulfilled"],
      );
      assert.deepEqual(
        hs.room("!r:fake.test").events.map((e) => e.content.body),
        ["b", "c"],
      );
    });
  });

  describe("devices", () => {
    it("creates a device with PUT /devices (MSC4190) and can then masquerade as it", async () => {
      const ghost = factory.getIntentForLocalpart("_ghost_dev");
      assert.deepEqual(await ghost.createDevice("GHOSTDEV", "Trestle bridge"), { created: true });
      const [req] = hs.requestsTo("PUT", "/_matrix/client/v3/devices/:d");
      assert.equal(req!.path, "/_matrix/client/v3/devices/GHOSTDEV");
      assert.equal(req!.query.get("user_id"), ghost.userId);
      assert.deepEqual(req!.body, { display_name: "Trestle bridge" });
      ghost.deviceId = "GHOSTDEV";
      assert.deepEqual(await ghost.whoami(), {
        user_id: ghost.userId,
        is_guest: false,
        device_id: "GHOSTDEV",
      });
      assert.deepEqual(await ghost.createDevice("GHOSTDEV"), { created: false });
    });
  });
});

describe("KeyedSerialQueue", () => {
  it("runs one key in call order and different keys in parallel, holding no idle keys", async () => {
    const queue = new KeyedSerialQueue();
    const log: string[] = [];
    const task = (name: string, ms: number) => () =>
      new Promise<void>((resolve) =>
        setTimeout(() => {
          log.push(name);
          resolve();
        }, ms),
      );
    await Promise.all([
      queue.run("a", task("a1", 30)),
      queue.run("a", task("a2", 1)),
      queue.run("b", task("b1", 5)),
    ]);
    assert.deepEqual(log, ["b1", "a1", "a2"]);
    assert.equal(queue.activeKeys, 0);
  });
});
