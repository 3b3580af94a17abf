import assert from "node:assert/strict";
import { DirectMessenger } from "../../src/dm.js";
import { ALICE, BOB, botMessages, dmRooms, type Harness, startHarness } from "./helpers.js";

describe("DirectMessenger", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const createRoomRequests = () => h.hs.requestsTo("POST", "/_matrix/client/v3/createRoom");

  it("makes a private DM room, invites the user and sends the Markdown as a notice", async () => {
    await h.dms.send(ALICE, "Your **secret**: `abc`");
    const [request] = createRoomRequests();
    assert.deepEqual(request?.body, { invite: [ALICE], is_direct: true, preset: "trusted_private_chat" });
    const [roomId] = dmRooms(h.hs, ALICE);
    assert.ok(roomId);
    assert.equal(h.hs.room(roomId).members.get(ALICE), "invite");
    const [sent] = botMessages(h.hs, roomId);
    assert.deepEqual(sent?.content, {
      msgtype: "m.notice",
      body: "Your secret: abc",
      format: "org.matrix.custom.html",
      formatted_body: "Your <strong>secret</strong>: <code>abc</code>",
      "m.mentions": {},
    });
    const remembered = await h.stores.keyValue.get<{ roomId: string; createdAt: number }>("dm-rooms", ALICE);
    assert.equal(remembered?.roomId, roomId);
    assert.equal(typeof remembered?.createdAt, "number");
  });

  it("sends a pre-rendered message as given", async () => {
    await h.dms.send(ALICE, { body: "plain", formatted_body: "<b>plain</b>" });
    await h.dms.send(ALICE, { body: "only text" });
    const [roomId] = dmRooms(h.hs, ALICE);
    assert.deepEqual(
      botMessages(h.hs, roomId).map((e) => e.content),
      [
        {
          msgtype: "m.notice",
          body: "plain",
          format: "org.matrix.custom.html",
          formatted_body: "<b>plain</b>",
          "m.mentions": {},
        },
        { msgtype: "m.notice", body: "only text", "m.mentions": {} },
      ],
    );
  });

  it("reuses the room while the user is invited or joined", async () => {
    await h.dms.send(ALICE, "one");
    const [roomId] = dmRooms(h.hs, ALICE);
    await h.dms.send(ALICE, "two");
    h.hs.room(roomId!).members.set(ALICE, "join");
    await h.dms.send(ALICE, "three");
    assert.equal(createRoomRequests().length, 1);
    assert.deepEqual(
      botMessages(h.hs, roomId).map((e) => e.content.body),
      ["one", "two", "three"],
    );
  });

  it("remembers the room across instances (restarts) through the key-value store", async () => {
    await h.dms.send(ALICE, "one");
    const again = new DirectMessenger({ appservice: h.appservice, logger: h.logger });
    await again.send(ALICE, "two");
    assert.equal(createRoomRequests().length, 1);
    assert.equal(await again.roomFor(ALICE), dmRooms(h.hs, ALICE)[0]);
  });

  it("makes a new room when the user left the old one, and leaves the old one", async () => {
    await h.dms.send(ALICE, "one");
    const [oldRoom] = dmRooms(h.hs, ALICE);
    h.hs.room(oldRoom!).members.set(ALICE, "leave");
    await h.dms.send(ALICE, "two");
    const rooms = dmRooms(h.hs, ALICE);
    assert.equal(rooms.length, 2);
    const newRoom = rooms[1]!;
    assert.deepEqual(
      botMessages(h.hs, newRoom).map((e) => e.content.body),
      ["two"],
    );
    assert.equal(h.hs.room(oldRoom!).members.get(h.hs.botUserId), "leave", "the bot left the old room");
    assert.equal((await h.stores.keyValue.get<{ roomId: string }>("dm-rooms", ALICE))?.roomId, newRoom);
  });

  it("makes a new room when the bot is no longer in the old one", async () => {
    await h.dms.send(ALICE, "one");
    const [oldRoom] = dmRooms(h.hs, ALICE);
    h.hs.room(oldRoom!).members.set(h.hs.botUserId, "leave");
    await h.dms.send(ALICE, "two");
    assert.equal(createRoomRequests().length, 2);
  });

  it("makes a new room when the send is refused after all", async () => {
    await h.dms.send(ALICE, "one");
    h.hs.script("PUT", /\/send\//, { status: 403, body: { errcode: "M_FORBIDDEN", error: "not in room" } });
    await h.dms.send(ALICE, "two");
    const rooms = dmRooms(h.hs, ALICE);
    assert.equal(rooms.length, 2);
    assert.deepEqual(
      botMessages(h.hs, rooms[1]).map((e) => e.content.body),
      ["two"],
    );
  });

  it("makes one room for messages sent at once", async () => {
    await Promise.all([
      h.dms.send(ALICE, "a"),
      h.dms.send(ALICE, "b"),
      h.dms.send(ALICE, "c"),
      h.dms.send(BOB, "d"),
    ]);
    assert.equal(createRoomRequests().length, 2, "one each for Alice and Bob");
    const [aliceRoom] = dmRooms(h.hs, ALICE);
    assert.deepEqual(
      botMessages(h.hs, aliceRoom).map((e) => e.content.body),
      ["a", "b", "c"],
      "in order",
    );
  });

  it("keeps working for a user after a failure", async () => {
    h.hs.script("POST", "/_matrix/client/v3/createRoom", {
      status: 403,
      body: { errcode: "M_FORBIDDEN", error: "blocked" },
    });
    await assert.rejects(h.dms.send(ALICE, "one"), /blocked/);
    await h.dms.send(ALICE, "two");
    assert.deepEqual(
      botMessages(h.hs, dmRooms(h.hs, ALICE)[0]).map((e) => e.content.body),
      ["two"],
    );
  });

  it("refuses to message the bridge's own users", async () => {
    await assert.rejects(h.dms.send(h.hs.botUserId, "x"), /bridge's own user/);
    await assert.rejects(h.dms.send("@_webhook_ci:fake.test", "x"), /bridge's own user/);
    assert.equal(createRoomRequests().length, 0);
  });

  it("never logs what it sends", async () => {
    await h.dms.send(ALICE, "the-secret-value-123");
    assert.ok(!h.logText().includes("the-secret-value-123"));
  });
});
