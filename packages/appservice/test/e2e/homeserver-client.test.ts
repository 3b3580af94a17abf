import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { HomeserverClient, IntentFactory, silentLogger } from "@trestle/appservice";
import { Registry } from "prom-client";
import {
  MatrixTestClient,
  type RegistrationFile,
  SERVER_NAME,
  type SynapseInstance,
  useHarness,
} from "../../../../test/harness/index.js";

/** The core's homeserver client and intents, in process, against a real Synapse. */
describe("e2e: HomeserverClient and intents on real Synapse", () => {
  const harness = useHarness();
  const registration: RegistrationFile = {
    id: "client-e2e",
    url: null,
    as_token: randomBytes(16).toString("hex"),
    hs_token: randomBytes(16).toString("hex"),
    sender_localpart: "clientbot",
    // Rate limited on purpose: the 429 test needs the homeserver to push back.
    rate_limited: true,
    namespaces: { users: [{ exclusive: true, regex: `@_ghost_.*:${SERVER_NAME.replace(/\./g, "\\.")}` }] },
  };
  let hs: SynapseInstance;
  let alice: MatrixTestClient;
  let metrics: Registry;

  function factory(): IntentFactory {
    const client = new HomeserverClient({
      homeserverUrl: hs.baseUrl,
      asToken: registration.as_token,
      logger: silentLogger(),
      metrics,
      retry: { maxAttempts: 20, maxTotalMs: 120_000 },
    });
    return new IntentFactory({ client, serverName: SERVER_NAME, botLocalpart: "clientbot" });
  }

  before(async function () {
    hs = await harness.synapse(this, {
      appservices: [registration],
      config: { rc_message: { per_second: 1, burst_count: 2 } },
    });
    const admin = await hs.registerUser("alice", { admin: true });
    alice = new MatrixTestClient(hs.baseUrl, admin.userId, admin.accessToken);
    // alice herself is exempt, so only the ghost meets the limit.
    await alice.request(
      "POST",
      `/_synapse/admin/v1/users/${encodeURIComponent(alice.userId)}/override_ratelimit`,
      {
        messages_per_second: 0,
        burst_count: 0,
      },
    );
    metrics = new Registry();
  });

  it("registers a ghost idempotently: concurrent calls, and again from a fresh process state", async () => {
    const ghostId = `@_ghost_reg:${SERVER_NAME}`;
    const intent = factory().getIntent(ghostId);
    await Promise.all([intent.ensureRegistered(), intent.ensureRegistered(), intent.ensureRegistered()]);
    // A new factory knows nothing: the homeserver answers M_USER_IN_USE, which counts as success.
    const again = factory().getIntent(ghostId);
    await again.ensureRegistered();
    const whoami = await again.whoami();
    assert.equal(whoami.user_id, ghostId);
  });

  it("waits out a real 429 and still delivers every message, in order", async function () {
    this.timeout(120_000);
    const ghost = factory().getIntent(`@_ghost_talker:${SERVER_NAME}`);
    const roomId = await alice.createRoom({ preset: "public_chat" });
    await ghost.join(roomId);

    const bodies = Array.from({ length: 6 }, (_, i) => `rate limited ${i + 1}`);
    await Promise.all(bodies.map((body) => ghost.sendText(roomId, body)));

    await alice.waitUntil(
      (seen) => seen.filter((e) => e.room_id === roomId && e.sender === ghost.userId).length >= bodies.length,
      60_000,
    );
    const received = alice.events
      .filter((e) => e.room_id === roomId && e.sender === ghost.userId && e.type === "m.room.message")
      .map((e) => e.content.body);
    assert.deepEqual(received, bodies);

    const retries =
      (await metrics.getSingleMetric("trestle_homeserver_request_retries_total")?.get())?.values ?? [];
    const waited429 = retries
      .filter((v) => v.labels.reason === "rate_limited")
      .reduce((n, v) => n + v.value, 0);
    assert.ok(waited429 > 0, `no 429 was met: ${JSON.stringify(retries)}`);
  });
});
