import assert from "node:assert/strict";
import {
  checkStatePower,
  hasPrivilegedCreators,
  requiredStateLevel,
  userPowerLevel,
} from "../../src/commands/index.js";
import { HOOK_STATE_EVENT } from "../../src/hooks/model.js";
import { ALICE, BOB, type Harness, ROOM, startHarness } from "./helpers.js";

describe("power levels", () => {
  describe("reading m.room.power_levels", () => {
    it("needs the event's own level, else state_default, else 50", () => {
      assert.equal(
        requiredStateLevel({ events: { [HOOK_STATE_EVENT]: 75 }, state_default: 20 }, HOOK_STATE_EVENT),
        75,
      );
      assert.equal(
        requiredStateLevel({ events: { "m.room.name": 10 }, state_default: 20 }, HOOK_STATE_EVENT),
        20,
      );
      assert.equal(requiredStateLevel({}, HOOK_STATE_EVENT), 50);
      assert.equal(requiredStateLevel(undefined, HOOK_STATE_EVENT), 50);
      assert.equal(
        requiredStateLevel({ events: { [HOOK_STATE_EVENT]: 0 } }, HOOK_STATE_EVENT),
        0,
        "0 is a level",
      );
    });

    it("gives a user their entry, else users_default, else 0", () => {
      assert.equal(userPowerLevel({ users: { [ALICE]: 60 }, users_default: 10 }, ALICE), 60);
      assert.equal(userPowerLevel({ users: { [ALICE]: 60 }, users_default: 10 }, BOB), 10);
      assert.equal(userPowerLevel({}, BOB), 0);
      assert.equal(userPowerLevel(undefined, BOB), 0);
    });

    it("reads the numeric strings old room versions allow, and ignores junk", () => {
      assert.equal(userPowerLevel({ users: { [ALICE]: "100" } }, ALICE), 100);
      assert.equal(requiredStateLevel({ state_default: " 25 " }, "x"), 25);
      assert.equal(userPowerLevel({ users: { [ALICE]: "lots" }, users_default: 5 }, ALICE), 5);
      assert.equal(userPowerLevel({ users: { [ALICE]: 1.5 } }, ALICE), 0);
      assert.equal(
        requiredStateLevel({ events: { toString: 1 } as Record<string, unknown> }, "constructor"),
        50,
      );
    });

    it("knows which room versions have privileged creators", () => {
      assert.equal(hasPrivilegedCreators("12"), true);
      assert.equal(hasPrivilegedCreators("13"), true);
      assert.equal(hasPrivilegedCreators("org.matrix.hydra.11"), true);
      assert.equal(hasPrivilegedCreators("11"), false);
      assert.equal(hasPrivilegedCreators("1"), false);
      assert.equal(hasPrivilegedCreators(undefined), false);
    });
  });

  describe("checkStatePower against a homeserver", () => {
    let h: Harness;
    beforeEach(async () => {
      h = await startHarness();
    });
    afterEach(async () => {
      await h.close();
    });

    const check = (userId: string) => checkStatePower(h.appservice.botIntent, ROOM, userId);
    const setState = (type: string, content: Record<string, unknown>) =>
      h.hs.room(ROOM).state.set(`${type}\u0000`, content);

    it("allows a moderator and refuses a plain user, saying both levels", async () => {
      assert.deepEqual(await check(ALICE), { allowed: true, required: 50, level: 50 });
      assert.deepEqual(await check(BOB), { allowed: false, required: 50, level: 0 });
    });

    it("follows an events override of the hook state event", async () => {
      setState("m.room.power_levels", { users: { [ALICE]: 50 }, events: { [HOOK_STATE_EVENT]: 80 } });
      assert.deepEqual(await check(ALICE), { allowed: false, required: 80, level: 50 });
      setState("m.room.power_levels", { users_default: 10, events: { [HOOK_STATE_EVENT]: 10 } });
      assert.deepEqual(await check(BOB), { allowed: true, required: 10, level: 10 });
    });

    it("lets the creator of a v12 room through although power levels don't list them", async () => {
      setState("m.room.power_levels", { users: {}, state_default: 50 });
      h.hs.route("GET", /\/state\/m\.room\.create\/?$/, (req) => {
        assert.equal(req.query.get("format"), "event");
        return {
          status: 200,
          body: {
            type: "m.room.create",
            sender: BOB,
            state_key: "",
            content: { room_version: "12", additional_creators: ["@carol:fake.test"] },
          },
        };
      });
      assert.deepEqual(await check(BOB), { allowed: true, required: 50, level: Number.POSITIVE_INFINITY });
      assert.equal((await check("@carol:fake.test")).allowed, true, "additional creators too");
      assert.deepEqual(await check(ALICE), { allowed: false, required: 50, level: 0 });
    });

    it("does not raise a creator in an older room version", async () => {
      h.hs.route("GET", /\/state\/m\.room\.create\/?$/, () => ({
        status: 200,
        body: { sender: BOB, content: { room_version: "10", creator: BOB } },
      }));
      assert.deepEqual(await check(BOB), { allowed: false, required: 50, level: 0 });
    });

    it("gives the creator 100 when the room has no power levels at all", async () => {
      h.hs.room(ROOM).state.delete("m.room.power_levels\u0000");
      // An older server answers with the content only; up to v10 it names the creator.
      setState("m.room.create", { room_version: "10", creator: BOB });
      assert.deepEqual(await check(BOB), { allowed: true, required: 50, level: 100 });
      assert.deepEqual(await check(ALICE), { allowed: false, required: 50, level: 0 });
    });
  });
});
