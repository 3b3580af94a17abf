import assert from "node:assert/strict";
import { type MatrixTestClient, useHarness } from "../../../../test/harness/index.js";
import {
  BOT_ID,
  botReply,
  createHookByCommand,
  roomWithBot,
  startWebhooksStack,
  type WebhooksStack,
} from "./stack.js";

describe("e2e: trestle-webhooks on real Synapse — the main path", () => {
  const harness = useHarness();
  let stack: WebhooksStack;
  let alice: MatrixTestClient;
  let roomId: string;
  let url: string;

  before(async function () {
    stack = await startWebhooksStack(this, harness);
    alice = await harness.user(stack.hs, "alice");
    roomId = await roomWithBot(alice);
  });

  it("creates a hook by command: the room is told without the secret, the URL comes by DM", async () => {
    url = await createHookByCommand(alice, roomId, "ci");
    const secret = url.split("/").pop()!;
    const reply = await botReply(alice, roomId, (b) => b.includes("ci"));
    assert.ok(!JSON.stringify(reply.content).includes(secret), "the room saw the secret");
    const roomEvents = alice.events.filter((e) => e.room_id === roomId);
    assert.ok(!roomEvents.some((e) => JSON.stringify(e.content).includes(secret)));
  });

  it("posts a JSON webhook into the room as the hook's ghost", async () => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "deploy finished" }),
    });
    assert.equal(res.status, 202, await res.text());
    const message = await alice.waitForEvent(
      (e) =>
        e.room_id === roomId &&
        e.type === "m.room.message" &&
        String(e.content.body).includes("deploy finished"),
    );
    assert.notEqual(message.sender, BOT_ID);
    assert.match(message.sender, /^@_webhook_ci:/);
    assert.equal(message.content.msgtype, "m.notice");
  });
});
