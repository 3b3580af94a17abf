import assert from "node:assert/strict";
import { createServer } from "node:net";
import { Writable } from "node:stream";
import { Registry } from "prom-client";
import {
  HomeserverClient,
  type HomeserverClientOptions,
  MatrixApiError,
  MatrixConnectionError,
} from "../../src/client/index.js";
import { MatrixError } from "../../src/errors.js";
import { createLogger } from "../../src/logging.js";
import { FakeHomeserver, rejectionOf } from "../helpers/fake-homeserver.js";

const FAST_RETRY = { baseDelayMs: 10, maxDelayMs: 40 };

describe("HomeserverClient", () => {
  let hs: FakeHomeserver;
  const make = (options: Partial<HomeserverClientOptions> = {}) =>
    new HomeserverClient({ homeserverUrl: hs.url, asToken: hs.asToken, retry: FAST_RETRY, ...options });

  beforeEach(async () => {
    hs = await FakeHomeserver.start();
  });
  afterEach(async () => {
    await hs.close();
  });

  describe("authentication and identity assertion", () => {
    it("sends the as_token as a bearer header and never in the query", async () => {
      const client = make();
      await client.whoami();
      const [req] = hs.requestsTo("GET", "/_matrix/client/v3/account/whoami");
      assert.equal(req!.headers.authorization, `Bearer ${hs.asToken}`);
      assert.equal(req!.query.has("access_token"), false);
      assert.equal(req!.query.has("user_id"), false, "no assertion means acting as the sender");
    });

    it("asserts the user with user_id and the device with both device_id names by default", async () => {
      const client = make();
      const ghost = `@_ghost_alice:${hs.serverName}`;
      await client.register("_ghost_alice");
      assert.deepEqual(await client.putDevice("ALICEDEV", { display_name: "bridge" }, { userId: ghost }), {
        created: true,
      });
      const who = await client.whoami({ userId: ghost, deviceId: "ALICEDEV" });
      assert.deepEqual(who, { user_id: ghost, is_guest: false, device_id: "ALICEDEV" });
      const req = hs.requestsTo("GET", "/_matrix/client/v3/account/whoami").at(-1)!;
      assert.equal(req.query.get("user_id"), ghost);
      assert.equal(req.query.get("device_id"), "ALICEDEV");
      assert.equal(req.query.get("org.matrix.msc3202.device_id"), "ALICEDEV");
    });

    it("sends only the parameter names it is told to", async () => {
      await hs.close();
      // Synapse >= 1.161 reads only the stable name (synapse#20192).
      hs = await FakeHomeserver.start({ readsDeviceIdParam: "stable" });
      const ghost = `@_ghost_bob:${hs.serverName}`;
      const setup = make();
      await setup.register("_ghost_bob");
      await setup.putDevice("BOBDEV", {}, { userId: ghost });

      const stable = make({ deviceIdParam: "stable" });
      assert.equal((await stable.whoami({ userId: ghost, deviceId: "BOBDEV" })).device_id, "BOBDEV");
      const stableReq = hs.requests.at(-1)!;
      assert.equal(stableReq.query.has("org.matrix.msc3202.device_id"), false);

      const unstable = make({ deviceIdParam: "unstable" });
      const who = await unstable.whoami({ userId: ghost, deviceId: "BOBDEV" });
      assert.equal(who.device_id, undefined, "a 1.161 server ignores the unstable name");
      assert.equal(hs.requests.at(-1)!.query.has("device_id"), false);
    });

    it("puts ts on send and state requests only when given", async () => {
      const client = make();
      await client.sendEvent("!room:fake.test", "m.room.message", { body: "hi" }, { ts: 1_000_000_000_000 });
      await client.sendState(
        "!room:fake.test",
        "m.room.topic",
        "",
        { topic: "t" },
        { ts: 1_000_000_000_123 },
      );
      await client.sendEvent("!room:fake.test", "m.room.message", { body: "now" });
      const events = hs.room("!room:fake.test").events;
      assert.deepEqual(
        events.map((e) => e.origin_server_ts).slice(0, 2),
        [1_000_000_000_000, 1_000_000_000_123],
      );
      const sends = hs.requestsTo("PUT", "/_matrix/client/v3/rooms/:r/send/:t/:txn");
      assert.equal(sends[0]!.query.get("ts"), "1000000000000");
      assert.equal(sends[1]!.query.has("ts"), false);
      assert.equal(hs.requestsTo("PUT", /\/state\//)[0]!.query.get("ts"), "1000000000123");
    });

    it("encodes IDs as single path segments", async () => {
      const client = make();
      await client.sendState("!r:fake.test", "m.bridge", "org.example://irc/net%2Fwork/#chan", { a: 1 });
      const [req] = hs.requestsTo("PUT", /\/state\//);
      assert.equal(
        req!.path,
        "/_matrix/client/v3/rooms/!r%3Afake.test/state/m.bridge/org.example%3A%2F%2Firc%2Fnet%252Fwork%2F%23chan",
      );
      assert.deepEqual(
        await client.getState("!r:fake.test", "m.bridge", "org.example://irc/net%2Fwork/#chan"),
        {
          a: 1,
        },
      );
    });
  });

  describe("retries", () => {
    it("retries 5xx with the same transaction ID, then succeeds", async () => {
      hs.script(
        "PUT",
        "/_matrix/client/v3/rooms/:r/send/:t/:txn",
        { status: 500 },
        { status: 502, body: {} },
      );
      const client = make();
      const { event_id } = await client.sendEvent("!r:fake.test", "m.room.message", { body: "x" });
      assert.match(event_id, /^\$/);
      const sends = hs.requestsTo("PUT", "/_matrix/client/v3/rooms/:r/send/:t/:txn");
      assert.equal(sends.length, 3);
      assert.equal(new Set(sends.map((r) => r.path)).size, 1, "every attempt reuses the txnId");
      assert.equal(hs.room("!r:fake.test").events.length, 1);
    });

    it("retries a dropped connection", async () => {
      hs.script("GET", "/_matrix/client/v3/account/whoami", { drop: true });
      const client = make();
      assert.equal((await client.whoami()).user_id, hs.botUserId);
      assert.equal(hs.requestsTo("GET", "/_matrix/client/v3/account/whoami").length, 2);
    });

    it("waits out retry_after_ms on 429", async () => {
      hs.script("GET", "/_matrix/client/v3/account/whoami", {
        status: 429,
        body: { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests", retry_after_ms: 300 },
      });
      const client = make();
      await client.whoami();
      const [first, second] = hs.requestsTo("GET", "/_matrix/client/v3/account/whoami");
      const waited = second!.receivedAt - first!.receivedAt;
      assert.ok(waited >= 290, `waited ${waited} ms`);
      assert.ok(waited < 1000, `waited ${waited} ms`);
    });

    it("waits out a Retry-After header in seconds on 429", async () => {
      hs.script("GET", "/_matrix/client/v3/account/whoami", {
        status: 429,
        headers: { "retry-after": "1" },
        body: { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests" },
      });
      const client = make();
      await client.whoami();
      const [first, second] = hs.requestsTo("GET", "/_matrix/client/v3/account/whoami");
      const waited = second!.receivedAt - first!.receivedAt;
      assert.ok(waited >= 990 && waited < 2000, `waited ${waited} ms`);
    });

    it("caps the 429 wait at maxRetryAfterMs", async () => {
      hs.script("GET", "/_matrix/client/v3/account/whoami", {
        status: 429,
        body: { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 60_000 },
      });
      const client = make({ retry: { ...FAST_RETRY, maxRetryAfterMs: 50 } });
      const started = Date.now();
      await client.whoami();
      assert.ok(Date.now() - started < 1000);
    });

    it("gives up at once when the wait would overrun the total budget", async () => {
      hs.script("GET", "/_matrix/client/v3/account/whoami", {
        status: 429,
        body: { errcode: "M_LIMIT_EXCEEDED", error: "slow down", retry_after_ms: 5_000 },
      });
      const client = make({ retry: { ...FAST_RETRY, maxTotalMs: 1_000 } });
      const err = await rejectionOf(client.whoami());
      assert.ok(err instanceof MatrixApiError);
      assert.equal(err.httpStatus, 429);
      assert.equal(err.retryAfterMs, 5_000, "the caller can schedule its own retry");
      assert.equal(hs.requests.length, 1);
    });

    it("gives up after maxAttempts with a MatrixApiError naming the request", async () => {
      const failures = Array.from({ length: 10 }, () => ({
        status: 503,
        body: { errcode: "M_UNKNOWN", error: "Service unavailable" },
      }));
      hs.script("PUT", "/_matrix/client/v3/rooms/:r/send/:t/:txn", ...failures);
      const client = make({ retry: { ...FAST_RETRY, maxAttempts: 3 } });
      const err = await rejectionOf(
        client.sendEvent("!r:fake.test", "m.room.message", { body: "secret text" }),
      );
      assert.ok(err instanceof MatrixApiError);
      assert.ok(err instanceof MatrixError);
      assert.equal(err.httpStatus, 503);
      assert.equal(err.errcode, "M_UNKNOWN");
      assert.equal(err.method, "PUT");
      assert.match(err.path, /^\/_matrix\/client\/v3\/rooms\/!r%3Afake.test\/send\/m.room.message\//);
      assert.equal(hs.requests.length, 3);
      const rendered = `${err} ${JSON.stringify(err)} ${err.stack}`;
      assert.ok(!rendered.includes(hs.asToken), "no token in the error");
      assert.ok(!rendered.includes("secret text"), "no message body in the error");
    });

    it("never retries other 4xx", async () => {
      hs.script("GET", "/_matrix/client/v3/account/whoami", {
        status: 403,
        body: { errcode: "M_FORBIDDEN", error: "nope" },
      });
      await assert.rejects(
        make().whoami(),
        (e: unknown) => e instanceof MatrixApiError && e.errcode === "M_FORBIDDEN",
      );
      assert.equal(hs.requests.length, 1);
    });

    it("does not resend a non-idempotent request the server may have acted on", async () => {
      hs.script("POST", "/_matrix/client/v3/createRoom", { status: 500, body: { errcode: "M_UNKNOWN" } });
      const client = make();
      await assert.rejects(client.createRoom({ name: "x" }), MatrixApiError);
      assert.equal(hs.requests.length, 1);

      hs.script("POST", "/_matrix/client/v3/createRoom", { status: 503, body: { errcode: "M_UNKNOWN" } });
      const { room_id } = await client.createRoom({ name: "y" });
      assert.match(room_id, /^!/);
      assert.equal(hs.requestsTo("POST", "/_matrix/client/v3/createRoom").length, 3);
    });

    it("reports a refused connection as MatrixConnectionError after bounded attempts", async () => {
      const port = await closedPort();
      const client = new HomeserverClient({
        homeserverUrl: `http://127.0.0.1:${port}`,
        asToken: "t",
        retry: { ...FAST_RETRY, maxAttempts: 2 },
      });
      await assert.rejects(
        client.whoami(),
        (e: unknown) => e instanceof MatrixConnectionError && e.code === "ECONNREFUSED" && e.neverSent,
      );
    });

    it("times out a hung attempt and retries it", async () => {
      hs.script("GET", "/_matrix/client/v3/account/whoami", { delayMs: 1_000, status: 200, body: {} });
      const client = make({ requestTimeoutMs: 100 });
      assert.equal((await client.whoami()).user_id, hs.botUserId);
      assert.equal(hs.requests.length, 2);
    });

    it("stops waiting when the caller aborts", async () => {
      hs.script("GET", "/_matrix/client/v3/account/whoami", {
        status: 429,
        body: { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 10_000 },
      });
      const client = make({ retry: { maxRetryAfterMs: 10_000 } });
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error("shutting down")), 50);
      const started = Date.now();
      await assert.rejects(client.whoami({ signal: controller.signal }), /shutting down/);
      assert.ok(Date.now() - started < 1_000);
    });
  });

  describe("metrics and logs", () => {
    it("counts requests by outcome, retries by reason and observes durations", async () => {
      const registry = new Registry();
      hs.script("GET", "/_matrix/client/v3/account/whoami", { status: 500 });
      const client = make({ metrics: registry });
      await client.whoami();
      hs.script("GET", "/_matrix/client/v3/account/whoami", {
        status: 404,
        body: { errcode: "M_NOT_FOUND" },
      });
      await assert.rejects(client.whoami());
      // A second client on the same registry must not throw on duplicate registration.
      make({ metrics: registry });

      const metrics = await registry.getMetricsAsJSON();
      const values = (name: string) => metrics.find((m) => m.name === name)!.values;
      assert.deepEqual(
        values("trestle_homeserver_requests_total").map((v) => [
          v.labels.endpoint,
          v.labels.outcome,
          v.value,
        ]),
        [
          ["whoami", "success", 1],
          ["whoami", "client_error", 1],
        ],
      );
      assert.deepEqual(
        values("trestle_homeserver_request_retries_total").map((v) => [v.labels.reason, v.value]),
        [["server_error", 1]],
      );
      const count = values("trestle_homeserver_request_duration_seconds").find(
        (v) =>
          (v as { metricName?: string }).metricName === "trestle_homeserver_request_duration_seconds_count" &&
          v.labels.outcome === "success",
      );
      assert.equal(count?.value, 1);
    });

    it("never logs the token or message bodies, even at trace level", async () => {
      const lines: string[] = [];
      const destination = new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      });
      hs.script("PUT", "/_matrix/client/v3/rooms/:r/send/:t/:txn", { status: 500 });
      const client = make({ logger: createLogger({ level: "trace", destination }) });
      await client.sendEvent("!r:fake.test", "m.room.message", { body: "very private words" });
      const all = lines.join("");
      assert.ok(lines.length >= 2, "the retry and the request were logged");
      assert.ok(!all.includes(hs.asToken));
      assert.ok(!all.includes("very private words"));
    });
  });

  describe("helpers", () => {
    it("registers with inhibit_login and surfaces M_USER_IN_USE", async () => {
      const client = make();
      assert.deepEqual(await client.register("_ghost_carol"), {
        user_id: "@_ghost_carol:fake.test",
        home_server: "fake.test",
      });
      const [req] = hs.requestsTo("POST", "/_matrix/client/v3/register");
      assert.deepEqual(req!.body, {
        type: "m.login.application_service",
        username: "_ghost_carol",
        inhibit_login: true,
      });
      await assert.rejects(client.register("_ghost_carol"), (e: unknown) => {
        return e instanceof MatrixApiError && e.errcode === "M_USER_IN_USE" && e.httpStatus === 400;
      });
    });

    it("creates a device with PUT /devices (MSC4190): 201 then 200", async () => {
      const client = make();
      const ghost = "@_ghost_dev:fake.test";
      await client.register("_ghost_dev");
      assert.deepEqual(await client.putDevice("DEV1", { display_name: "Trestle" }, { userId: ghost }), {
        created: true,
      });
      assert.deepEqual(await client.putDevice("DEV1", { display_name: "Trestle" }, { userId: ghost }), {
        created: false,
      });
      const [req] = hs.requestsTo("PUT", "/_matrix/client/v3/devices/:d");
      assert.equal(req!.query.get("user_id"), ghost);
      assert.equal(req!.query.has("device_id"), false, "never masquerade as a device that may not exist");
      assert.deepEqual(req!.body, { display_name: "Trestle" });
    });

    it("uploads media as a raw body with its content type", async () => {
      const client = make();
      const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]);
      const { content_uri } = await client.uploadMedia(bytes, {
        contentType: "image/png",
        filename: "a b.png",
      });
      assert.match(content_uri, /^mxc:\/\/fake\.test\//);
      const [req] = hs.requestsTo("POST", "/_matrix/media/v3/upload");
      assert.equal(req!.headers["content-type"], "image/png");
      assert.equal(req!.query.get("filename"), "a b.png");
      assert.deepEqual(new Uint8Array(req!.rawBody), bytes);
    });

    it("covers rooms, membership, aliases, profiles and redaction", async () => {
      const client = make();
      const ghost = "@_ghost_dan:fake.test";
      await client.register("_ghost_dan");
      const { room_id } = await client.createRoom({
        name: "Room",
        room_alias_name: "_bridge_room",
        invite: [ghost],
      });
      assert.deepEqual(await client.resolveAlias("#_bridge_room:fake.test"), {
        room_id,
        servers: ["fake.test"],
      });
      assert.deepEqual(
        await client.joinRoom("#_bridge_room:fake.test", { userId: ghost, via: ["fake.test"] }),
        {
          room_id,
        },
      );
      const join = hs.requestsTo("POST", "/_matrix/client/v3/join/:r")[0]!;
      assert.deepEqual(join.query.getAll("via"), ["fake.test"]);
      assert.deepEqual(Object.keys((await client.getJoinedMembers(room_id)).joined).sort(), [
        hs.botUserId,
        ghost,
      ]);

      await client.setDisplayName(ghost, "Dan");
      await client.setAvatarUrl(ghost, "mxc://fake.test/dan");
      assert.deepEqual(await client.getProfile(ghost), {
        displayname: "Dan",
        avatar_url: "mxc://fake.test/dan",
      });

      const { event_id } = await client.sendEvent(
        room_id,
        "m.room.message",
        { body: "oops" },
        { userId: ghost },
      );
      await client.redact(room_id, event_id, { reason: "typo" });
      assert.deepEqual(hs.room(room_id).events.at(-1)!.content, { redacts: event_id, reason: "typo" });

      await client.kick(room_id, ghost, { reason: "bye" });
      assert.deepEqual(hs.requestsTo("POST", "/_matrix/client/v3/rooms/:r/kick")[0]!.body, {
        user_id: ghost,
        reason: "bye",
      });
      await client.ban(room_id, ghost);
      assert.equal(hs.room(room_id).members.get(ghost), "ban");
      await client.createAlias("#_other:fake.test", room_id);
      assert.equal(hs.aliases.get("#_other:fake.test"), room_id);
      await client.leave(room_id);
      assert.equal(hs.room(room_id).members.get(hs.botUserId), "leave");
    });

    it("rejects a bad homeserver URL at construction", () => {
      assert.throws(
        () => new HomeserverClient({ homeserverUrl: "not a url", asToken: "x" }),
        /homeserverUrl/,
      );
      assert.throws(() => new HomeserverClient({ homeserverUrl: "ftp://x", asToken: "x" }), /http or https/);
    });

    it("keeps a path prefix of the homeserver URL", async () => {
      hs.route("GET", "/prefix/_matrix/client/v3/account/whoami", () => ({
        body: { user_id: "@p:fake.test" },
      }));
      const client = new HomeserverClient({ homeserverUrl: `${hs.url}/prefix/`, asToken: hs.asToken });
      assert.equal((await client.whoami()).user_id, "@p:fake.test");
    });
  });
});

/** A port with nothing listening: bind, read the number, close. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
