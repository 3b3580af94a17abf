import assert from "node:assert/strict";
import { IRC_OPER, type IrcServer, IrcTestClient, useHarness } from "../harness/index.js";

describe("harness: real IRC servers", () => {
  describe("Ergo (RELAYMSG)", () => {
    const harness = useHarness();
    let server: IrcServer;
    let relay: IrcTestClient;
    let listener: IrcTestClient;

    before(async function () {
      server = await harness.ergo(this);
      relay = await IrcTestClient.connect(server, "relaybot", ["draft/relaymsg"]);
      listener = await IrcTestClient.connect(server, "listener", ["draft/relaymsg"]);
      harness.onTeardown(async () => {
        await relay.quit();
        await listener.quit();
      });
      await relay.join("#smoke");
      await listener.join("#smoke");
    });

    it("advertises draft/relaymsg with the / separator", () => {
      assert.ok(relay.enabledCaps.includes("draft/relaymsg"), `caps: ${relay.enabledCaps.join(" ")}`);
      assert.ok(
        relay.rawLines.some((l) => /draft\/relaymsg=\//.test(l)),
        "separator not advertised",
      );
    });

    it("relays an opered client's RELAYMSG to others as alice/m with the draft/relaymsg tag", async () => {
      await relay.oper(IRC_OPER.name, IRC_OPER.password);
      relay.raw("RELAYMSG #smoke alice/m :hi");
      const got = await listener.waitForMessage((m) => m.message === "hi");
      assert.equal(got.nick, "alice/m");
      assert.equal(got.target, "#smoke");
      assert.equal(got.tags["draft/relaymsg"], "relaybot");
    });

    it("refuses RELAYMSG from a client without the oper capability", async () => {
      listener.raw("RELAYMSG #smoke mallory/x :spoof");
      const fail = await listener.waitForRaw((l) => /FAIL RELAYMSG/.test(l));
      assert.match(fail, /PRIVS_NEEDED/);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(!relay.messages.some((m) => m.message === "spoof"));
    });
  });

  describe("InspIRCd (no RELAYMSG)", () => {
    const harness = useHarness();
    let server: IrcServer;
    let relay: IrcTestClient;
    let listener: IrcTestClient;

    before(async function () {
      server = await harness.inspircd(this);
      relay = await IrcTestClient.connect(server, "relaybot", ["draft/relaymsg"]);
      listener = await IrcTestClient.connect(server, "listener");
      harness.onTeardown(async () => {
        await relay.quit();
        await listener.quit();
      });
      await relay.join("#smoke");
      await listener.join("#smoke");
      await relay.oper(IRC_OPER.name, IRC_OPER.password);
    });

    it("does not offer draft/relaymsg and refuses RELAYMSG as an unknown command", async () => {
      assert.ok(!relay.enabledCaps.includes("draft/relaymsg"));
      relay.raw("RELAYMSG #smoke alice/m :hi");
      const refusal = await relay.waitForRaw((l) => / 421 /.test(l) && /RELAYMSG/.test(l));
      assert.match(refusal, /Unknown command/i);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(!listener.messages.some((m) => m.message === "hi"));
    });

    it("delivers a plain PRIVMSG", async () => {
      relay.say("#smoke", "<alice> hi from the fallback path");
      const got = await listener.waitForMessage((m) => m.message === "<alice> hi from the fallback path");
      assert.equal(got.nick, "relaybot");
      assert.equal(got.target, "#smoke");
    });
  });
});
