import assert from "node:assert/strict";
import { type MatrixTestClient, SERVER_NAME, useHarness } from "../../../../test/harness/index.js";
import {
  createHookByCommand,
  roomWithBot,
  sendWebhook,
  startWebhooksStack,
  type WebhooksStack,
} from "./stack.js";

/** `webhooks.port: 0`: the webhook routes share the appservice port with the homeserver's API. */
describe("e2e: trestle-webhooks with the webhook routes on the appservice port", () => {
  const harness = useHarness();
  let stack: WebhooksStack;
  let alice: MatrixTestClient;
  let roomId: string;

  before(async function () {
    stack = await startWebhooksStack(this, harness, { sharedPort: true });
    alice = await harness.user(stack.hs, "alice");
    roomId = await roomWithBot(alice);
  });

  it("hands out hook URLs on the appservice port, and a webhook posted there reaches the room", async () => {
    const url = await createHookByCommand(alice, roomId, "shared");
    assert.ok(url.startsWith(`${stack.appserviceBase}/webhooks/`), url);
    const res = await sendWebhook(url, JSON.stringify({ text: "through the shared port" }), {
      contentType: "application/json",
    });
    assert.equal(res.status, 202, res.text);
    const message = await alice.waitForEvent(
      (e) =>
        e.room_id === roomId && e.type === "m.room.message" && e.sender === `@_webhook_shared:${SERVER_NAME}`,
    );
    assert.equal(message.content.body, "through the shared port");
  });

  it("still asks the homeserver's token on the appservice API, and only there", async () => {
    const user = encodeURIComponent(`@_webhook_nobody:${SERVER_NAME}`);
    const unauthenticated = await fetch(`${stack.appserviceBase}/_matrix/app/v1/users/${user}`);
    assert.equal(unauthenticated.status, 401);
    assert.equal(((await unauthenticated.json()) as { errcode?: string }).errcode, "M_MISSING_TOKEN");
    assert.equal((await fetch(`${stack.appserviceBase}/health`)).status, 200);
    const unknownHook = await sendWebhook(`${stack.appserviceBase}/webhooks/v1/nope/nope`, "{}", {
      contentType: "application/json",
    });
    assert.equal(unknownHook.status, 404);
    assert.equal(unknownHook.json.errcode, "M_NOT_FOUND");
  });
});
