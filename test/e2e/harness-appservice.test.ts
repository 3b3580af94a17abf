import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import {
  freePort,
  type MatrixTestClient,
  type RegistrationFile,
  SERVER_NAME,
  type SynapseInstance,
  useHarness,
} from "../harness/index.js";

interface Received {
  method: string;
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown>;
}

/** The smallest appservice there is: records what the homeserver pushes, answers 200 {}. */
async function startRecorder(port: number): Promise<{ server: Server; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = "";
    req.on("data", (chunk) => {
      data += chunk;
    });
    req.on("end", () => {
      received.push({
        method: req.method ?? "",
        path: (req.url ?? "").split("?")[0] ?? "",
        authorization: req.headers.authorization,
        body: data ? JSON.parse(data) : {},
      });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, received };
}

describe("harness: appservice registered with real Synapse", () => {
  const harness = useHarness();
  const registration: RegistrationFile = {
    id: "smoke",
    url: null,
    as_token: randomBytes(16).toString("hex"),
    hs_token: randomBytes(16).toString("hex"),
    sender_localpart: "smokebot",
    rate_limited: false,
    receive_ephemeral: true,
    namespaces: {
      users: [{ exclusive: true, regex: `@_smoke_.*:${SERVER_NAME.replace(/\./g, "\\.")}` }],
      aliases: [{ exclusive: true, regex: `#_smoke_.*:${SERVER_NAME.replace(/\./g, "\\.")}` }],
      rooms: [],
    },
  };
  let hs: SynapseInstance;
  let alice: MatrixTestClient;
  let recorder: { server: Server; received: Received[] };

  before(async function () {
    const port = await freePort();
    registration.url = `http://127.0.0.1:${port}`;
    recorder = await startRecorder(port);
    harness.onTeardown(() => new Promise<void>((resolve) => recorder.server.close(() => resolve())));
    hs = await harness.synapse(this, { appservices: [registration] });
    alice = await harness.user(hs, "alice");
  });

  async function asRequest(method: string, path: string, body: unknown): Promise<Response> {
    return fetch(`${hs.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${registration.as_token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  it("pushes a transaction with a user's message once the bot is in the room", async () => {
    const botId = `@${registration.sender_localpart}:${SERVER_NAME}`;
    const roomId = await alice.createRoom({ preset: "private_chat" });
    await alice.invite(roomId, botId);
    const join = await asRequest("POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
    assert.equal(join.status, 200, await join.text());

    const eventId = await alice.sendMessage(roomId, "hello appservice");
    const deadline = Date.now() + 15_000;
    let txn: Received | undefined;
    while (!txn && Date.now() < deadline) {
      txn = recorder.received.find(
        (r) =>
          r.method === "PUT" &&
          r.path.startsWith("/_matrix/app/v1/transactions/") &&
          (r.body.events as { event_id: string }[] | undefined)?.some((e) => e.event_id === eventId),
      );
      if (!txn) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(txn, "no transaction carried the message");
    assert.equal(txn.authorization, `Bearer ${registration.hs_token}`);
    const event = (txn.body.events as { event_id: string; sender: string; content: { body: string } }[]).find(
      (e) => e.event_id === eventId,
    );
    assert.equal(event?.sender, alice.userId);
    assert.equal(event?.content.body, "hello appservice");
  });

  it("answers POST /_matrix/client/v1/appservice/{id}/ping through the appservice", async () => {
    const res = await asRequest("POST", `/_matrix/client/v1/appservice/${registration.id}/ping`, {
      transaction_id: "smoke-ping",
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text) as { duration_ms: number };
    assert.equal(typeof body.duration_ms, "number");
    const ping = recorder.received.find((r) => r.path === "/_matrix/app/v1/ping");
    assert.equal(ping?.body.transaction_id, "smoke-ping");
  });
});
