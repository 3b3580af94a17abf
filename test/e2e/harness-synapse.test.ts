import assert from "node:assert/strict";
import { type MatrixTestClient, SERVER_NAME, type SynapseInstance, useHarness } from "../harness/index.js";

describe("harness: real Synapse", () => {
  const harness = useHarness();
  let hs: SynapseInstance;
  let alice: MatrixTestClient;
  let bob: MatrixTestClient;

  before(async function () {
    hs = await harness.synapse(this);
    alice = await harness.user(hs, "alice");
    bob = await harness.user(hs, "bob");
  });

  it("registers real users through the shared-secret admin API", async () => {
    assert.equal(alice.userId, `@alice:${SERVER_NAME}`);
    const whoami = await bob.request<{ user_id: string }>("GET", "/_matrix/client/v3/account/whoami");
    assert.equal(whoami.user_id, `@bob:${SERVER_NAME}`);
  });

  it("lets two users exchange messages, each reading them back through /sync", async () => {
    const roomId = await alice.createRoom({ name: "smoke", preset: "private_chat" });
    await alice.invite(roomId, bob.userId);
    await bob.waitForInvite(roomId);
    await bob.join(roomId);

    await alice.sendMessage(roomId, "hello bob");
    await bob.sendMessage(roomId, "hello alice");

    for (const client of [alice, bob]) {
      await client.waitUntil((seen) =>
        ["hello bob", "hello alice"].every((text) =>
          seen.some((e) => e.room_id === roomId && e.type === "m.room.message" && e.content.body === text),
        ),
      );
    }
    const atBob = bob.events.find((e) => e.content.body === "hello bob");
    assert.equal(atBob?.sender, alice.userId);
  });
});
