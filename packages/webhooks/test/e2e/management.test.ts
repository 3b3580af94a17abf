import assert from "node:assert/strict";
import {
  MatrixRequestError,
  type MatrixTestClient,
  SERVER_NAME,
  useHarness,
  waitUntil,
} from "../../../../test/harness/index.js";
import {
  BOT_ID,
  botReply,
  commandReply,
  createHookByCommand,
  expectNothingPosted,
  hookUrlIn,
  roomWithBot,
  sendWebhook,
  startWebhooksStack,
  type WebhooksStack,
  waitForDm,
} from "./stack.js";

const HOOK_STATE_EVENT = "org.trestle.webhook";

/** `http://…/webhooks/v1/<id>/<secret>` → its id and secret. */
function partsOf(url: string): { id: string; secret: string } {
  const [id, secret] = url.split("/").slice(-2);
  assert.ok(id && secret, `not a hook URL: ${url}`);
  return { id, secret };
}

function ghostOf(name: string): string {
  return `@_webhook_${name}:${SERVER_NAME}`;
}

/** The hook's `org.trestle.webhook` state event as a room member reads it; undefined when absent. */
async function hookState(client: MatrixTestClient, roomId: string, name: string) {
  try {
    return await client.request(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/${HOOK_STATE_EVENT}/${encodeURIComponent(name)}`,
    );
  } catch (err) {
    if (err instanceof MatrixRequestError && err.status === 404) return undefined;
    throw err;
  }
}

describe("e2e: trestle-webhooks on real Synapse — managing hooks (commands, provisioning)", () => {
  const harness = useHarness();
  let stack: WebhooksStack;
  let alice: MatrixTestClient;
  let bob: MatrixTestClient;
  let roomId: string;
  /** A working hook of the room (made in `before`); markers for "nothing posted" go through it. */
  let deploysUrl: string;

  /** Where alice's events stood before `deploys` was created. */
  let markBeforeCreate: number;

  /** `!webhook create <name>`: the URL from the DM, once the room has the bot's answer too. */
  const createHook = async (name: string): Promise<string> => {
    const url = await createHookByCommand(alice, roomId, name);
    await botReply(alice, roomId, (body) => body.startsWith(`Created webhook ${name}.`));
    return url;
  };

  before(async function () {
    stack = await startWebhooksStack(this, harness);
    alice = await harness.user(stack.hs, "alice");
    bob = await harness.user(stack.hs, "bob");
    roomId = await roomWithBot(alice);
    await alice.invite(roomId, bob.userId);
    await bob.join(roomId);
    // Every test uses this hook; the first one checks how its creation looked.
    markBeforeCreate = alice.events.length;
    deploysUrl = await createHook("deploys");
  });

  /** A message from the hook's ghost in the room, containing `text`. */
  const ghostMessage = (name: string, text: string) =>
    alice.waitForEvent(
      (e) =>
        e.room_id === roomId &&
        e.type === "m.room.message" &&
        e.sender === ghostOf(name) &&
        String(e.content.body).includes(text),
    );

  const listBody = async (client: MatrixTestClient) =>
    String((await commandReply(client, roomId, "!webhook list")).content.body);

  it("creates a hook by command: the URL only by DM; list and room state show it without URL or secret", async function () {
    this.timeout(30_000);
    const mark = markBeforeCreate;
    const { id, secret } = partsOf(deploysUrl);

    const reply = await botReply(alice, roomId, (b) => b.includes("Created webhook deploys"));
    assert.match(String(reply.content.body), /I've sent you its URL in a direct message/);
    const dm = alice.events.find(
      (e) => e.sender === BOT_ID && hookUrlIn(String(e.content.body)) === deploysUrl,
    );
    assert.ok(dm && dm.room_id !== roomId, "the URL came in a room other than the hook's room");

    // Nothing the room got, before or after, carries the secret or the URL.
    const roomEvents = () => alice.events.filter((e) => e.room_id === roomId);
    const leaks = (text: string) => text.includes(secret) || text.includes("/webhooks/v1/");
    assert.deepEqual(
      roomEvents()
        .slice(mark)
        .filter((e) => leaks(JSON.stringify(e.content))),
      [],
    );

    const list = await commandReply(alice, roomId, "!webhook list");
    const listed = String(list.content.body);
    assert.match(listed, /Webhooks in this room \(1\):/);
    assert.match(listed, /deploys: template generic, m\.notice, created by @alice:trestle\.test/);
    for (const text of [listed, String(list.content.formatted_body)]) {
      assert.ok(!text.includes(secret), "list shows the secret");
      assert.ok(!text.includes(id), "list shows the hook id (part of the URL)");
      assert.ok(!text.includes("http"), "list shows a URL");
    }

    const state = await hookState(alice, roomId, "deploys");
    assert.ok(state, "no org.trestle.webhook state event for the hook");
    assert.equal(state.name, "deploys");
    assert.equal(state.id, id);
    assert.equal(state.template, "generic");
    assert.equal(state.createdBy, alice.userId);
    const stateJson = JSON.stringify(state);
    assert.ok(!stateJson.includes(secret), "the state event carries the secret");
    for (const key of ["secret", "secretHash", "signingSecret", "url"]) assert.ok(!(key in state), key);

    // And the URL from the DM works.
    const res = await sendWebhook(deploysUrl, JSON.stringify({ text: "first deploy" }), {
      contentType: "application/json",
    });
    assert.equal(res.status, 202, res.text);
    await ghostMessage("deploys", "first deploy");
    assert.deepEqual(
      roomEvents().filter((e) => leaks(JSON.stringify(e.content))),
      [],
    );
  });

  it("refuses management commands from a user without power, naming the level; nothing changes", async function () {
    this.timeout(30_000);
    const listBefore = await listBody(alice);

    const refusal = await commandReply(bob, roomId, "!webhook create intruder");
    assert.equal(
      refusal.content.body,
      "You need power level 50 to manage webhooks in this room; yours is 0.",
    );
    assert.equal(await hookState(alice, roomId, "intruder"), undefined, "a state event was written");

    // Rotating someone else's hook is refused too, and its URL keeps working.
    const rotate = await commandReply(bob, roomId, "!webhook rotate deploys");
    assert.match(String(rotate.content.body), /^You need power level 50 to manage webhooks in this room/);
    const res = await sendWebhook(deploysUrl, JSON.stringify({ text: "still the old URL" }), {
      contentType: "application/json",
    });
    assert.equal(res.status, 202, res.text);
    await ghostMessage("deploys", "still the old URL");

    // Listing is open to everyone and shows the same as before.
    assert.equal(await listBody(bob), listBefore);
    assert.equal(await listBody(alice), listBefore);
    assert.ok(!listBefore.includes("intruder"));
    // Bob was sent nothing privately: no DM invite from the bot.
    await bob.sync(0);
    assert.deepEqual(
      [...bob.invites].filter((id) => id !== roomId),
      [],
    );
  });

  it("rotates a hook's URL: the new one comes by DM, the old one answers 403 and posts nothing", async function () {
    this.timeout(30_000);
    const oldUrl = await createHook("rotator");
    const before = await sendWebhook(oldUrl, JSON.stringify({ text: "before rotation" }), {
      contentType: "application/json",
    });
    assert.equal(before.status, 202, before.text);
    await ghostMessage("rotator", "before rotation");

    const mark = alice.events.length;
    const reply = await commandReply(alice, roomId, "!webhook rotate rotator");
    assert.equal(
      reply.content.body,
      "Webhook rotator has a new URL; the old one no longer works. I've sent you the new URL in a direct message.",
    );
    const dm = await waitForDm(alice, roomId, mark, (body) => {
      const url = hookUrlIn(body);
      return body.includes("rotator") && url !== undefined && url !== oldUrl;
    });
    const newUrl = hookUrlIn(String(dm.content.body))!;
    assert.equal(partsOf(newUrl).id, partsOf(oldUrl).id, "rotation keeps the hook id");
    assert.notEqual(partsOf(newUrl).secret, partsOf(oldUrl).secret);
    assert.ok(!JSON.stringify(reply.content).includes(partsOf(newUrl).secret), "the room saw the new secret");

    const markOld = alice.events.length;
    const old = await sendWebhook(oldUrl, JSON.stringify({ text: "sent to the old URL" }), {
      contentType: "application/json",
    });
    assert.equal(old.status, 403, old.text);
    assert.deepEqual(old.json, { errcode: "M_FORBIDDEN", error: "Wrong webhook secret" });
    await expectNothingPosted(alice, roomId, markOld, deploysUrl);

    const fresh = await sendWebhook(newUrl, JSON.stringify({ text: "sent to the new URL" }), {
      contentType: "application/json",
    });
    assert.equal(fresh.status, 202, fresh.text);
    await ghostMessage("rotator", "sent to the new URL");
  });

  it("removes a hook: its URL answers 404 afterwards, nothing is posted, state and list drop it", async function () {
    this.timeout(30_000);
    const url = await createHook("doomed");
    const alive = await sendWebhook(url, JSON.stringify({ text: "doomed lives" }), {
      contentType: "application/json",
    });
    assert.equal(alive.status, 202, alive.text);
    await ghostMessage("doomed", "doomed lives");

    const reply = await commandReply(alice, roomId, "!webhook remove doomed");
    assert.equal(reply.content.body, "Removed webhook doomed; its URL no longer works.");

    const mark = alice.events.length;
    const gone = await sendWebhook(url, JSON.stringify({ text: "doomed after removal" }), {
      contentType: "application/json",
    });
    assert.equal(gone.status, 404, gone.text);
    assert.deepEqual(gone.json, { errcode: "M_NOT_FOUND", error: "Unknown webhook" });
    await expectNothingPosted(alice, roomId, mark, deploysUrl);

    // The room's state is emptied (a cleared state event) and the list no longer names it.
    assert.deepEqual(await hookState(alice, roomId, "doomed"), {});
    assert.ok(!(await listBody(alice)).includes("doomed"));
  });

  it("follows a room admin's hand edit of the state event, ignores an invalid one, and removes the hook when it is cleared", async function () {
    this.timeout(60_000);
    const url = await createHook("edited");
    const state = await hookState(alice, roomId, "edited");
    assert.ok(state);
    const put = (content: Record<string, unknown>) =>
      alice.request(
        "PUT",
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/${HOOK_STATE_EVENT}/edited`,
        content,
      );
    const post = (text: string) =>
      sendWebhook(url, JSON.stringify({ text }), { contentType: "application/json" });
    const waitForLog = (msg: string) =>
      waitUntil(
        `"${msg}" in the bridge log`,
        async () => (await stack.bridge.logRecords()).some((r) => r.msg === msg),
        {
          timeoutMs: 15_000,
        },
      );

    // A valid edit: the hook posts m.text from now on.
    await put({ ...state, msgtype: "m.text" });
    await waitUntil(
      "the hook to post m.text",
      async () => {
        const text = `as text ${Date.now()}`;
        assert.equal((await post(text)).status, 202);
        return (await ghostMessage("edited", text)).content.msgtype === "m.text";
      },
      { timeoutMs: 30_000 },
    );

    // An invalid edit (an unknown signature scheme, which must never switch checks off) is ignored
    // whole: the msgtype in the same edit does not apply either.
    await put({ ...state, msgtype: "m.notice", signature: { scheme: "GitHub" } });
    await waitForLog("ignoring invalid hook settings from room state");
    assert.equal((await post("after the bad edit")).status, 202);
    assert.equal((await ghostMessage("edited", "after the bad edit")).content.msgtype, "m.text");

    // Cleared by hand: the hook is gone and its URL answers 404.
    await put({});
    await waitUntil(
      "the cleared hook's URL to answer 404",
      async () => (await post("after clearing")).status === 404,
      {
        timeoutMs: 15_000,
      },
    );
  });

  describe("the provisioning API", () => {
    const hooksPath = () => `${stack.webhookBase}/provisioning/v1/rooms/${encodeURIComponent(roomId)}/hooks`;
    const provision = (method: string, body: unknown, authorization?: string) =>
      sendWebhook(hooksPath(), body === undefined ? undefined : JSON.stringify(body), {
        method,
        contentType: "application/json",
        headers: authorization === undefined ? {} : { authorization },
      });

    it("creates a hook in alice's room with the bearer token; its URL posts into the room", async function () {
      this.timeout(30_000);
      const res = await provision("POST", { name: "automation" }, `Bearer ${stack.provisioningToken}`);
      assert.equal(res.status, 201, res.text);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const url = String(res.json.url);
      assert.equal(hookUrlIn(url), url, `not a hook URL: ${url}`);
      const hook = res.json.hook as Record<string, unknown>;
      assert.equal(hook.name, "automation");
      assert.equal(hook.id, partsOf(url).id);
      assert.ok(!JSON.stringify(hook).includes(partsOf(url).secret), "the hook view carries the secret");

      const state = await hookState(alice, roomId, "automation");
      assert.ok(state, "no state event for the provisioned hook");
      assert.equal(state.createdBy, BOT_ID);
      assert.ok(!JSON.stringify(state).includes(partsOf(url).secret));

      const posted = await sendWebhook(url, JSON.stringify({ text: "from the automation's hook" }), {
        contentType: "application/json",
      });
      assert.equal(posted.status, 202, posted.text);
      const message = await ghostMessage("automation", "from the automation's hook");
      assert.equal(message.content.msgtype, "m.notice");

      // Acting for a user who may not manage hooks is refused, and creates nothing.
      const forBob = await provision(
        "POST",
        { name: "for-bob", userId: bob.userId },
        `Bearer ${stack.provisioningToken}`,
      );
      assert.equal(forBob.status, 403, forBob.text);
      assert.equal(forBob.json.errcode, "M_FORBIDDEN");
      assert.equal(
        forBob.json.error,
        `${bob.userId} needs power level 50 in room ${roomId} to manage webhooks, and has 0`,
      );
      assert.equal(await hookState(alice, roomId, "for-bob"), undefined);
    });

    it("refuses requests without the token (401) or with a wrong one (403), creating nothing", async function () {
      this.timeout(30_000);
      const hookNames = async () => {
        const list = await provision("GET", undefined, `Bearer ${stack.provisioningToken}`);
        assert.equal(list.status, 200, list.text);
        return (list.json.hooks as { name: string }[]).map((h) => h.name).sort();
      };
      const namesBefore = await hookNames();
      assert.ok(namesBefore.includes("deploys"), `the list lacks deploys: ${namesBefore}`);
      const missing = await provision("POST", { name: "sneaky" });
      assert.equal(missing.status, 401, missing.text);
      assert.equal(missing.json.errcode, "M_MISSING_TOKEN");

      const wrong = await provision("POST", { name: "sneaky" }, "Bearer not-the-provisioning-token");
      assert.equal(wrong.status, 403, wrong.text);
      assert.deepEqual(wrong.json, { errcode: "M_FORBIDDEN", error: "Wrong provisioning token" });

      const notBearer = await provision("POST", { name: "sneaky" }, stack.provisioningToken);
      assert.equal(notBearer.status, 401, notBearer.text);

      const listWithout = await provision("GET", undefined);
      assert.equal(listWithout.status, 401, listWithout.text);
      assert.equal(listWithout.json.errcode, "M_MISSING_TOKEN");

      assert.equal(await hookState(alice, roomId, "sneaky"), undefined, "a refused request wrote state");
      assert.deepEqual(await hookNames(), namesBefore);
    });
  });
});
