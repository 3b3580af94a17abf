import assert from "node:assert/strict";
import { createServer } from "node:net";
import { diagnosePingFailure, HomeserverClient, MatrixConnectionError } from "../../src/client/index.js";
import { FakeHomeserver, rejectionOf } from "../helpers/fake-homeserver.js";

const PING = "/_matrix/client/v1/appservice/:id/ping";

describe("appservice ping", () => {
  let hs: FakeHomeserver;
  let client: HomeserverClient;

  beforeEach(async () => {
    hs = await FakeHomeserver.start({ appserviceId: "trestle" });
    client = new HomeserverClient({ homeserverUrl: hs.url, asToken: hs.asToken, retry: { baseDelayMs: 10 } });
  });
  afterEach(async () => {
    await hs.close();
  });

  /** The diagnosis for a ping the fake homeserver answers with `status` and `body`. */
  async function diagnose(status: number, body: Record<string, unknown>): Promise<string> {
    hs.script("POST", PING, { status, body });
    const err = await rejectionOf(client.ping("trestle"));
    return diagnosePingFailure(err);
  }

  it("posts the transaction id without user or device and returns duration_ms", async () => {
    assert.deepEqual(await client.ping("trestle", "txn-1"), { duration_ms: 3 });
    const [req] = hs.requestsTo("POST", PING);
    assert.equal(req!.path, "/_matrix/client/v1/appservice/trestle/ping");
    assert.deepEqual(req!.body, { transaction_id: "txn-1" });
    assert.equal(req!.query.toString(), "");
  });

  it("is not retried by default, so start-up reports the first failure", async () => {
    hs.script("POST", PING, { status: 502, body: { errcode: "M_CONNECTION_FAILED", error: "refused" } });
    await assert.rejects(client.ping("trestle"));
    assert.equal(hs.requests.length, 1);
  });

  it("diagnoses an unreachable homeserver", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const dead = new HomeserverClient({ homeserverUrl: `http://127.0.0.1:${port}`, asToken: "t" });
    const err = await rejectionOf(dead.ping("trestle"));
    assert.ok(err instanceof MatrixConnectionError);
    assert.match(diagnosePingFailure(err), /^homeserver URL unreachable \(ECONNREFUSED\)/);
  });

  it("diagnoses a DNS failure", async () => {
    const dns = new HomeserverClient({
      homeserverUrl: "http://trestle-no-such-host.invalid",
      asToken: "t",
      retry: { maxAttempts: 1 },
    });
    const err = await rejectionOf(dns.ping("trestle"));
    assert.match(diagnosePingFailure(err), /^homeserver URL unreachable \((ENOTFOUND|EAI_AGAIN)\)/);
  });

  it("diagnoses a rejected as_token", async () => {
    const wrong = new HomeserverClient({ homeserverUrl: hs.url, asToken: "wrong" });
    const err = await rejectionOf(wrong.ping("trestle"));
    assert.equal(
      diagnosePingFailure(err),
      "as_token rejected: is the registration file loaded by the homeserver?",
    );
    assert.equal(
      await diagnose(403, { errcode: "M_FORBIDDEN", error: "Application service token required" }),
      "as_token rejected: is the registration file loaded by the homeserver?",
    );
  });

  it("diagnoses an appservice id the homeserver does not know or match", async () => {
    assert.match(
      await diagnose(404, { errcode: "M_NOT_FOUND", error: "x" }),
      /^appservice id not known to the homeserver/,
    );
    const err = await rejectionOf(client.ping("someone-else"));
    assert.match(diagnosePingFailure(err), /^appservice id does not match/);
  });

  it("diagnoses the homeserver failing to reach us", async () => {
    assert.match(await diagnose(400, { errcode: "M_URL_NOT_SET", error: "x" }), /registration has no `url`/);
    assert.match(
      await diagnose(502, { errcode: "M_BAD_STATUS", error: "x", status: 403, body: "{}" }),
      /reached the appservice but got HTTP 403 back/,
    );
    assert.match(
      await diagnose(502, { errcode: "M_CONNECTION_FAILED", error: "Connection refused" }),
      /^the homeserver could not connect to the appservice/,
    );
    assert.match(
      await diagnose(504, { errcode: "M_CONNECTION_TIMEOUT", error: "timeout" }),
      /^the homeserver timed out connecting to the appservice/,
    );
  });

  it("says when the homeserver predates the ping endpoint, and falls back to the raw error", async () => {
    assert.match(
      await diagnose(404, { errcode: "M_UNRECOGNIZED", error: "x" }),
      /does not support the appservice ping/,
    );
    assert.equal(
      await diagnose(418, { errcode: "M_TEAPOT", error: "short and stout" }),
      "appservice ping failed: HTTP 418 M_TEAPOT: short and stout",
    );
    assert.equal(diagnosePingFailure(new Error("boom")), "appservice ping failed: boom");
  });
});
