import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import {
  type ClientEvent,
  type MatrixTestClient,
  SERVER_NAME,
  useHarness,
} from "../../../../test/harness/index.js";
import {
  BOT_ID,
  botReply,
  commandReply,
  createHookByCommand,
  expectNothingPosted,
  roomWithBot,
  sendWebhook,
  startWebhooksStack,
  type WebhookResponse,
  type WebhooksStack,
  waitForDm,
} from "./stack.js";

const JSON_TYPE = "application/json";

function ghostOf(name: string): string {
  return `@_webhook_${name}:${SERVER_NAME}`;
}

describe("e2e: trestle-webhooks on real Synapse — receiving webhooks", () => {
  const harness = useHarness();
  let stack: WebhooksStack;
  let alice: MatrixTestClient;
  let roomId: string;
  /** The room's everyday hook (generic template, defaults). */
  let receiverUrl: string;

  /** `!webhook create <name>`: the URL from the DM, once the room has the bot's answer too. */
  const createHook = async (name: string): Promise<string> => {
    const url = await createHookByCommand(alice, roomId, name);
    await botReply(alice, roomId, (body) => body.startsWith(`Created webhook ${name}.`));
    return url;
  };

  before(async function () {
    stack = await startWebhooksStack(this, harness);
    alice = await harness.user(stack.hs, "alice");
    roomId = await roomWithBot(alice);
    receiverUrl = await createHook("receiver");
  });

  /** The message from `hook`'s ghost in the room whose body contains `text`. */
  const arrived = (text: string, hook = "receiver"): Promise<ClientEvent> =>
    alice.waitForEvent(
      (e) =>
        e.room_id === roomId &&
        e.type === "m.room.message" &&
        e.sender === ghostOf(hook) &&
        String(e.content.body).includes(text),
    );

  /** Asserts an error answer: the status, the exact JSON body, and that no message came of it. */
  const expectRefused = async (
    request: () => Promise<WebhookResponse>,
    status: number,
    body: Record<string, unknown>,
  ): Promise<WebhookResponse> => {
    const mark = alice.events.length;
    const res = await request();
    assert.equal(res.status, status, res.text);
    assert.deepEqual(res.json, body);
    assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
    await expectNothingPosted(alice, roomId, mark, receiverUrl);
    return res;
  };

  const wrongSecret = (url: string) => url.replace(/[^/]+$/, "wrong-secret-0123456789abcdef");

  describe("content types", () => {
    it("JSON: a `text` field becomes the message", async () => {
      const res = await sendWebhook(receiverUrl, JSON.stringify({ text: "json says hello" }), {
        contentType: JSON_TYPE,
      });
      assert.equal(res.status, 202, res.text);
      assert.equal(res.json.status, "accepted");
      assert.equal(typeof res.json.id, "string");
      const message = await arrived("json says hello");
      assert.equal(message.content.body, "json says hello");
      assert.equal(message.content.msgtype, "m.notice");
    });

    it("application/x-www-form-urlencoded: the fields (title, text) become the message", async () => {
      const form = new URLSearchParams({ title: "Nightly build", text: "all green & happy" }).toString();
      const res = await sendWebhook(receiverUrl, form, { contentType: "application/x-www-form-urlencoded" });
      assert.equal(res.status, 202, res.text);
      const message = await arrived("all green & happy");
      assert.equal(message.content.body, "Nightly build\nall green & happy");
      assert.match(String(message.content.formatted_body), /<strong>Nightly build<\/strong>/);
    });

    it("Slack's payload=<json> form: the JSON inside is the payload", async () => {
      const form = new URLSearchParams({ payload: JSON.stringify({ text: "slack form says hello" }) });
      const res = await sendWebhook(receiverUrl, form.toString(), {
        contentType: "application/x-www-form-urlencoded",
      });
      assert.equal(res.status, 202, res.text);
      const message = await arrived("slack form says hello");
      // Read as fields, it would have been shown as data with a `payload` key.
      assert.equal(message.content.body, "slack form says hello");
    });

    it("text/plain: the body is the message", async () => {
      const res = await sendWebhook(receiverUrl, "plain text says hello", {
        contentType: "text/plain; charset=utf-8",
      });
      assert.equal(res.status, 202, res.text);
      const message = await arrived("plain text says hello");
      assert.equal(message.content.body, "plain text says hello");
    });
  });

  describe("refusals: each answers an error and posts nothing", () => {
    it("404 for an unknown hook id, and for a path that is no hook URL", async () => {
      const secret = receiverUrl.split("/").pop()!;
      await expectRefused(
        () =>
          sendWebhook(`${stack.webhookBase}/webhooks/v1/AAAAAAAAAAAAAAAA/${secret}`, '{"text":"lost"}', {
            contentType: JSON_TYPE,
          }),
        404,
        { errcode: "M_NOT_FOUND", error: "Unknown webhook" },
      );
      await expectRefused(
        () =>
          sendWebhook(`${stack.webhookBase}/webhooks/v2/whatever`, '{"text":"lost"}', {
            contentType: JSON_TYPE,
          }),
        404,
        { errcode: "M_UNRECOGNIZED", error: "Not a webhook URL: POST to /webhooks/v1/<hook id>/<secret>" },
      );
    });

    it("403 for a wrong secret", async () => {
      await expectRefused(
        () => sendWebhook(wrongSecret(receiverUrl), '{"text":"forged"}', { contentType: JSON_TYPE }),
        403,
        { errcode: "M_FORBIDDEN", error: "Wrong webhook secret" },
      );
    });

    it("400 for a body that is not JSON, naming where it breaks", async () => {
      const mark = alice.events.length;
      const res = await sendWebhook(receiverUrl, '{"text": "unterminated', { contentType: JSON_TYPE });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.errcode, "M_NOT_JSON");
      assert.equal(
        res.json.error,
        "Request body is not valid JSON: unterminated string at line 1, column 23 (position 22)",
      );
      await expectNothingPosted(alice, roomId, mark, receiverUrl);
    });

    it("413 for a body over the limit (1.5 MiB against the default 1 MiB)", async function () {
      this.timeout(30_000);
      const big = JSON.stringify({ text: "x".repeat(1.5 * 1024 * 1024) });
      await expectRefused(() => sendWebhook(receiverUrl, big, { contentType: JSON_TYPE }), 413, {
        errcode: "M_TOO_LARGE",
        error: "Request body is larger than the limit of 1048576 bytes",
      });
    });

    it("415 for application/xml", async () => {
      await expectRefused(
        () => sendWebhook(receiverUrl, "<text>hello</text>", { contentType: "application/xml" }),
        415,
        {
          errcode: "TRESTLE_UNSUPPORTED_MEDIA_TYPE",
          error: "XML bodies are not supported: send JSON, a form or plain text",
        },
      );
    });

    it("405 with Allow for GET while the hook does not allow it; `options get=on` allows it", async function () {
      this.timeout(30_000);
      const url = await createHook("getter");
      const res = await expectRefused(
        () => sendWebhook(`${url}?text=via+get`, undefined, { method: "GET" }),
        405,
        {
          errcode: "M_UNRECOGNIZED",
          error:
            "Method GET is not allowed here: use POST or PUT; GET is off for this webhook (a room admin can allow it), as link previews would fire it",
        },
      );
      assert.equal(res.headers.get("allow"), "POST, PUT");

      const reply = await commandReply(alice, roomId, "!webhook options getter get=on");
      assert.match(String(reply.content.body), /^Updated getter: .*get=on/);
      const allowed = await sendWebhook(`${url}?text=hello+via+GET`, undefined, { method: "GET" });
      assert.equal(allowed.status, 202, allowed.text);
      const message = await arrived("hello via GET", "getter");
      assert.equal(message.content.body, "hello via GET");
    });

    it("429 with Retry-After once a hook's own rate limit (`options ratelimit=1/2`) is used up", async function () {
      this.timeout(30_000);
      const url = await createHook("limited");
      const reply = await commandReply(alice, roomId, "!webhook options limited ratelimit=1/2");
      assert.equal(
        reply.content.body,
        "Updated limited: msgtype=m.notice, get=off, wait=off, override=on, ratelimit=1/2",
      );

      for (const n of [1, 2]) {
        const ok = await sendWebhook(url, JSON.stringify({ text: `burst ${n} of 2` }), {
          contentType: JSON_TYPE,
        });
        assert.equal(ok.status, 202, `request ${n}: ${ok.text}`);
      }
      // At once, before waiting for the two to arrive: the bucket refills continuously, so the
      // Retry-After checked below is only near a minute while little time has passed.
      const res = await sendWebhook(url, JSON.stringify({ text: "one too many" }), {
        contentType: JSON_TYPE,
      });
      await arrived("burst 1 of 2", "limited");
      // The hook's messages are posted in order: had the refused one been posted, it would follow.
      const mark = alice.events.indexOf(await arrived("burst 2 of 2", "limited")) + 1;
      assert.equal(res.status, 429, res.text);
      assert.equal(res.json.errcode, "M_LIMIT_EXCEEDED");
      assert.equal(res.json.error, "Too many requests to this webhook");
      // One a minute: the next token is about a minute away, in whole seconds, said both ways.
      const retryAfter = Number(res.headers.get("retry-after"));
      assert.ok(
        Number.isInteger(retryAfter) && retryAfter >= 50 && retryAfter <= 60,
        `Retry-After ${retryAfter}`,
      );
      assert.equal(res.json.retry_after_ms, retryAfter * 1000);
      await expectNothingPosted(alice, roomId, mark, receiverUrl);
    });

    /** Turns on `scheme` checks for a new hook; its URL, and the signing secret from the DM. */
    async function signedHook(name: string, scheme: string): Promise<{ url: string; signingSecret: string }> {
      const url = await createHook(name);
      const mark = alice.events.length;
      const reply = await commandReply(alice, roomId, `!webhook verify ${name} ${scheme}`);
      assert.equal(
        reply.content.body,
        `Signature checks (${scheme}) are on for ${name}: requests without a valid signature are refused. I've sent you the signing secret in a direct message.`,
      );
      const dm = await waitForDm(alice, roomId, mark, (body) =>
        body.includes(`signing secret of webhook ${name}`),
      );
      const lines = String(dm.content.body).split("\n");
      const signingSecret = lines[lines.findIndex((line) => line.includes(`(${scheme}):`)) + 2]?.trim() ?? "";
      assert.match(signingSecret, /^[A-Za-z0-9_-]{16,}$/, `no signing secret in the DM: ${dm.content.body}`);
      // The room never sees it: not in the answer, not in the hook's state.
      assert.ok(!JSON.stringify(reply.content).includes(signingSecret));
      const state = await alice.request(
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/org.trestle.webhook/${name}`,
      );
      assert.deepEqual(state.signature, { scheme });
      assert.ok(!JSON.stringify(state).includes(signingSecret), "the state event carries the signing secret");
      return { url, signingSecret };
    }

    it("403 for a missing or wrong X-Hub-Signature-256 once `verify github` is on; the right one posts", async function () {
      this.timeout(30_000);
      const { url, signingSecret } = await signedHook("signed", "github");
      const body = JSON.stringify({ text: "signed and sealed" });
      const sign = (key: string) => `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;
      await expectRefused(() => sendWebhook(url, body, { contentType: JSON_TYPE }), 403, {
        errcode: "M_FORBIDDEN",
        error: "X-Hub-Signature-256 header is missing",
      });
      await expectRefused(
        () =>
          sendWebhook(url, body, {
            contentType: JSON_TYPE,
            headers: { "X-Hub-Signature-256": sign("not-the-signing-secret") },
          }),
        403,
        {
          errcode: "M_FORBIDDEN",
          error:
            "X-Hub-Signature-256 header does not match (HMAC-SHA256 of the body with this hook's secret differs)",
        },
      );

      const right = await sendWebhook(url, body, {
        contentType: JSON_TYPE,
        headers: { "X-Hub-Signature-256": sign(signingSecret) },
      });
      assert.equal(right.status, 202, right.text);
      const message = await arrived("signed and sealed", "signed");
      assert.equal(message.content.body, "signed and sealed");
    });

    it("gitlab: 403 without X-Gitlab-Token or with a wrong one; the signing secret as the token posts", async function () {
      this.timeout(30_000);
      const { url, signingSecret } = await signedHook("labbed", "gitlab");
      const body = JSON.stringify({ text: "from the lab" });
      await expectRefused(() => sendWebhook(url, body, { contentType: JSON_TYPE }), 403, {
        errcode: "M_FORBIDDEN",
        error: "X-Gitlab-Token header is missing",
      });
      await expectRefused(
        () => sendWebhook(url, body, { contentType: JSON_TYPE, headers: { "X-Gitlab-Token": "guess" } }),
        403,
        { errcode: "M_FORBIDDEN", error: "X-Gitlab-Token header does not match (wrong token)" },
      );
      const right = await sendWebhook(url, body, {
        contentType: JSON_TYPE,
        headers: { "X-Gitlab-Token": signingSecret },
      });
      assert.equal(right.status, 202, right.text);
      assert.equal((await arrived("from the lab", "labbed")).content.body, "from the lab");
    });

    it("gitea: 403 without a signature or with a wrong one; X-Gitea-Signature, or Forgejo's two headers, post", async function () {
      this.timeout(30_000);
      const { url, signingSecret } = await signedHook("tea", "gitea");
      const hmac = (key: string, text: string) => createHmac("sha256", key).update(text).digest("hex");
      const first = JSON.stringify({ text: "tea for one" });
      await expectRefused(() => sendWebhook(url, first, { contentType: JSON_TYPE }), 403, {
        errcode: "M_FORBIDDEN",
        error:
          "X-Gitea-Signature header is missing (either X-Gitea-Signature or X-Forgejo-Signature is required)",
      });
      await expectRefused(
        () =>
          sendWebhook(url, first, {
            contentType: JSON_TYPE,
            headers: { "X-Gitea-Signature": hmac("not-the-signing-secret", first) },
          }),
        403,
        {
          errcode: "M_FORBIDDEN",
          error:
            "X-Gitea-Signature header does not match (HMAC-SHA256 of the body with this hook's secret differs)",
        },
      );
      const right = await sendWebhook(url, first, {
        contentType: JSON_TYPE,
        headers: { "X-Gitea-Signature": hmac(signingSecret, first) },
      });
      assert.equal(right.status, 202, right.text);
      await arrived("tea for one", "tea");
      // Forgejo sends both headers; each must verify, so a good one cannot carry a bad one.
      const second = JSON.stringify({ text: "tea for two" });
      await expectRefused(
        () =>
          sendWebhook(url, second, {
            contentType: JSON_TYPE,
            headers: {
              "X-Gitea-Signature": hmac(signingSecret, second),
              "X-Forgejo-Signature": hmac("not-the-signing-secret", second),
            },
          }),
        403,
        {
          errcode: "M_FORBIDDEN",
          error:
            "X-Forgejo-Signature header does not match (HMAC-SHA256 of the body with this hook's secret differs)",
        },
      );
      const both = await sendWebhook(url, second, {
        contentType: JSON_TYPE,
        headers: {
          "X-Gitea-Signature": hmac(signingSecret, second),
          "X-Forgejo-Signature": hmac(signingSecret, second),
        },
      });
      assert.equal(both.status, 202, both.text);
      assert.equal((await arrived("tea for two", "tea")).content.body, "tea for two");
    });
  });

  it("a redelivery (same X-GitHub-Delivery) answers duplicate and is posted once", async () => {
    const delivery = randomUUID();
    const body = JSON.stringify({ text: `delivery ${delivery}` });
    const headers = { "X-GitHub-Delivery": delivery };
    const first = await sendWebhook(receiverUrl, body, { contentType: JSON_TYPE, headers });
    assert.equal(first.status, 202, first.text);
    assert.equal(first.json.status, "accepted");
    await arrived(`delivery ${delivery}`);

    const mark = alice.events.length;
    const again = await sendWebhook(receiverUrl, body, { contentType: JSON_TYPE, headers });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json, { status: "duplicate" });
    await expectNothingPosted(alice, roomId, mark, receiverUrl);
    const copies = alice.events.filter(
      (e) => e.room_id === roomId && e.type === "m.room.message" && e.content.body === `delivery ${delivery}`,
    );
    assert.equal(copies.length, 1);
  });

  it("?wait=true answers 200 once delivered, with the event id alice sees", async () => {
    const res = await sendWebhook(`${receiverUrl}?wait=true`, JSON.stringify({ text: "waited for" }), {
      contentType: JSON_TYPE,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.status, "delivered");
    assert.equal(typeof res.json.id, "string");
    assert.match(String(res.json.event_id), /^\$/);
    const message = await arrived("waited for");
    assert.equal(message.event_id, res.json.event_id);
    assert.equal(message.content.body, "waited for");
  });

  it("markup in a payload is neutralised: no script, no event handler in formatted_body; body readable", async () => {
    const text = "Look: <script>alert(1)</script> and <img src=x onerror=alert(1)> then **bold**";
    const res = await sendWebhook(
      receiverUrl,
      JSON.stringify({ title: '<b onmouseover="alert(2)">Title</b>', text }),
      { contentType: JSON_TYPE },
    );
    assert.equal(res.status, 202, res.text);
    const message = await arrived("then");
    const html = String(message.content.formatted_body);
    assert.equal(message.content.format, "org.matrix.custom.html");
    // No element or attribute of the payload survives; as escaped text it is harmless.
    const tags = html.match(/<[a-z][^>]*>/gi) ?? [];
    assert.deepEqual(
      tags.filter((tag) => !/^<(strong|br \/)>$/.test(tag)),
      [],
      `unexpected elements in ${html}`,
    );
    assert.doesNotMatch(html, /<(script|img)/i);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(html, /<strong>bold<\/strong>/);
    // The plain body keeps the text as it was sent (a client shows it as text, never as HTML).
    assert.equal(
      message.content.body,
      '<b onmouseover="alert(2)">Title</b>\nLook: <script>alert(1)</script> and <img src=x onerror=alert(1)> then bold',
    );
    assert.notEqual(message.sender, BOT_ID);
  });
});
