import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { type Appservice, createLogger, silentLogger } from "@trestle/appservice";
import Koa from "koa";
import type { Registry } from "prom-client";
import type { DeliveryRequest } from "../../src/delivery/job.js";
import type { DeliveryQueue } from "../../src/delivery/queue.js";
import { HookManager } from "../../src/hooks/hook-manager.js";
import type { NedbHookStore } from "../../src/hooks/hook-store.js";
import type { HookRecord } from "../../src/hooks/model.js";
import { generateHookSecret, hashSecret } from "../../src/hooks/secrets.js";
import { createWebhookRouter, type WebhookRouterDeps } from "../../src/http/webhook-routes.js";
import { NedbDeliveryKeyStore } from "../../src/ingress/idempotency.js";
import { HookRateLimiter } from "../../src/ingress/rate-limit.js";
import { Renderer } from "../../src/rendering/renderer.js";
import {
  eventually,
  FakePoster,
  forbidden,
  hookStore,
  makeHook,
  metricValue,
  SECRET,
  startQueue,
  unavailable,
} from "../delivery/helpers.js";

interface Harness {
  base: string;
  poster: FakePoster;
  queue: DeliveryQueue;
  enqueued: DeliveryRequest[];
  registry: Registry;
  close(): Promise<void>;
}

describe("webhook routes", () => {
  let hook: HookRecord;
  let hooks: NedbHookStore;
  let logs: string[];
  let harness: Harness;
  /** The harness to close after the test, if one was started. */
  let current: Harness | undefined;

  async function serve(
    options: {
      poster?: FakePoster;
      config?: Partial<WebhookRouterDeps["config"]>;
      rateLimiter?: HookRateLimiter;
      maxPermanentAttempts?: number;
    } = {},
  ): Promise<Harness> {
    const logger = createLogger({
      level: "debug",
      destination: new Writable({
        write(chunk, _encoding, callback) {
          logs.push(String(chunk));
          callback();
        },
      }),
    });
    const { queue, poster, registry } = await startQueue(hooks, {
      poster: options.poster,
      retry: { maxPermanentAttempts: options.maxPermanentAttempts ?? 5 },
    });
    const enqueued: DeliveryRequest[] = [];
    const manager = new HookManager({
      store: hooks,
      appservice: {} as Appservice,
      renderer: new Renderer({ logger: silentLogger() }),
      publicUrl: "https://hooks.example.org",
      logger,
    });
    const router = createWebhookRouter({
      manager,
      queue: {
        enqueue: (request) => {
          enqueued.push(request);
          return queue.enqueue(request);
        },
        describe: (jobId) => queue.describe(jobId),
      },
      rateLimiter: options.rateLimiter ?? new HookRateLimiter(),
      deliveryKeys: await NedbDeliveryKeyStore.open({ inMemory: true }),
      config: { bodyLimitBytes: 1024, waitTimeoutMs: 2_000, ...options.config },
      logger,
      metrics: registry,
    });
    const app = new Koa();
    app.use(router.routes());
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    current = {
      base,
      poster,
      queue,
      enqueued,
      registry,
      close: async () => {
        await queue.stop(100);
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
    return current;
  }

  const url = (h: HookRecord = hook, secret = SECRET, query = "") =>
    `${harness.base}/webhooks/v1/${h.id}/${secret}${query}`;

  /** A body of this content type. */
  const send = (target: string, contentType: string, body: string, method = "POST") =>
    fetch(target, { method, headers: { "content-type": contentType }, body });

  const postJson = (target: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  /** The error answer: status, JSON `{errcode, error}`, nothing queued or posted. */
  async function expectError(response: Response, status: number, errcode: string): Promise<string> {
    const body = (await response.json()) as { errcode: string; error: string };
    assert.equal(response.status, status, body.error);
    assert.equal(body.errcode, errcode);
    assert.equal(typeof body.error, "string");
    assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
    assert.deepEqual(harness.enqueued, [], "nothing was queued");
    assert.deepEqual(harness.poster.posts, [], "nothing was posted");
    return body.error;
  }

  /** One log line mentioned the hook and this text. */
  function assertLogged(pattern: RegExp, hookId: string | null = hook.id): void {
    const line = logs.find((l) => pattern.test(l));
    assert.ok(line, `no log line matches ${pattern}:\n${logs.join("")}`);
    if (hookId !== null) assert.equal(JSON.parse(line).hook, hookId);
  }

  beforeEach(async () => {
    logs = [];
    hook = makeHook({ template: "{{text}}" });
    hooks = await hookStore(hook);
  });

  afterEach(async () => {
    await current?.close();
    current = undefined;
    for (const line of logs) {
      assert.ok(!line.includes(SECRET), `a log line contains the secret: ${line}`);
      assert.ok(!line.includes("wrong-secret"), `a log line contains a tried secret: ${line}`);
    }
  });

  describe("accepting", () => {
    it("202 with the job id once queued; the message reaches the room", async () => {
      harness = await serve();
      const response = await postJson(url(), { text: "build passed" }, { "x-github-event": "push" });
      assert.equal(response.status, 202);
      const body = (await response.json()) as { status: string; id: string };
      assert.equal(body.status, "accepted");
      assert.match(body.id, /^[\w-]{16}$/);
      assert.equal(response.headers.get("cache-control"), "no-store");
      await eventually(() => harness.poster.posts.length === 1);
      assert.equal(harness.poster.posts[0]?.message.body, "build passed");
      assert.equal(harness.enqueued[0]?.headers["x-github-event"], "push");
      assert.equal(
        await metricValue(harness.registry, "trestle_webhook_requests_total", { status: "202" }),
        1,
      );
      const durations = await harness.registry
        .getSingleMetric("trestle_webhook_request_duration_seconds")
        ?.get();
      const count = durations?.values.find(
        (v) =>
          (v as { metricName?: string }).metricName === "trestle_webhook_request_duration_seconds_count" &&
          v.labels.status === "202",
      );
      assert.equal(count?.value, 1, "the ack's own time is observed once");
    });

    it("PUT works like POST; forms and text bodies are payloads too", async () => {
      harness = await serve();
      const put = await send(url(), "text/plain", "deployed", "PUT");
      assert.equal(put.status, 202);
      const form = await send(
        url(),
        "application/x-www-form-urlencoded",
        "payload=%7B%22text%22%3A%22from%20slack%22%7D",
      );
      assert.equal(form.status, 202);
      await eventually(() => harness.poster.posts.length === 2);
      assert.deepEqual(harness.poster.bodies(), ["deployed", "from slack"]);
    });

    it("?wait=true answers 200 with the event id once the message is in the room", async () => {
      harness = await serve();
      const response = await postJson(url(hook, SECRET, "?wait=true"), { text: "waited" });
      const body = (await response.json()) as { status: string; id: string; event_id: string };
      assert.equal(response.status, 200);
      assert.equal(body.status, "delivered");
      assert.equal(body.event_id, `$event-trestle-webhook-${body.id}`);
      assert.equal(harness.poster.posts.length, 1);
    });

    it("a hook with `wait` always waits; an empty rendering is 200 skipped", async () => {
      const filtering = makeHook({ wait: true, template: '{{#if (eq action "opened")}}opened{{/if}}' });
      await hooks.put(filtering);
      harness = await serve();
      const opened = await postJson(url(filtering), { action: "opened" });
      assert.equal(opened.status, 200);
      assert.equal(((await opened.json()) as { status: string }).status, "delivered");
      const closed = await postJson(url(filtering), { action: "closed" });
      assert.equal(closed.status, 200);
      const body = (await closed.json()) as { status: string; reason: string };
      assert.equal(body.status, "skipped");
      assert.match(body.reason, /rendered nothing/);
    });

    it("GET takes the query string as the payload when the hook allows GET", async () => {
      const getHook = makeHook({ allowGet: true, template: "{{text}} on {{host}}" });
      await hooks.put(getHook);
      harness = await serve();
      const response = await fetch(url(getHook, SECRET, "?text=disk%20full&host=db1&wait=1"));
      assert.equal(response.status, 200);
      assert.deepEqual(harness.enqueued[0]?.payload, { text: "disk full", host: "db1" });
      assert.equal(harness.poster.posts[0]?.message.body, "disk full on db1");
    });

    it("a redelivery with the same delivery id answers 200 duplicate and posts nothing more", async () => {
      harness = await serve();
      const headers = { "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958" };
      const first = await postJson(url(), { text: "once" }, headers);
      assert.equal(first.status, 202);
      const again = await postJson(url(), { text: "once" }, headers);
      assert.equal(again.status, 200);
      assert.deepEqual(await again.json(), { status: "duplicate" });
      const keyed = await postJson(url(), { text: "other key" }, { "idempotency-key": "k-1" });
      assert.equal(keyed.status, 202);
      const concurrent = await Promise.all(
        [1, 2, 3].map(() => postJson(url(), { text: "raced" }, { "x-gitea-delivery": "g-1" })),
      );
      assert.deepEqual(concurrent.map((r) => r.status).sort(), [200, 200, 202]);
      assert.equal(harness.enqueued.length, 3);
      await eventually(() => harness.poster.posts.length === 3);
      assertLogged(/redelivered webhook ignored/);
    });
  });

  describe("waiting for a failed delivery", () => {
    it("502 TRESTLE_DELIVERY_FAILED when the message was given up on", async () => {
      harness = await serve({
        poster: new FakePoster(() => {
          throw forbidden();
        }),
        maxPermanentAttempts: 1,
      });
      const response = await postJson(url(hook, SECRET, "?wait=true"), { text: "x" });
      const body = (await response.json()) as { errcode: string; error: string; id: string };
      assert.equal(response.status, 502);
      assert.equal(body.errcode, "TRESTLE_DELIVERY_FAILED");
      assert.match(body.error, /could not be delivered: the homeserver answered 403 M_FORBIDDEN/);
      assert.match(body.id, /^[\w-]{16}$/);
      assertLogged(/could not be delivered/);
    });

    it("502 TRESTLE_DELIVERY_PENDING when still retrying at the timeout, saying it will be retried", async () => {
      harness = await serve({
        poster: new FakePoster(() => {
          throw unavailable();
        }),
        config: { waitTimeoutMs: 150 },
      });
      const response = await postJson(url(hook, SECRET, "?wait=true"), { text: "x" });
      const body = (await response.json()) as { errcode: string; error: string; id: string };
      assert.equal(response.status, 502);
      assert.equal(body.errcode, "TRESTLE_DELIVERY_PENDING");
      assert.match(body.error, /Not delivered within 150 ms \(last attempt: the homeserver answered 503/);
      assert.match(body.error, /stays queued and will be retried .*do not resend/);
      assert.equal(harness.queue.describe(body.id)?.state !== undefined, true);
    });
  });

  describe("refusing", () => {
    it("404 for an unknown hook", async () => {
      harness = await serve();
      const unknown = makeHook();
      const error = await expectError(await postJson(url(unknown), { text: "x" }), 404, "M_NOT_FOUND");
      assert.equal(error, "Unknown webhook");
      assertLogged(/Unknown webhook/, unknown.id);
    });

    it("403 for a wrong secret", async () => {
      harness = await serve();
      await expectError(await postJson(url(hook, "wrong-secret"), { text: "x" }), 403, "M_FORBIDDEN");
      assertLogged(/Wrong webhook secret/);
    });

    it("403 naming the signature header when the signature is missing or wrong", async () => {
      const signed = makeHook({ signature: { scheme: "github" }, signingSecret: "signing-key" });
      await hooks.put(signed);
      harness = await serve();
      const missing = await expectError(await postJson(url(signed), { text: "x" }), 403, "M_FORBIDDEN");
      assert.match(missing, /X-Hub-Signature-256 header is missing/);
      const payload = { text: "x" };
      const sign = (key: string) =>
        `sha256=${createHmac("sha256", key).update(JSON.stringify(payload)).digest("hex")}`;
      const wrong = await postJson(url(signed), payload, { "x-hub-signature-256": sign("other-key") });
      assert.match(await expectError(wrong, 403, "M_FORBIDDEN"), /X-Hub-Signature-256 header does not match/);
      assertLogged(/X-Hub-Signature-256/, signed.id);

      const good = await postJson(url(signed), payload, { "x-hub-signature-256": sign("signing-key") });
      assert.equal(good.status, 202);
    });

    it("405 for a GET to a hook that checks signatures, even with get=on: a GET has no body to sign", async () => {
      const signed = makeHook({
        signature: { scheme: "github" },
        signingSecret: "signing-key",
        allowGet: true,
      });
      await hooks.put(signed);
      harness = await serve();
      const empty = `sha256=${createHmac("sha256", "signing-key").update("").digest("hex")}`;
      const response = await fetch(url(signed, SECRET, "?text=forged"), {
        headers: { "x-hub-signature-256": empty },
      });
      assert.equal(response.headers.get("allow"), "POST, PUT");
      assert.match(
        await expectError(response, 405, "M_UNRECOGNIZED"),
        /checks signatures, and a GET has no body to sign/,
      );
    });

    it("500 naming the cure when the hook's stored secret cannot be checked, not a bare error", async () => {
      const broken = makeHook({ secretHash: "not-a-hash" });
      await hooks.put(broken);
      harness = await serve();
      const error = await expectError(
        await postJson(url(broken), { text: "x" }),
        500,
        "TRESTLE_HOOK_MISCONFIGURED",
      );
      assert.match(error, new RegExp(`rotate ${broken.name}`));
      assertLogged(/webhook secret cannot be checked/, broken.id);
    });

    it("checks the signature before parsing: an unsigned malformed body is refused for its signature", async () => {
      const signed = makeHook({ signature: { scheme: "github" }, signingSecret: "signing-key" });
      await hooks.put(signed);
      harness = await serve();
      const response = await send(url(signed), "application/json", '{"text": "unterminated');
      assert.match(await expectError(response, 403, "M_FORBIDDEN"), /X-Hub-Signature-256 header is missing/);
      // Signed, the same bytes get as far as the parser.
      const body = '{"text": "unterminated';
      const signature = `sha256=${createHmac("sha256", "signing-key").update(body).digest("hex")}`;
      const parsed = await fetch(url(signed), {
        method: "POST",
        headers: { "content-type": "application/json", "x-hub-signature-256": signature },
        body,
      });
      await expectError(parsed, 400, "M_NOT_JSON");
    });

    it("400 for a body that is not what it says", async () => {
      harness = await serve();
      const response = await send(url(), "application/json", '{"text": "unterminated');
      const error = await expectError(response, 400, "M_NOT_JSON");
      assert.match(error, /not valid JSON/);
      assertLogged(/not valid JSON/);
    });

    it("413 with Connection: close for a body over the limit", async () => {
      harness = await serve();
      const response = await send(url(), "text/plain", "x".repeat(4 * 1024 * 1024));
      assert.equal(response.headers.get("connection"), "close");
      await expectError(response, 413, "M_TOO_LARGE");
      assertLogged(/larger than the limit of 1024 bytes/);
    });

    it("415 for a media type it does not decode", async () => {
      harness = await serve();
      const response = await send(url(), "application/xml", "<a/>");
      assert.match(await expectError(response, 415, "TRESTLE_UNSUPPORTED_MEDIA_TYPE"), /XML/);
    });

    it("429 with Retry-After past the rate limit; a hook's own limit applies to it", async () => {
      harness = await serve({ rateLimiter: new HookRateLimiter({ limit: { ratePerMinute: 1, burst: 1 } }) });
      const limited = makeHook({ rateLimit: { perMinute: 2, burst: 1 } });
      await hooks.put(limited);
      assert.equal((await postJson(url(), { text: "1" })).status, 202);
      await eventually(() => harness.poster.posts.length === 1);
      harness.enqueued.length = 0;
      harness.poster.posts.length = 0;
      const response = await postJson(url(), { text: "2" });
      assert.equal(response.headers.get("retry-after"), "60");
      const error = await expectError(response, 429, "M_LIMIT_EXCEEDED");
      assert.match(error, /Too many requests/);
      assertLogged(/Too many requests/);

      // The hook's own limit applies to it: 2 per minute is a token every 30 s.
      assert.equal((await postJson(url(limited), { text: "a" })).status, 202);
      await eventually(() => harness.poster.posts.length === 1);
      harness.enqueued.length = 0;
      harness.poster.posts.length = 0;
      const own = await postJson(url(limited), { text: "b" });
      assert.equal(own.headers.get("retry-after"), "30");
      await expectError(own, 429, "M_LIMIT_EXCEEDED");
    });

    it("405 with Allow for GET unless the hook allows it, and for other methods", async () => {
      harness = await serve();
      const get = await fetch(url(hook, SECRET, "?text=x"));
      assert.equal(get.headers.get("allow"), "POST, PUT");
      assert.match(await expectError(get, 405, "M_UNRECOGNIZED"), /GET is off for this webhook/);
      const del = await fetch(url(), { method: "DELETE" });
      assert.equal(del.headers.get("allow"), "POST, PUT");
      await expectError(del, 405, "M_UNRECOGNIZED");
      assertLogged(/Method GET is not allowed/);
    });

    it("404 JSON for other paths under /webhooks, without logging what follows the hook id", async () => {
      harness = await serve();
      for (const path of [
        "/webhooks",
        "/webhooks/v1",
        `/webhooks/v1/${hook.id}`,
        `/webhooks/v1/${hook.id}/${SECRET}/x`,
      ]) {
        const response = await fetch(`${harness.base}${path}`, { method: "POST" });
        await expectError(response, 404, "M_UNRECOGNIZED");
      }
      assertLogged(/Not a webhook URL/, null);
      assert.ok(logs.some((l) => l.includes(`/webhooks/v1/${hook.id}/<redacted>`)));
    });

    it("503 while the queue is not running; the sender may retry", async () => {
      harness = await serve();
      await harness.queue.stop();
      const response = await postJson(url(), { text: "x" });
      const body = (await response.json()) as { errcode: string };
      assert.equal(response.status, 503);
      assert.equal(body.errcode, "TRESTLE_QUEUE_UNAVAILABLE");
      assert.equal(harness.poster.posts.length, 0);
    });

    it("a queue failure releases the delivery key, so the sender's retry is not taken for a duplicate", async () => {
      harness = await serve();
      await harness.queue.stop();
      const headers = { "idempotency-key": "retry-me" };
      assert.equal((await postJson(url(), { text: "x" }, headers)).status, 503);
      assert.equal((await postJson(url(), { text: "x" }, headers)).status, 503, "not 200 duplicate");
    });

    it("never logs the secret, even for a secret that was tried and refused", async () => {
      harness = await serve();
      await postJson(url(hook, "wrong-secret", "?token=wrong-secret"), { text: "x" });
      await fetch(`${harness.base}/webhooks/v1/${hook.id}/${SECRET}/extra?wait=1`);
      await fetch(url(hook, SECRET), { method: "PATCH" });
      await fetch(`${harness.base}/webhooks//v1/${hook.id}/${SECRET}`, { method: "POST" });
      await fetch(`${harness.base}/webhooks/v2/${SECRET}/${SECRET}`, { method: "POST" });
      assert.ok(logs.length >= 5);
      // afterEach checks every line.
    });
  });

  it("rotating a secret does not need the route to change: it asks the manager each time", async () => {
    harness = await serve();
    const secret = generateHookSecret();
    await hooks.put({ ...hook, secretHash: hashSecret(secret) });
    assert.equal((await postJson(url(hook, secret), { text: "new" })).status, 202);
    await eventually(() => harness.poster.posts.length === 1);
    harness.enqueued.length = 0;
    harness.poster.posts.length = 0;
    await expectError(await postJson(url(hook, SECRET), { text: "old" }), 403, "M_FORBIDDEN");
  });
});
