import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Koa from "koa";
import { HOOK_STATE_EVENT } from "../../src/hooks/model.js";
import { createProvisioningRouter } from "../../src/provisioning/index.js";
import { ALICE, BOB, findHookUrl, type Harness, ROOM, roomText, startHarness } from "../commands/helpers.js";

const TOKEN = "provisioning-token-for-tests";

describe("provisioning API", () => {
  let h: Harness;
  let server: Server;
  let base: string;

  beforeEach(async () => {
    h = await startHarness();
    const router = createProvisioningRouter({
      manager: h.manager,
      token: TOKEN,
      logger: h.logger,
      appservice: h.appservice,
    });
    const app = new Koa();
    app.use(router.routes());
    app.use(router.allowedMethods());
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/provisioning/v1`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await h.close();
  });

  interface Answer {
    status: number;
    body: Record<string, unknown>;
    text: string;
    headers: Headers;
  }

  async function call(
    method: string,
    path: string,
    options: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`;
    let payload: string | undefined = options.raw;
    if (options.body !== undefined) payload = JSON.stringify(options.body);
    if (payload !== undefined) headers["content-type"] ??= "application/json";
    const res = await fetch(`${base}${path}`, { method, headers, body: payload });
    const text = await res.text();
    return { status: res.status, text, headers: res.headers, body: text ? JSON.parse(text) : {} };
  }

  const hooksOf = (roomId = ROOM) => `/rooms/${encodeURIComponent(roomId)}/hooks`;

  function assertError(answer: Answer, status: number, errcode: string, message?: RegExp): void {
    assert.equal(answer.status, status, answer.text);
    assert.equal(answer.body.errcode, errcode, answer.text);
    assert.equal(typeof answer.body.error, "string");
    assert.deepEqual(Object.keys(answer.body).sort(), ["errcode", "error"]);
    if (message) assert.match(String(answer.body.error), message);
  }

  async function createHook(body: Record<string, unknown> = { name: "ci" }) {
    const answer = await call("POST", hooksOf(), { body });
    assert.equal(answer.status, 201, answer.text);
    return answer;
  }

  describe("authentication", () => {
    it("needs a bearer token: 401 without, 403 when wrong", async () => {
      assertError(await call("GET", hooksOf(), { token: null }), 401, "M_MISSING_TOKEN");
      assertError(
        await call("GET", hooksOf(), { token: null, headers: { authorization: "Basic abc" } }),
        401,
        "M_MISSING_TOKEN",
      );
      assertError(
        await call("GET", hooksOf(), { token: "wrong" }),
        403,
        "M_FORBIDDEN",
        /Wrong provisioning token/,
      );
      assertError(await call("GET", hooksOf(), { token: `${TOKEN}x` }), 403, "M_FORBIDDEN");
      assertError(
        await call("POST", hooksOf(), { token: "wrong", body: { name: "ci" } }),
        403,
        "M_FORBIDDEN",
      );
      assert.deepEqual(await h.manager.list(ROOM), [], "nothing happened without the token");
      assert.ok(!h.logText().includes(TOKEN), "the token is never logged");
    });

    it("refuses to start without a token", () => {
      assert.throws(
        () =>
          createProvisioningRouter({
            manager: h.manager,
            token: " ",
            logger: h.logger,
            appservice: h.appservice,
          }),
        /needs a token/,
      );
    });
  });

  describe("hooks", () => {
    it("creates a hook: 201 with the hook and its URL, which works", async () => {
      const { body, headers } = await createHook({
        name: "ci",
        template: "GitHub",
        msgtype: "m.text",
        sender: { displayName: "CI", avatarUrl: "mxc://fake.test/abc" },
        wait: true,
        rateLimit: { perMinute: 10, burst: 5 },
      });
      assert.equal(headers.get("cache-control"), "no-store");
      const hook = body.hook as Record<string, unknown>;
      assert.deepEqual(
        { ...hook, id: "x", createdAt: 0, updatedAt: 0 },
        {
          id: "x",
          name: "ci",
          roomId: ROOM,
          template: "github",
          msgtype: "m.text",
          sender: { displayName: "CI", avatarUrl: "mxc://fake.test/abc" },
          allowSenderOverride: true,
          allowGet: false,
          wait: true,
          signature: null,
          rateLimit: { perMinute: 10, burst: 5 },
          createdBy: h.appservice.botUserId,
          createdAt: 0,
          updatedAt: 0,
        },
      );
      const url = findHookUrl(String(body.url));
      assert.ok(url);
      assert.equal(url.id, hook.id);
      assert.equal((await h.manager.authenticate(url.id, url.secret)).name, "ci");
      assert.ok(!roomText(h.hs).includes(url.secret), "the URL is not in room state");
      assert.ok(!h.logText().includes(url.secret), "nor in the log");
      assert.equal(h.hs.room(ROOM).state.get(`${HOOK_STATE_EVENT}\u0000ci`)?.template, "github");
    });

    it("lists and gets hooks without URLs or secrets", async () => {
      const created = await createHook({ name: "ci", signature: "gitlab" });
      await createHook({ name: "alerts", template: "alertmanager" });
      const url = findHookUrl(String(created.body.url))!;
      const list = await call("GET", hooksOf());
      assert.equal(list.status, 200);
      assert.deepEqual(
        (list.body.hooks as { name: string }[]).map((hook) => hook.name),
        ["ci", "alerts"],
      );
      const one = await call("GET", `${hooksOf()}/ci`);
      assert.equal(one.status, 200);
      assert.equal((one.body.hook as { signature: string }).signature, "gitlab");
      for (const answer of [list, one]) {
        assert.ok(!answer.text.includes(url.secret));
        assert.ok(!answer.text.includes(String(created.body.signingSecret)));
        assert.ok(!/secretHash|signingSecret|hooks\.example\.test/.test(answer.text), answer.text);
      }
    });

    it("turns signature checks on at creation and returns the signing secret once", async () => {
      const { body } = await createHook({ name: "ci", signature: "github" });
      assert.equal(typeof body.signingSecret, "string");
      const record = await h.manager.get(ROOM, "ci");
      assert.equal(record.signingSecret, body.signingSecret);
      assert.equal((body.hook as { signature: string }).signature, "github");
    });

    it("updates settings with PATCH, merging the sender and clearing with null", async () => {
      await createHook({
        name: "ci",
        sender: { displayName: "CI", avatarUrl: "mxc://fake.test/a" },
        rateLimit: { perMinute: 1, burst: 1 },
      });
      const patched = await call("PATCH", `${hooksOf()}/ci`, {
        body: { msgtype: "m.text", allowGet: true, sender: { displayName: "Builds" }, rateLimit: null },
      });
      assert.equal(patched.status, 200, patched.text);
      const hook = patched.body.hook as Record<string, unknown>;
      assert.equal(hook.msgtype, "m.text");
      assert.equal(hook.allowGet, true);
      assert.deepEqual(hook.sender, { displayName: "Builds", avatarUrl: "mxc://fake.test/a" });
      assert.equal(hook.rateLimit, null);
      const cleared = await call("PATCH", `${hooksOf()}/ci`, { body: { sender: { avatarUrl: null } } });
      assert.deepEqual((cleared.body.hook as Record<string, unknown>).sender, { displayName: "Builds" });
    });

    it("switches signature checks with PATCH", async () => {
      await createHook();
      const on = await call("PATCH", `${hooksOf()}/ci`, { body: { signature: "forgejo" } });
      assert.equal(on.status, 200);
      assert.equal(typeof on.body.signingSecret, "string");
      assert.equal(on.headers.get("cache-control"), "no-store");
      const off = await call("PATCH", `${hooksOf()}/ci`, { body: { signature: null } });
      assert.equal(off.body.signingSecret, undefined);
      assert.equal((off.body.hook as { signature: unknown }).signature, null);
      assert.equal((await h.manager.get(ROOM, "ci")).signingSecret, undefined);
    });

    it("deletes with 204; the URL stops working", async () => {
      const url = findHookUrl(String((await createHook()).body.url))!;
      const answer = await call("DELETE", `${hooksOf()}/ci`);
      assert.equal(answer.status, 204);
      assert.equal(answer.text, "");
      await assert.rejects(h.manager.authenticate(url.id, url.secret), /Unknown webhook/);
      assertError(await call("DELETE", `${hooksOf()}/ci`), 404, "M_NOT_FOUND", /No webhook named "ci"/);
    });

    it("rotates: a new URL, the old one stops working", async () => {
      const old = findHookUrl(String((await createHook()).body.url))!;
      const answer = await call("POST", `${hooksOf()}/ci/rotate`);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers.get("cache-control"), "no-store");
      const fresh = findHookUrl(String(answer.body.url))!;
      assert.equal(fresh.id, old.id);
      assert.notEqual(fresh.secret, old.secret);
      await assert.rejects(h.manager.authenticate(old.id, old.secret), /Wrong webhook secret/);
      assert.equal((await h.manager.authenticate(fresh.id, fresh.secret)).name, "ci");
      assert.equal(
        (await call("POST", `${hooksOf()}/ci/rotate`, { body: {} })).status,
        200,
        "an empty object is fine",
      );
    });

    it("accepts a room alias", async () => {
      h.hs.aliases.set("#builds:fake.test", ROOM);
      const answer = await call("GET", hooksOf("#builds:fake.test"));
      assert.equal(answer.status, 200, answer.text);
      assertError(
        await call("GET", hooksOf("#nothing:fake.test")),
        404,
        "M_NOT_FOUND",
        /No room has the alias/,
      );
      assertError(
        await call("GET", hooksOf("not-a-room")),
        400,
        "M_INVALID_PARAM",
        /roomId must be a room ID/,
      );
    });
  });

  describe("errors", () => {
    it("404 for an unknown hook, 409 for a taken name", async () => {
      assertError(await call("GET", `${hooksOf()}/nope`), 404, "M_NOT_FOUND", /No webhook named "nope"/);
      assertError(await call("PATCH", `${hooksOf()}/nope`, { body: { wait: true } }), 404, "M_NOT_FOUND");
      assertError(await call("POST", `${hooksOf()}/nope/rotate`), 404, "M_NOT_FOUND");
      await createHook();
      assertError(
        await call("POST", hooksOf(), { body: { name: "ci" } }),
        409,
        "TRESTLE_HOOK_EXISTS",
        /already exists/,
      );
    });

    it("400 naming the field for a bad body", async () => {
      const cases: [unknown, string, RegExp][] = [
        [[1, 2], "M_BAD_JSON", /The body must be a JSON object/],
        [{}, "M_MISSING_PARAM", /name is required/],
        [{ name: 7 }, "M_BAD_JSON", /name must be a string/],
        [{ name: "ci", colour: "red" }, "M_BAD_JSON", /Unknown field "colour"/],
        [{ name: "Bad Name" }, "M_INVALID_PARAM", /not a valid webhook name/],
        [{ name: "ci", msgtype: "m.emote" }, "M_INVALID_PARAM", /msgtype must be m\.text or m\.notice/],
        [{ name: "ci", wait: "yes" }, "M_BAD_JSON", /wait must be true or false/],
        [{ name: "ci", template: "" }, "M_INVALID_PARAM", /template must not be empty/],
        [{ name: "ci", template: "{{#if}}" }, "M_INVALID_PARAM", /Template problem/],
        [{ name: "ci", template: "jenkins" }, "M_INVALID_PARAM", /no built-in template "jenkins"/],
        [{ name: "ci", sender: "bot" }, "M_BAD_JSON", /sender must be a JSON object/],
        [
          { name: "ci", sender: { displayName: 5 } },
          "M_BAD_JSON",
          /sender\.displayName must be a string or null/,
        ],
        [
          { name: "ci", sender: { avatarUrl: "https://x/y.png" } },
          "M_INVALID_PARAM",
          /sender\.avatarUrl: The avatar must be an mxc/,
        ],
        [{ name: "ci", sender: { nick: "x" } }, "M_BAD_JSON", /Unknown field "nick" in sender/],
        [{ name: "ci", rateLimit: { perMinute: 0, burst: 1 } }, "M_INVALID_PARAM", /rateLimit\.perMinute/],
        [{ name: "ci", rateLimit: { perMinute: 1, burst: 1.5 } }, "M_INVALID_PARAM", /rateLimit\.burst/],
        [
          { name: "ci", rateLimit: { perMinute: "1", burst: 1 } },
          "M_BAD_JSON",
          /rateLimit\.perMinute must be a number/,
        ],
        [
          { name: "ci", signature: "bitbucket" },
          "M_INVALID_PARAM",
          /signature must be one of github, gitea, forgejo, gitlab/,
        ],
        [{ name: "ci", userId: "alice" }, "M_INVALID_PARAM", /userId must be a Matrix user ID/],
      ];
      for (const [body, errcode, message] of cases) {
        assertError(await call("POST", hooksOf(), { body }), 400, errcode, message);
      }
      assertError(await call("POST", hooksOf(), { raw: "{not json" }), 400, "M_NOT_JSON");
      assertError(await call("POST", hooksOf(), { raw: "" }), 400, "M_NOT_JSON");
      assert.deepEqual(await h.manager.list(ROOM), []);

      await createHook();
      assertError(
        await call("PATCH", `${hooksOf()}/ci`, { body: {} }),
        400,
        "M_MISSING_PARAM",
        /Nothing to change/,
      );
      assertError(
        await call("PATCH", `${hooksOf()}/ci`, { body: { name: "x" } }),
        400,
        "M_BAD_JSON",
        /Unknown field "name"/,
      );
      assertError(await call("POST", `${hooksOf()}/ci/rotate`, { body: { force: true } }), 400, "M_BAD_JSON");
    });

    it("413 for a body over the limit", async () => {
      const answer = await call("POST", hooksOf(), {
        body: { name: "ci", template: `{{x}} ${"y".repeat(70_000)}` },
      });
      assertError(answer, 413, "M_TOO_LARGE");
      assert.deepEqual(await h.manager.list(ROOM), []);
    });

    it("404 when the bot is not in the room, 403 when it is only invited", async () => {
      assertError(
        await call("GET", hooksOf("!elsewhere:fake.test")),
        404,
        "M_NOT_FOUND",
        /bridge bot \(@_bridge_bot:fake\.test\) is not in room !elsewhere:fake\.test/,
      );
      h.hs.room("!invited:fake.test").members.set(h.hs.botUserId, "invite");
      // Our fake refuses member reads unless the bot has joined: make this room answer.
      h.hs.route(
        "GET",
        /^\/_matrix\/client\/v3\/rooms\/!invited%3Afake\.test\/state\/m\.room\.member\/.*$/,
        () => ({
          status: 200,
          body: { membership: "invite" },
        }),
      );
      assertError(
        await call("POST", hooksOf("!invited:fake.test"), { body: { name: "ci" } }),
        403,
        "M_FORBIDDEN",
        /not joined to room !invited:fake\.test \(its membership is "invite"\)/,
      );
    });

    it("403 when the bot may not write the hook's state event", async () => {
      h.hs.script("PUT", /\/state\//, { status: 403, body: { errcode: "M_FORBIDDEN", error: "nope" } });
      assertError(
        await call("POST", hooksOf(), { body: { name: "ci" } }),
        403,
        "TRESTLE_BOT_POWER",
        /raise my power level/,
      );
    });

    it("502 when the homeserver fails, 500 for anything else, both logged", async () => {
      h.hs.script("GET", /\/state\/m\.room\.member\//, {
        status: 400,
        body: { errcode: "M_UNKNOWN", error: "odd" },
      });
      assertError(
        await call("GET", hooksOf()),
        502,
        "M_UNKNOWN",
        /homeserver refused a request \(M_UNKNOWN\)/,
      );
      const original = h.manager.list.bind(h.manager);
      h.manager.list = async () => {
        throw new TypeError("bug");
      };
      try {
        assertError(await call("GET", hooksOf()), 500, "M_UNKNOWN", /^Internal server error$/);
      } finally {
        h.manager.list = original;
      }
      assert.match(h.logText(), /"level":50.*provisioning request failed/);
    });

    it("answers 405 for a method a route does not have", async () => {
      const answer = await call("PUT", `${hooksOf()}/ci`, { body: {} });
      assertError(answer, 405, "M_UNRECOGNIZED", /Method PUT is not allowed here/);
      assert.equal(answer.headers.get("allow"), "GET, PATCH, DELETE");
      assertError(await call("DELETE", hooksOf()), 405, "M_UNRECOGNIZED");
      assertError(await call("GET", `${hooksOf()}/ci/rotate`), 405, "M_UNRECOGNIZED");
      assertError(await call("PUT", `${hooksOf()}/ci`, { token: null }), 401, "M_MISSING_TOKEN");
      assert.equal((await call("GET", hooksOf())).status, 200, "the real routes still answer");
    });
  });

  describe("acting for a user", () => {
    it("lets a user with the power create and change hooks, recorded as the creator", async () => {
      const { body } = await createHook({ name: "ci", userId: ALICE });
      assert.equal((body.hook as { createdBy: string }).createdBy, ALICE);
      const patched = await call("PATCH", `${hooksOf()}/ci`, { body: { wait: true, userId: ALICE } });
      assert.equal(patched.status, 200);
      assert.equal((await call("POST", `${hooksOf()}/ci/rotate`, { body: { userId: ALICE } })).status, 200);
      assert.equal((await call("DELETE", `${hooksOf()}/ci?userId=${encodeURIComponent(ALICE)}`)).status, 204);
    });

    it("refuses a user without the power, naming both levels", async () => {
      assertError(
        await call("POST", hooksOf(), { body: { name: "ci", userId: BOB } }),
        403,
        "M_FORBIDDEN",
        /@bob:fake\.test needs power level 50 in room !hooks:fake\.test to manage webhooks, and has 0/,
      );
      await createHook();
      assertError(
        await call("DELETE", `${hooksOf()}/ci?userId=${encodeURIComponent(BOB)}`),
        403,
        "M_FORBIDDEN",
      );
      assertError(
        await call("PATCH", `${hooksOf()}/ci`, { body: { wait: true, userId: BOB } }),
        403,
        "M_FORBIDDEN",
      );
      assertError(
        await call("POST", `${hooksOf()}/ci/rotate`, { body: { userId: BOB } }),
        403,
        "M_FORBIDDEN",
      );
      assert.equal((await h.manager.list(ROOM)).length, 1);
    });

    it("refuses a user who is not in the room, even with a high users_default", async () => {
      h.hs.room(ROOM).state.set("m.room.power_levels\u0000", { users_default: 100 });
      assertError(
        await call("POST", hooksOf(), { body: { name: "ci", userId: "@mallory:fake.test" } }),
        403,
        "M_FORBIDDEN",
        /@mallory:fake\.test is not a member of room/,
      );
    });

    it("refuses differing users in the body and the query", async () => {
      assertError(
        await call("POST", `${hooksOf()}?userId=${encodeURIComponent(BOB)}`, {
          body: { name: "ci", userId: ALICE },
        }),
        400,
        "M_INVALID_PARAM",
        /differ/,
      );
      assertError(
        await call(
          "DELETE",
          `${hooksOf()}/ci?userId=${encodeURIComponent(ALICE)}&userId=${encodeURIComponent(BOB)}`,
        ),
        400,
        "M_INVALID_PARAM",
        /more than once/,
      );
    });
  });
});
