import assert from "node:assert/strict";
import { BadJsonError } from "../../src/errors.js";
import { parseTransaction, parseTransactionDetailed } from "../../src/transactions/parse.js";
import { capturingLogger } from "../transport/helpers.js";

function roomEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "m.room.message",
    event_id: "$abc",
    room_id: "!room:hs",
    sender: "@alice:hs",
    content: { body: "secret message body", msgtype: "m.text" },
    origin_server_ts: 1700000000000,
    unsigned: { age: 12 },
    ...overrides,
  };
}

const empty = {
  events: [],
  ephemeral: [],
  toDevice: [],
  deviceLists: { changed: [], left: [] },
  deviceOneTimeKeysCount: {},
  deviceUnusedFallbackKeyTypes: {},
  dropped: 0,
};

describe("parseTransaction", () => {
  describe("whole body", () => {
    for (const body of [null, [], "text", 42, true]) {
      it(`rejects a ${JSON.stringify(body)} body with M_BAD_JSON`, () => {
        assert.throws(
          () => parseTransaction(body),
          (err: unknown) =>
            err instanceof BadJsonError && err.httpStatus === 400 && err.errcode === "M_BAD_JSON",
        );
      });
    }

    for (const events of [{}, "x", null, 3]) {
      it(`rejects events=${JSON.stringify(events)} naming the field`, () => {
        assert.throws(
          () => parseTransaction({ events }),
          (err: unknown) => {
            assert.ok(err instanceof BadJsonError);
            assert.match(err.message, /'events'/);
            return true;
          },
        );
      });
    }

    it("gives empty values for an empty object", () => {
      assert.deepEqual(parseTransaction({}), empty);
    });

    it("ignores unknown top-level keys", () => {
      assert.deepEqual(parseTransaction({ events: [], "com.example.extra": [1, 2] }), empty);
    });
  });

  describe("events", () => {
    it("keeps valid events, including extra fields Synapse sends", () => {
      const event = roomEvent({ age: 5, user_id: "@alice:hs" });
      const txn = parseTransaction({ events: [event] });
      assert.deepEqual(txn.events, [event]);
      assert.equal(txn.dropped, 0);
    });

    it("keeps state_key, telling state events apart", () => {
      const txn = parseTransaction({ events: [roomEvent({ type: "m.room.topic", state_key: "" })] });
      assert.equal(txn.events[0]?.state_key, "");
    });

    it("fills a missing unsigned with {}", () => {
      const event = roomEvent();
      delete event.unsigned;
      const txn = parseTransaction({ events: [event] });
      assert.deepEqual(txn.events[0]?.unsigned, {});
    });

    const broken: [string, Record<string, unknown>, RegExp][] = [
      ["missing type", roomEvent({ type: undefined }), /missing 'type'/],
      ["numeric event_id", roomEvent({ event_id: 7 }), /'event_id' is not a string/],
      ["missing room_id", roomEvent({ room_id: undefined }), /missing 'room_id'/],
      ["null sender", roomEvent({ sender: null }), /'sender' is not a string/],
      ["numeric state_key", roomEvent({ state_key: 1 }), /'state_key' is not a string/],
      ["array content", roomEvent({ content: [] }), /'content' is not a JSON object/],
      ["string origin_server_ts", roomEvent({ origin_server_ts: "1" }), /'origin_server_ts' is not a number/],
      ["string unsigned", roomEvent({ unsigned: "x" }), /'unsigned' is not a JSON object/],
    ];
    for (const [name, event, problem] of broken) {
      it(`drops an event with ${name}, warns and counts it`, () => {
        const { log, lines } = capturingLogger();
        const good = roomEvent({ event_id: "$good" });
        const txn = parseTransaction({ events: [event, good] }, log);
        assert.deepEqual(
          txn.events.map((e) => e.event_id),
          ["$good"],
        );
        assert.equal(txn.dropped, 1);
        assert.equal(lines.length, 1);
        assert.equal(lines[0]?.level, 40);
        assert.equal(lines[0]?.index, 0);
        assert.match(String(lines[0]?.problem), problem);
      });
    }

    it("drops entries that are not objects", () => {
      const txn = parseTransaction({ events: ["x", null, 3, roomEvent()] });
      assert.equal(txn.events.length, 1);
      assert.equal(txn.dropped, 3);
    });

    it("never logs event content", () => {
      const { log, lines } = capturingLogger();
      parseTransaction({ events: [roomEvent({ sender: 5 })] }, log);
      assert.ok(lines.length > 0);
      assert.doesNotMatch(JSON.stringify(lines), /secret message body/);
      assert.equal(lines[0]?.event_id, "$abc");
    });
  });

  describe("eventsAsSent (may the store keep the body text?)", () => {
    it("is true when every room event is kept as sent, whatever else the body holds", () => {
      const body = { events: [roomEvent(), roomEvent({ event_id: "$2" })], ephemeral: [{ bad: 1 }] };
      const { txn, eventsAsSent } = parseTransactionDetailed(body);
      assert.equal(eventsAsSent, true);
      assert.equal(txn.events[0], body.events[0], "the body's own objects, not copies");
    });

    it("is false when a room event is dropped", () => {
      assert.equal(
        parseTransactionDetailed({ events: [roomEvent({ sender: 1 }), roomEvent()] }).eventsAsSent,
        false,
      );
    });

    it("is false whenever the body carries to-device data, even all dropped or under the other name", () => {
      const malformed = { events: [roomEvent()], to_device: [{ not: "a to-device message" }] };
      assert.equal(parseTransactionDetailed(malformed).eventsAsSent, false);
      const hidden = {
        events: [roomEvent()],
        to_device: [],
        "de.sorunome.msc2409.to_device": [{ type: "m.room_key", sender: "@a:hs", content: {} }],
      };
      assert.equal(parseTransactionDetailed(hidden).eventsAsSent, false);
    });

    it("is false when a missing unsigned is filled in, and the body is not changed", () => {
      const event = roomEvent();
      delete event.unsigned;
      const { txn, eventsAsSent } = parseTransactionDetailed({ events: [event] });
      assert.equal(eventsAsSent, false);
      assert.deepEqual(txn.events[0]?.unsigned, {});
      assert.equal("unsigned" in event, false);
    });
  });

  describe("ephemeral (MSC2409)", () => {
    const typing = { type: "m.typing", room_id: "!room:hs", content: { user_ids: ["@a:hs"] } };
    const presence = { type: "m.presence", sender: "@a:hs", content: { presence: "online" } };

    it("reads the stable 'ephemeral' key", () => {
      assert.deepEqual(parseTransaction({ ephemeral: [typing, presence] }).ephemeral, [typing, presence]);
    });

    it("reads the unstable de.sorunome.msc2409.ephemeral key", () => {
      assert.deepEqual(parseTransaction({ "de.sorunome.msc2409.ephemeral": [typing] }).ephemeral, [typing]);
    });

    it("prefers the stable key when both are present", () => {
      const txn = parseTransaction({ ephemeral: [typing], "de.sorunome.msc2409.ephemeral": [presence] });
      assert.deepEqual(txn.ephemeral, [typing]);
    });

    it("drops malformed ephemeral events and counts them", () => {
      const txn = parseTransaction({
        ephemeral: [{ type: "m.typing" }, { ...typing, room_id: 5 }, { content: {} }, typing],
      });
      assert.deepEqual(txn.ephemeral, [typing]);
      assert.equal(txn.dropped, 3);
    });

    it("ignores a section that is not an array, with a warning", () => {
      const { log, lines } = capturingLogger();
      const txn = parseTransaction({ ephemeral: { type: "m.typing" } }, log);
      assert.deepEqual(txn.ephemeral, []);
      assert.equal(lines[0]?.field, "ephemeral");
    });
  });

  describe("to-device (MSC2409)", () => {
    const message = {
      type: "m.test",
      sender: "@human:hs",
      content: { hello: "world" },
      to_user_id: "@_irc_bob:hs",
      to_device_id: "BRIDGEDEV",
    };

    it("reads the stable 'to_device' key", () => {
      assert.deepEqual(parseTransaction({ to_device: [message] }).toDevice, [message]);
    });

    it("reads the unstable de.sorunome.msc2409.to_device key", () => {
      assert.deepEqual(parseTransaction({ "de.sorunome.msc2409.to_device": [message] }).toDevice, [message]);
    });

    it("prefers the stable key when both are present", () => {
      const other = { ...message, type: "m.other" };
      const txn = parseTransaction({ to_device: [message], "de.sorunome.msc2409.to_device": [other] });
      assert.deepEqual(txn.toDevice, [message]);
    });

    for (const field of ["type", "sender", "to_user_id", "to_device_id"]) {
      it(`drops a message without ${field}`, () => {
        const txn = parseTransaction({ to_device: [{ ...message, [field]: undefined }] });
        assert.deepEqual(txn.toDevice, []);
        assert.equal(txn.dropped, 1);
      });
    }

    it("ignores a section that is not an array", () => {
      assert.deepEqual(parseTransaction({ "de.sorunome.msc2409.to_device": "x" }).toDevice, []);
    });
  });

  describe("device lists (MSC3202)", () => {
    const lists = { changed: ["@a:hs"], left: ["@b:hs"] };

    it("reads the stable 'device_lists' key", () => {
      assert.deepEqual(parseTransaction({ device_lists: lists }).deviceLists, lists);
    });

    it("reads the unstable org.matrix.msc3202.device_lists key", () => {
      assert.deepEqual(parseTransaction({ "org.matrix.msc3202.device_lists": lists }).deviceLists, lists);
    });

    it("prefers the stable key when both are present", () => {
      const txn = parseTransaction({
        device_lists: lists,
        "org.matrix.msc3202.device_lists": { changed: ["@c:hs"], left: [] },
      });
      assert.deepEqual(txn.deviceLists, lists);
    });

    it("fills a missing half with []", () => {
      assert.deepEqual(parseTransaction({ device_lists: { changed: ["@a:hs"] } }).deviceLists, {
        changed: ["@a:hs"],
        left: [],
      });
    });

    it("drops non-string entries and a half that is not an array, with warnings", () => {
      const { log, lines } = capturingLogger();
      const txn = parseTransaction({ device_lists: { changed: ["@a:hs", 3, null], left: "@b:hs" } }, log);
      assert.deepEqual(txn.deviceLists, { changed: ["@a:hs"], left: [] });
      assert.deepEqual(
        lines.map((l) => l.field),
        ["device_lists.changed", "device_lists.left"],
      );
    });

    it("ignores a section that is not an object", () => {
      const { log, lines } = capturingLogger();
      assert.deepEqual(parseTransaction({ device_lists: [] }, log).deviceLists, { changed: [], left: [] });
      assert.equal(lines[0]?.field, "device_lists");
    });
  });

  describe("one-time key counts (MSC3202)", () => {
    const counts = { "@a:hs": { DEV1: { signed_curve25519: 50 } } };

    it("reads the stable 'device_one_time_keys_count' key", () => {
      assert.deepEqual(
        parseTransaction({ device_one_time_keys_count: counts }).deviceOneTimeKeysCount,
        counts,
      );
    });

    it("reads the unstable org.matrix.msc3202.device_one_time_keys_count key", () => {
      const txn = parseTransaction({ "org.matrix.msc3202.device_one_time_keys_count": counts });
      assert.deepEqual(txn.deviceOneTimeKeysCount, counts);
    });

    it("reads the older unstable org.matrix.msc3202.device_one_time_key_counts key", () => {
      const txn = parseTransaction({ "org.matrix.msc3202.device_one_time_key_counts": counts });
      assert.deepEqual(txn.deviceOneTimeKeysCount, counts);
    });

    it("prefers the stable key when both are present", () => {
      const txn = parseTransaction({
        device_one_time_keys_count: counts,
        "org.matrix.msc3202.device_one_time_keys_count": { "@z:hs": {} },
      });
      assert.deepEqual(txn.deviceOneTimeKeysCount, counts);
    });

    it("drops entries of the wrong type at every level, keeping the rest", () => {
      const { log, lines } = capturingLogger();
      const txn = parseTransaction(
        {
          device_one_time_keys_count: {
            "@a:hs": { DEV1: { signed_curve25519: 50, bad: "50", negative: -1 }, DEV2: 3 },
            "@b:hs": [],
          },
        },
        log,
      );
      assert.deepEqual(txn.deviceOneTimeKeysCount, { "@a:hs": { DEV1: { signed_curve25519: 50 } } });
      assert.deepEqual(lines.map((l) => l.field).sort(), [
        "device_one_time_keys_count.@a:hs.DEV1.bad",
        "device_one_time_keys_count.@a:hs.DEV1.negative",
        "device_one_time_keys_count.@a:hs.DEV2",
        "device_one_time_keys_count.@b:hs",
      ]);
    });

    it("ignores a section that is not an object", () => {
      assert.deepEqual(parseTransaction({ device_one_time_keys_count: [1] }).deviceOneTimeKeysCount, {});
    });

    it("keeps a __proto__ user key as data, not as a prototype", () => {
      const txn = parseTransaction(JSON.parse('{"device_one_time_keys_count":{"__proto__":{"D":{"x":1}}}}'));
      assert.equal(Object.getPrototypeOf(txn.deviceOneTimeKeysCount), Object.prototype);
      assert.deepEqual(Object.keys(txn.deviceOneTimeKeysCount), ["__proto__"]);
    });
  });

  describe("unused fallback key types (MSC3202)", () => {
    const types = { "@a:hs": { DEV1: ["signed_curve25519"] } };

    it("reads the stable 'device_unused_fallback_key_types' key", () => {
      const txn = parseTransaction({ device_unused_fallback_key_types: types });
      assert.deepEqual(txn.deviceUnusedFallbackKeyTypes, types);
    });

    it("reads the unstable org.matrix.msc3202.device_unused_fallback_key_types key", () => {
      const txn = parseTransaction({ "org.matrix.msc3202.device_unused_fallback_key_types": types });
      assert.deepEqual(txn.deviceUnusedFallbackKeyTypes, types);
    });

    it("prefers the stable key when both are present", () => {
      const txn = parseTransaction({
        device_unused_fallback_key_types: types,
        "org.matrix.msc3202.device_unused_fallback_key_types": { "@z:hs": {} },
      });
      assert.deepEqual(txn.deviceUnusedFallbackKeyTypes, types);
    });

    it("drops devices whose value is not an array and non-string algorithms", () => {
      const txn = parseTransaction({
        device_unused_fallback_key_types: { "@a:hs": { DEV1: ["signed_curve25519", 4], DEV2: "x" } },
      });
      assert.deepEqual(txn.deviceUnusedFallbackKeyTypes, { "@a:hs": { DEV1: ["signed_curve25519"] } });
    });

    it("ignores a section that is not an object", () => {
      const txn = parseTransaction({ device_unused_fallback_key_types: "x" });
      assert.deepEqual(txn.deviceUnusedFallbackKeyTypes, {});
    });
  });

  it("parses a transaction carrying only device-list data, as Synapse sends after start-up", () => {
    const txn = parseTransaction({
      events: [],
      "de.sorunome.msc2409.ephemeral": [],
      "de.sorunome.msc2409.to_device": [],
      "org.matrix.msc3202.device_lists": { changed: ["@human:hs"], left: [] },
    });
    assert.deepEqual(txn, { ...empty, deviceLists: { changed: ["@human:hs"], left: [] } });
  });
});
