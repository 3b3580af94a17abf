import assert from "node:assert/strict";
import { type Intent, MatrixApiError, silentLogger } from "@trestle/appservice";
import { type AvatarFetcher, MatrixHookPoster } from "../../src/delivery/poster.js";
import type { HookRecord } from "../../src/hooks/model.js";
import type { RenderedMessage } from "../../src/rendering/types.js";
import { makeHook, ROOM_A, ROOM_B } from "./helpers.js";

type Call = [string, ...unknown[]];

/** Just enough of an Intent: records every call, keeps membership and member state per room. */
class FakeIntent {
  readonly calls: Call[] = [];
  readonly joined = new Set<string>();
  readonly memberState = new Map<string, Record<string, unknown>>();
  uploads = 0;

  constructor(readonly userId: string) {}

  async ensureRegistered(): Promise<void> {
    this.calls.push(["register"]);
  }

  membershipIn(roomId: string): string | undefined {
    return this.joined.has(roomId) ? "join" : undefined;
  }

  async ensureJoined(roomId: string, options: { inviter?: { userId: string } } = {}): Promise<void> {
    this.calls.push(["join", roomId, options.inviter?.userId]);
    this.joined.add(roomId);
    // A join shows the global profile, which these ghosts never set.
    this.memberState.set(roomId, { membership: "join" });
  }

  async getState(roomId: string, type: string, stateKey: string): Promise<Record<string, unknown>> {
    this.calls.push(["getState", roomId, type, stateKey]);
    const content = this.memberState.get(roomId);
    if (!content) throw new MatrixApiError(404, "M_NOT_FOUND", "no state", { method: "GET", path: "/state" });
    return content;
  }

  async sendState(roomId: string, type: string, stateKey: string, content: Record<string, unknown>) {
    this.calls.push(["sendState", roomId, type, stateKey, content]);
    this.memberState.set(roomId, content);
    return "$state";
  }

  async sendMessage(roomId: string, content: Record<string, unknown>, options: unknown) {
    this.calls.push(["send", roomId, content, options]);
    return `$message${this.calls.length}`;
  }

  async uploadMedia(_data: Uint8Array, options: { contentType?: string }) {
    this.uploads += 1;
    this.calls.push(["upload", options.contentType]);
    return `mxc://example.org/upload${this.uploads}`;
  }

  of(kind: string): Call[] {
    return this.calls.filter((call) => call[0] === kind);
  }

  /** The contents of the member events this ghost sent. */
  memberEvents(): Record<string, unknown>[] {
    return this.of("sendState").map((call) => call[4] as Record<string, unknown>);
  }
}

class FakeIntents {
  readonly bot = new FakeIntent("@webhookbot:example.org");
  readonly ghosts = new Map<string, FakeIntent>();

  getIntentForLocalpart(localpart: string): Intent {
    const userId = `@${localpart}:example.org`;
    let ghost = this.ghosts.get(userId);
    if (!ghost) {
      ghost = new FakeIntent(userId);
      this.ghosts.set(userId, ghost);
    }
    return ghost as unknown as Intent;
  }

  getBotIntent(): Intent {
    return this.bot as unknown as Intent;
  }

  ghost(hook: HookRecord): FakeIntent {
    return this.ghosts.get(`@_webhook_${hook.name}:example.org`)!;
  }
}

function message(body: string, sender?: RenderedMessage["sender"]): RenderedMessage {
  const rendered: RenderedMessage = {
    msgtype: "m.notice",
    body,
    format: "org.matrix.custom.html",
    formatted_body: `<b>${body}</b>`,
    mentions: { user_ids: [] },
    empty: false,
    truncated: false,
  };
  if (sender) rendered.sender = sender;
  return rendered;
}

describe("MatrixHookPoster", () => {
  let intents: FakeIntents;
  const poster = (fetchAvatar?: AvatarFetcher) =>
    new MatrixHookPoster({ intents, userPrefix: "_webhook_", logger: silentLogger(), fetchAvatar });
  const post = (p: MatrixHookPoster, hook: HookRecord, rendered = message("hello"), txnId = "t1") =>
    p.post({ hook, message: rendered, txnId, ts: 42 });

  beforeEach(() => {
    intents = new FakeIntents();
  });

  it("registers the hook's ghost, joins with the bot as inviter, sets its room profile, then sends", async () => {
    const hook = makeHook({
      msgtype: "m.text",
      sender: { displayName: "CI", avatarUrl: "mxc://example.org/ci" },
    });
    const eventId = await post(poster(), hook, message("build passed"), "trestle-webhook-job1");
    const ghost = intents.ghost(hook);
    assert.equal(ghost.userId, `@_webhook_${hook.name}:example.org`);
    assert.deepEqual(
      ghost.calls.map((c) => c[0]),
      ["register", "join", "getState", "sendState", "send"],
    );
    assert.deepEqual(ghost.of("join")[0], ["join", ROOM_A, "@webhookbot:example.org"]);
    assert.deepEqual(ghost.of("sendState")[0], [
      "sendState",
      ROOM_A,
      "m.room.member",
      ghost.userId,
      { membership: "join", displayname: "CI", avatar_url: "mxc://example.org/ci" },
    ]);
    assert.deepEqual(ghost.of("send")[0], [
      "send",
      ROOM_A,
      {
        msgtype: "m.text",
        body: "build passed",
        format: "org.matrix.custom.html",
        formatted_body: "<b>build passed</b>",
        "m.mentions": {},
      },
      { ts: 42, txnId: "trestle-webhook-job1" },
    ]);
    assert.equal(eventId, "$message5");
  });

  it("sets the member event only when the room's profile changes, per room", async () => {
    const p = poster();
    const inA = makeHook({ name: "deploy", roomId: ROOM_A });
    const inB = makeHook({ name: "deploy", roomId: ROOM_B, sender: { displayName: "Deploys of B" } });
    await post(p, inA);
    await post(p, inA);
    await post(p, inB);
    const ghost = intents.ghost(inA);
    assert.equal(intents.ghosts.size, 1, "same name, one ghost");
    assert.deepEqual(
      ghost.of("sendState").map((c) => [c[1], (c[4] as { displayname: string }).displayname]),
      [
        [ROOM_A, "deploy"],
        [ROOM_B, "Deploys of B"],
      ],
    );
    assert.equal(ghost.of("join").length, 2);
    assert.equal(ghost.of("send").length, 3);
  });

  it("after a restart, reads the room's member event instead of sending it again", async () => {
    const hook = makeHook({ sender: { displayName: "CI" } });
    await post(poster(), hook);
    const ghost = intents.ghost(hook);
    await post(poster(), hook);
    assert.equal(ghost.of("sendState").length, 1);
    assert.equal(ghost.of("getState").length, 2);
  });

  it("checks the profile again after the ghost had to rejoin", async () => {
    const p = poster();
    const hook = makeHook();
    await post(p, hook);
    const ghost = intents.ghost(hook);
    ghost.joined.delete(ROOM_A); // kicked, say
    await post(p, hook);
    assert.equal(ghost.of("join").length, 2);
    assert.equal(ghost.of("sendState").length, 2);
  });

  it("lets a Slack username rename the sender per message when the hook allows it", async () => {
    const p = poster();
    const hook = makeHook({ allowSenderOverride: true });
    await post(p, hook, message("one", { displayname: "Jenkins" }));
    await post(p, hook, message("two", { displayname: "Jenkins" }));
    await post(p, hook, message("three"));
    const names = intents
      .ghost(hook)
      .of("sendState")
      .map((c) => (c[4] as { displayname: string }).displayname);
    assert.deepEqual(names, ["Jenkins", hook.name]);

    const strict = makeHook({ allowSenderOverride: false, sender: { displayName: "Fixed" } });
    await post(p, strict, message("x", { displayname: "Impostor" }));
    assert.equal(intents.ghost(strict).memberEvents()[0]?.displayname, "Fixed");
  });

  it("skips http avatars without a fetcher, but keeps the display name override", async () => {
    const hook = makeHook({ sender: { avatarUrl: "mxc://example.org/own" } });
    await post(poster(), hook, message("x", { displayname: "Bot", avatar_url: "https://example.com/a.png" }));
    const ghost = intents.ghost(hook);
    assert.deepEqual(ghost.of("sendState")[0]?.[4], {
      membership: "join",
      displayname: "Bot",
      avatar_url: "mxc://example.org/own",
    });
    assert.equal(ghost.uploads, 0);
  });

  it("uploads a fetched avatar once per URL, and sends anyway when fetching fails", async () => {
    const fetched: string[] = [];
    const fetchAvatar: AvatarFetcher = async (url) => {
      fetched.push(url);
      if (url.includes("broken")) throw new Error("404 from the image host");
      return { data: new Uint8Array([1, 2, 3]), contentType: "image/png" };
    };
    const p = poster(fetchAvatar);
    const hook = makeHook();
    const icon = { displayname: "Bot", avatar_url: "https://example.com/a.png" };
    await post(p, hook, message("1", icon));
    await post(p, hook, message("2", icon));
    const ghost = intents.ghost(hook);
    assert.deepEqual(fetched, ["https://example.com/a.png"]);
    assert.equal(ghost.uploads, 1);
    assert.equal(ghost.memberEvents()[0]?.avatar_url, "mxc://example.org/upload1");

    const broken = { displayname: "Bot", avatar_url: "https://example.com/broken.png" };
    await post(p, hook, message("3", broken));
    await post(p, hook, message("4", broken));
    assert.equal(fetched.filter((u) => u.includes("broken")).length, 1, "a failure is remembered");
    assert.equal(ghost.of("send").length, 4);
  });

  it("sends notices as the bot", async () => {
    await poster().notice(ROOM_A, "your template broke");
    assert.deepEqual(intents.bot.of("send")[0], [
      "send",
      ROOM_A,
      { msgtype: "m.notice", body: "your template broke" },
      undefined,
    ]);
  });
});
