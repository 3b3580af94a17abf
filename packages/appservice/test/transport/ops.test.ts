import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { Router } from "@koa/router";
import { Registry } from "prom-client";
import { DEFAULT_KEEP_ALIVE_TIMEOUT_MS } from "../../src/transport/app.js";
import { readJsonBody } from "../../src/transport/body.js";
import { assertMatrixError, type Harness, HS_TOKEN, startAppservice, statusAndBody } from "./helpers.js";

const message = {
  type: "m.room.message",
  event_id: "$e1",
  room_id: "!r:hs",
  sender: "@alice:hs",
  content: { body: "hello" },
  origin_server_ts: 1,
};

describe("appservice HTTP API: operations and extension", () => {
  let as: Harness;
  afterEach(() => as?.close());

  it("answers GET /health with 200 {status: ok} without a token", async () => {
    as = await startAppservice();
    assert.deepEqual(await statusAndBody(await as.request("/health", { token: null })), [
      200,
      { status: "ok" },
    ]);
  });

  it("serves request, transaction and event counters on GET /metrics without a token", async () => {
    as = await startAppservice();
    const body = JSON.stringify({ events: [message, { type: "broken" }], ephemeral: [] });
    await as.request("/_matrix/app/v1/transactions/1", { method: "PUT", body });
    await as.request("/_matrix/app/v1/users/%40someone%3Ahs");
    await as.request("/_matrix/app/v1/users/%40someone%3Ahs", { token: null });

    const res = await as.request("/metrics", { token: null });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await res.text();
    const line = (pattern: string) => assert.match(text, new RegExp(`^${pattern}$`, "m"));
    line(
      'trestle_appservice_http_requests_total\\{route="/_matrix/app/v1/transactions/:txnId",method="PUT",status="200"\\} 1',
    );
    line(
      'trestle_appservice_http_requests_total\\{route="/_matrix/app/v1/users/:userId",method="GET",status="404"\\} 1',
    );
    // Rejected by auth before routing, yet still labelled with its route, not its raw path.
    line(
      'trestle_appservice_http_requests_total\\{route="/_matrix/app/v1/users/:userId",method="GET",status="401"\\} 1',
    );
    line("trestle_appservice_transactions_total 1");
    line('trestle_appservice_events_received_total\\{kind="room"\\} 1');
    line('trestle_appservice_events_received_total\\{kind="invalid"\\} 1');
    assert.doesNotMatch(text, /%40someone/);
  });

  it("labels unmatched requests as such", async () => {
    as = await startAppservice();
    await as.request("/random/path");
    const text = await (await as.request("/metrics")).text();
    assert.match(text, /route="unmatched",method="GET",status="404"\} 1/);
  });

  it("lets two apps share one registry", async () => {
    const registry = new Registry();
    as = await startAppservice({ metrics: registry });
    const second = await startAppservice({ metrics: registry });
    try {
      await as.request("/_matrix/app/v1/transactions/1", { method: "PUT", body: "{}" });
      await second.request("/_matrix/app/v1/transactions/1", { method: "PUT", body: "{}" });
      assert.match(await registry.metrics(), /^trestle_appservice_transactions_total 2$/m);
    } finally {
      await second.close();
    }
  });

  describe("routes a bridge adds", () => {
    beforeEach(async () => {
      as = await startAppservice({}, (http) => {
        const bridge = new Router();
        bridge.post("/webhooks/:hookId", async (ctx) => {
          const payload = await readJsonBody(ctx, { limitBytes: 1024 });
          ctx.body = { hookId: ctx.params.hookId, payload };
        });
        bridge.get("/provision/secret", http.requireHsToken, (ctx) => {
          ctx.body = { ok: true };
        });
        bridge.post("/_matrix/app/unstable/org.matrix.msc3983/keys/claim", (ctx) => {
          ctx.body = {};
        });
        http.app.use(bridge.routes());
      });
    });

    it("serves them without the hs_token", async () => {
      const res = await as.request("/webhooks/abc", { method: "POST", body: '{"text":"hi"}', token: null });
      assert.deepEqual(await statusAndBody(res), [200, { hookId: "abc", payload: { text: "hi" } }]);
    });

    it("answers their errors in the Matrix shape too", async () => {
      const res = await as.request("/webhooks/abc", { method: "POST", body: "not json", token: null });
      await assertMatrixError(res, 400, "M_NOT_JSON");
      const missing = await statusAndBody(await as.request("/webhooks", { token: null }));
      assert.deepEqual(missing, [404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" }]);
    });

    it("guards a bridge route that opts into requireHsToken", async () => {
      assert.equal((await as.request("/provision/secret", { token: null })).status, 401);
      assert.equal((await as.request("/provision/secret")).status, 200);
    });

    it("guards bridge routes under /_matrix/app/ like the built-in ones", async () => {
      const path = "/_matrix/app/unstable/org.matrix.msc3983/keys/claim";
      assert.equal((await as.request(path, { method: "POST", body: "{}", token: null })).status, 401);
      assert.equal((await as.request(path, { method: "POST", body: "{}" })).status, 200);
    });
  });

  describe("connections", () => {
    it("keeps connections alive, with a keep-alive timeout longer than Synapse's idle pool", async () => {
      as = await startAppservice();
      assert.equal(as.server.server.keepAliveTimeout, DEFAULT_KEEP_ALIVE_TIMEOUT_MS);
      assert.ok(DEFAULT_KEEP_ALIVE_TIMEOUT_MS > 120_000);
      const res = await as.request("/health");
      assert.equal(res.headers.get("connection"), "keep-alive");
      await res.text();
    });

    it("closes promptly with an idle keep-alive connection open", async () => {
      as = await startAppservice({ keepAliveTimeoutMs: 60_000 });
      await (await as.request("/health")).text();
      const started = Date.now();
      await as.close();
      assert.ok(Date.now() - started < 2000);
    });

    it("finishes an in-flight request while closing, then ends its connection", async () => {
      let release!: () => void;
      as = await startAppservice({
        handlers: { onTransaction: () => new Promise<void>((resolve) => (release = resolve)) },
      });
      const response = new Promise<{ status?: number; connection?: string }>((resolve, reject) => {
        const req = httpRequest(
          `${as.base}/_matrix/app/v1/transactions/1`,
          { method: "PUT", headers: { Authorization: `Bearer ${HS_TOKEN}` }, agent: false },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode, connection: res.headers.connection });
          },
        );
        req.on("error", reject);
        req.end("{}");
      });
      while (release === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
      const closed = as.close();
      release();
      assert.deepEqual(await response, { status: 200, connection: "close" });
      await closed;
    });
  });
});
