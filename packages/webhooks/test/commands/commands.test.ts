import assert from "node:assert/strict";
import { COMMAND_NAMES, WebhookCommands } from "../../src/commands/index.js";
import type { FailedDelivery } from "../../src/delivery/job.js";
import { HOOK_STATE_EVENT } from "../../src/hooks/model.js";
import {
  ALICE,
  BOB,
  botMessages,
  dmBodies,
  dmRooms,
  findHookUrl,
  type Harness,
  lastReply,
  message,
  ROOM,
  roomText,
  startHarness,
} from "./helpers.js";

describe("WebhookCommands", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  /** Runs a command and returns the bot's answer (body, formatted body, whole content). */
  async function command(sender: string, body: string, extra?: Record<string, unknown>) {
    const before = botMessages(h.hs).length;
    const event = message(sender, body, { extra });
    assert.equal(await h.commands.handle(event), true, `"${body}" should be handled`);
    const replies = botMessages(h.hs);
    assert.equal(replies.length, before + 1, `one answer to "${body}"`);
    const reply = replies[replies.length - 1]!;
    return {
      event,
      content: reply.content,
      body: String(reply.content.body),
      html: String(reply.content.formatted_body),
    };
  }

  /** Creates a hook as Alice; returns the URL she got by DM. */
  async function create(name: string) {
    await command(ALICE, `!webhook create ${name}`);
    const dms = dmBodies(h.hs, ALICE);
    const found = findHookUrl(dms[dms.length - 1] ?? "");
    assert.ok(found, "the DM carries the URL");
    return found;
  }

  describe("what counts as a command", () => {
    const ignored: [string, () => ReturnType<typeof message>][] = [
      ["a plain message", () => message(ALICE, "hello")],
      ["another prefix", () => message(ALICE, "!webhooks list")],
      ["a notice", () => message(ALICE, "!webhook list", { msgtype: "m.notice" })],
      ["an emote", () => message(ALICE, "!webhook list", { msgtype: "m.emote" })],
      ["the bot's own message", () => message("@_bridge_bot:fake.test", "!webhook list")],
      ["a ghost's message", () => message("@_webhook_ci:fake.test", "!webhook list")],
      [
        "an edit",
        () =>
          message(ALICE, "* !webhook list", {
            extra: {
              "m.new_content": { msgtype: "m.text", body: "!webhook list" },
              "m.relates_to": { rel_type: "m.replace", event_id: "$orig" },
            },
          }),
      ],
      [
        "a body that is no string",
        () => ({ ...message(ALICE, ""), content: { msgtype: "m.text", body: 42 } }),
      ],
      ["a state event", () => ({ ...message(ALICE, "!webhook list"), type: "m.room.topic" })],
    ];
    for (const [what, make] of ignored) {
      it(`ignores ${what}`, async () => {
        assert.equal(await h.commands.handle(make()), false);
        assert.equal(botMessages(h.hs).length, 0);
      });
    }

    it("reads a command after an older client's reply fallback", async () => {
      const { body } = await command(ALICE, "> <@bob:fake.test> can you add CI?\n> please\n\n!webhook list", {
        "m.relates_to": { "m.in_reply_to": { event_id: "$question" } },
      });
      assert.match(body, /no webhooks in this room/);
    });

    it("takes another prefix when configured", async () => {
      const commands = new WebhookCommands({
        appservice: h.appservice,
        manager: h.manager,
        renderer: h.renderer,
        dms: h.dms,
        logger: h.logger,
        commandPrefix: "!hook",
      });
      assert.equal(await commands.handle(message(ALICE, "!webhook list")), false);
      assert.equal(await commands.handle(message(ALICE, "!hook help")), true);
      assert.match(String(lastReply(h.hs).content.body), /!hook create <name>/);
    });
  });

  describe("answers", () => {
    it("are notices replying to the command, with sanitised HTML, mentioning the sender", async () => {
      const { content, event } = await command(BOB, "!webhook help");
      assert.equal(content.msgtype, "m.notice");
      assert.equal(content.format, "org.matrix.custom.html");
      assert.match(String(content.formatted_body), /<code>!webhook create &lt;name&gt; \[template\]<\/code>/);
      assert.deepEqual(content["m.relates_to"], { "m.in_reply_to": { event_id: event.event_id } });
      assert.deepEqual(content["m.mentions"], { user_ids: [BOB] });
    });

    it("stay in the command's thread", async () => {
      const { content, event } = await command(BOB, "!webhook list", {
        "m.relates_to": {
          rel_type: "m.thread",
          event_id: "$root",
          is_falling_back: true,
          "m.in_reply_to": { event_id: "$root" },
        },
      });
      assert.deepEqual(content["m.relates_to"], {
        rel_type: "m.thread",
        event_id: "$root",
        is_falling_back: false,
        "m.in_reply_to": { event_id: event.event_id },
      });
    });
  });

  describe("help", () => {
    it("lists every command for a bare prefix or help", async () => {
      for (const text of ["!webhook", "!webhook help"]) {
        const { body } = await command(BOB, text);
        assert.equal(COMMAND_NAMES.length, 12);
        for (const sub of COMMAND_NAMES) {
          assert.match(body, new RegExp(`!webhook ${sub}`), `${text} mentions ${sub}`);
        }
        assert.match(body, /github/, "names the built-in templates");
      }
    });

    it("explains one command", async () => {
      const { body } = await command(BOB, "!webhook help template");
      assert.match(body, /^!webhook template <name>/);
      assert.match(body, /alertmanager — Prometheus Alertmanager/);
      const options = await command(BOB, "!webhook help set");
      assert.match(options.body, /ratelimit/);
    });

    it("answers an unknown command with a short help", async () => {
      const { body } = await command(BOB, "!webhook frobnicate now");
      assert.match(body, /Unknown command frobnicate\. Commands: create, list/);
      assert.match(body, /!webhook help/);
    });

    it("answers wrong arguments with the usage", async () => {
      const { body } = await command(ALICE, "!webhook rotate");
      assert.equal(
        body,
        "Which webhook? Usage: !webhook rotate <name> — a new URL (sent by direct message); the old one stops working at once",
      );
      assert.match(
        (await command(ALICE, "!webhook verify ci")).body,
        /^Give the webhook's name and a scheme\. Usage:/,
      );
    });
  });

  describe("failed, retry, discard", () => {
    const failedJob = (id: string, hookId: string, roomId = ROOM): FailedDelivery => ({
      id,
      hookId,
      roomId,
      seq: 1,
      receivedAt: Date.UTC(2026, 10, 24, 6, 0, 0),
      payload: { text: "the secret content" },
      headers: {},
      failure: { reason: "The homeserver refused the message: M_FORBIDDEN", attempts: 5, at: 0 },
    });

    it("says when nothing is waiting", async () => {
      const { body } = await command(ALICE, "!webhook failed");
      assert.match(body, /none is waiting/);
    });

    it("lists the room's undelivered messages by id, hook, time and reason, never their content", async () => {
      await create("ci");
      const hook = (await h.manager.list(ROOM)).find((record) => record.name === "ci");
      assert.ok(hook);
      h.deadLetters.push(
        failedJob("job-1", hook.id),
        failedJob("job-2", "gone-hook"),
        failedJob("elsewhere", hook.id, "!other:fake.test"),
      );
      const { body } = await command(ALICE, "!webhook failed");
      assert.match(body, /could not be delivered \(2\)/);
      assert.match(
        body,
        /job-1 from ci, received 2026-11-24T06:00:00.000Z, 5 attempts: The homeserver refused the message: M_FORBIDDEN/,
      );
      assert.match(body, /job-2 from a removed webhook/);
      assert.doesNotMatch(body, /elsewhere/, "another room's are not shown");
      assert.doesNotMatch(body, /secret content/);
    });

    it("retries one by id and discards the rest, only in this room", async () => {
      h.deadLetters.push(
        failedJob("job-1", "h"),
        failedJob("job-2", "h"),
        failedJob("job-3", "h"),
        failedJob("other", "h", "!other:fake.test"),
      );
      assert.match((await command(ALICE, "!webhook retry job-2")).body, /Queued again: message job-2\./);
      assert.match(
        (await command(ALICE, "!webhook retry nope")).body,
        /No message nope of this room's webhooks/,
      );
      assert.match((await command(ALICE, "!webhook discard all")).body, /Discarded: 2 messages\./);
      assert.deepEqual(h.settled, ["retry job-2", "discard job-1", "discard job-3"]);
      assert.deepEqual(
        h.deadLetters.map((job) => job.id),
        ["other"],
      );
    });

    it("needs the power to manage webhooks", async () => {
      h.deadLetters.push(failedJob("job-1", "h"));
      assert.match((await command(BOB, "!webhook discard job-1")).body, /You need power level 50/);
      assert.match((await command(BOB, "!webhook failed")).body, /You need power level 50/);
      assert.deepEqual(h.settled, []);
    });

    it("asks which message when retry or discard has none", async () => {
      assert.match((await command(ALICE, "!webhook retry")).body, /Which message\? Give its id, or all/);
    });
  });

  describe("create", () => {
    it("creates the hook, DMs the URL to the commanding user and keeps it out of the room", async () => {
      const { body, html } = await command(ALICE, "!webhook create ci");
      assert.match(body, /Created webhook ci\. I've sent you its URL in a direct message\./);
      assert.match(body, /pick another with !webhook template ci <template>/);

      const [dmRoom] = dmRooms(h.hs, ALICE);
      assert.ok(dmRoom, "a DM room was made");
      const [dm] = dmBodies(h.hs, ALICE);
      const url = findHookUrl(dm ?? "");
      assert.ok(url, "the DM has the URL");
      assert.ok(String(lastReply(h.hs, dmRoom).content.formatted_body).includes(url.url), "in the HTML too");
      assert.match(dm!, /keep it secret/);
      assert.match(dm!, /!webhook rotate ci/);

      const record = await h.manager.get(ROOM, "ci");
      assert.equal(record.createdBy, ALICE);
      assert.equal((await h.manager.authenticate(url.id, url.secret)).name, "ci");
      assert.ok(!body.includes(url.secret) && !html.includes(url.secret));
      assert.ok(!roomText(h.hs).includes(url.secret), "nothing in the room has the secret");
      assert.ok(!h.logText().includes(url.secret), "no log line has the secret");
      const state = h.hs.room(ROOM).state.get(`${HOOK_STATE_EVENT}\u0000ci`);
      assert.equal(state?.name, "ci");
    });

    it("takes a built-in template, in any case", async () => {
      const { body } = await command(ALICE, "!webhook create gh GitHub");
      assert.match(body, /Messages use the github template/);
      assert.equal((await h.manager.get(ROOM, "gh")).template, "github");
    });

    it("refuses a user without the power, naming both levels", async () => {
      const { body } = await command(BOB, "!webhook create ci");
      assert.equal(body, "You need power level 50 to manage webhooks in this room; yours is 0.");
      assert.deepEqual(await h.manager.list(ROOM), []);
      assert.deepEqual(dmRooms(h.hs, BOB), []);
    });

    it("shows the manager's errors: a taken name, a bad name", async () => {
      await create("ci");
      assert.equal(
        (await command(ALICE, "!webhook create ci")).body,
        'A webhook named "ci" already exists in this room',
      );
      const bad = await command(ALICE, "!webhook create Not_Valid!");
      assert.match(bad.body, /"Not_Valid!" is not a valid webhook name/);
    });

    it("tells the room when the bot may not write the hook's state", async () => {
      h.hs.script("PUT", /\/state\//, {
        status: 403,
        body: { errcode: "M_FORBIDDEN", error: "You don't have permission" },
      });
      const { body } = await command(ALICE, "!webhook create ci");
      assert.match(
        body,
        /I \(@_bridge_bot:fake\.test\) need permission to send "org\.trestle\.webhook" state events here; raise my power level/,
      );
      assert.deepEqual(await h.manager.list(ROOM), []);
    });

    it("says so in the room, without the URL, when the DM cannot be sent", async () => {
      h.hs.script("POST", "/_matrix/client/v3/createRoom", {
        status: 403,
        body: { errcode: "M_FORBIDDEN", error: "Invites to this user are blocked" },
      });
      const { body } = await command(ALICE, "!webhook create ci");
      assert.match(body, /Created webhook ci, but I couldn't send you its URL in a direct message/);
      assert.match(body, /then send !webhook rotate ci to try again/);
      assert.equal(findHookUrl(roomText(h.hs)), undefined);
      assert.equal(findHookUrl(h.logText()), undefined);
      assert.match(h.logText(), /could not send a webhook secret by direct message/);
    });
  });

  describe("list", () => {
    it("is open to everyone and shows names, templates and senders, never URLs or ids", async () => {
      const { secret, id } = await create("ci");
      await command(ALICE, "!webhook create alerts alertmanager");
      await command(ALICE, "!webhook sender ci Build_Bot *bold*");
      await command(ALICE, "!webhook verify ci github");
      const { body, html } = await command(BOB, "!webhook list");
      assert.match(body, /Webhooks in this room \(2\):/);
      assert.match(
        body,
        /ci: template generic, m\.notice, as “Build_Bot \*bold\*”, signature: github, created by @alice:fake\.test/,
      );
      assert.match(body, /alerts: template alertmanager/);
      assert.ok(!html.includes("<em>"), "display names are escaped");
      for (const text of [body, html]) {
        assert.ok(!text.includes(secret) && !text.includes(id) && !text.includes("hooks.example.test"));
      }
    });

    it("says when there are none", async () => {
      assert.match(
        (await command(BOB, "!webhook list")).body,
        /no webhooks in this room yet\. Create one with !webhook create <name>/,
      );
    });
  });

  describe("remove and rotate", () => {
    it("removes a hook; its URL stops working", async () => {
      const { id, secret } = await create("ci");
      assert.equal(
        (await command(ALICE, "!webhook remove ci")).body,
        "Removed webhook ci; its URL no longer works.",
      );
      await assert.rejects(h.manager.authenticate(id, secret), /Unknown webhook/);
      assert.deepEqual(h.hs.room(ROOM).state.get(`${HOOK_STATE_EVENT}\u0000ci`), {});
    });

    it("says when there is no such hook", async () => {
      assert.equal(
        (await command(ALICE, "!webhook remove nope")).body,
        'No webhook named "nope" in this room',
      );
      assert.equal(
        (await command(ALICE, "!webhook rotate nope")).body,
        'No webhook named "nope" in this room',
      );
    });

    it("refuses users without the power", async () => {
      await create("ci");
      assert.match((await command(BOB, "!webhook remove ci")).body, /You need power level 50/);
      assert.match((await command(BOB, "!webhook rotate ci")).body, /You need power level 50/);
      assert.equal((await h.manager.list(ROOM)).length, 1);
    });

    it("rotates: the new URL goes by DM to whoever asked, the old one stops working", async () => {
      const old = await create("ci");
      h.hs.room(ROOM).state.set("m.room.power_levels\u0000", { users: { [ALICE]: 50, [BOB]: 50 } });
      const { body, html } = await command(BOB, "!webhook rotate ci");
      assert.equal(
        body,
        "Webhook ci has a new URL; the old one no longer works. I've sent you the new URL in a direct message.",
      );
      const fresh = findHookUrl(dmBodies(h.hs, BOB)[0] ?? "");
      assert.ok(fresh);
      assert.equal(fresh.id, old.id);
      assert.notEqual(fresh.secret, old.secret);
      await assert.rejects(h.manager.authenticate(old.id, old.secret), /Wrong webhook secret/);
      assert.equal((await h.manager.authenticate(fresh.id, fresh.secret)).name, "ci");
      assert.ok(!body.includes(fresh.secret) && !html.includes(fresh.secret));
      assert.ok(!roomText(h.hs).includes(fresh.secret));
      assert.ok(!h.logText().includes(fresh.secret));
    });
  });

  describe("template", () => {
    beforeEach(async () => {
      await create("ci");
    });

    it("sets a built-in by name", async () => {
      assert.equal(
        (await command(ALICE, "!webhook template ci GitLab")).body,
        "ci now uses the built-in template gitlab.",
      );
      assert.equal((await h.manager.get(ROOM, "ci")).template, "gitlab");
    });

    it("sets an inline template from the rest of the message, and shows it", async () => {
      const source = "**{{title}}** by {{user.name}}\n\n{{text}}";
      assert.equal(
        (await command(ALICE, `!webhook template ci\n\`\`\`\n${source}\n\`\`\``)).body,
        "ci now uses your template.",
      );
      assert.equal((await h.manager.get(ROOM, "ci")).template, source);
      const shown = await command(BOB, "!webhook template ci");
      assert.match(shown.body, /ci uses this template:/);
      assert.ok(shown.body.includes(source), "shown literally");
      assert.match(shown.html, /<pre><code class="language-handlebars">/);
    });

    it("shows a template compile error and keeps the old template", async () => {
      const { body } = await command(ALICE, "!webhook template ci {{#if x}}open");
      assert.match(body, /^Template problem: /);
      assert.equal((await h.manager.get(ROOM, "ci")).template, "generic");
      assert.match(
        (await command(ALICE, "!webhook template ci jenkins")).body,
        /no built-in template "jenkins"/,
      );
    });

    it("needs the power to change, not to show", async () => {
      assert.match((await command(BOB, "!webhook template ci github")).body, /You need power level 50/);
      assert.equal(
        (await command(BOB, "!webhook template ci")).body,
        "ci uses the built-in template generic.",
      );
    });
  });

  describe("sender", () => {
    beforeEach(async () => {
      await create("ci");
    });

    /** The sender as stored, without keys left undefined. */
    const sender = async () => JSON.parse(JSON.stringify((await h.manager.get(ROOM, "ci")).sender));

    it("sets the display name and avatar, keeping what is not given, and resets with off", async () => {
      assert.equal(
        (await command(ALICE, "!webhook sender ci   Build   Bot  mxc://fake.test/avatar1")).body,
        "Messages from ci now come from “Build Bot” with the avatar mxc://fake.test/avatar1.",
      );
      assert.deepEqual(await sender(), { displayName: "Build Bot", avatarUrl: "mxc://fake.test/avatar1" });
      await command(ALICE, `!webhook sender ci "Deploys"`);
      assert.deepEqual(await sender(), { displayName: "Deploys", avatarUrl: "mxc://fake.test/avatar1" });
      await command(ALICE, "!webhook sender ci mxc://fake.test/avatar2");
      assert.deepEqual(await sender(), { displayName: "Deploys", avatarUrl: "mxc://fake.test/avatar2" });
      assert.equal(
        (await command(ALICE, "!webhook sender ci off")).body,
        "Messages from ci come from the default sender again.",
      );
      assert.deepEqual(await sender(), {});
    });

    it("refuses bad values", async () => {
      assert.match(
        (await command(ALICE, "!webhook sender ci Bot mxc://bad")).body,
        /The avatar must be an mxc:\/\/ URI/,
      );
      assert.match(
        (await command(ALICE, `!webhook sender ci "${"x".repeat(300)}"`)).body,
        /the limit is 256/,
      );
      assert.match(
        (await command(ALICE, "!webhook sender ci Bot http://example.com/a.png")).body,
        /must be an mxc:\/\/ URI/,
      );
      assert.deepEqual(await sender(), {});
    });
  });

  describe("verify", () => {
    beforeEach(async () => {
      await create("ci");
    });

    it("turns signature checks on and sends the signing secret by DM only", async () => {
      const { body, html } = await command(ALICE, "!webhook verify ci github");
      assert.equal(
        body,
        "Signature checks (github) are on for ci: requests without a valid signature are refused. I've sent you the signing secret in a direct message.",
      );
      const record = await h.manager.get(ROOM, "ci");
      assert.deepEqual(record.signature, { scheme: "github" });
      const secret = record.signingSecret!;
      assert.ok(secret.length >= 20);
      const dms = dmBodies(h.hs, ALICE);
      const dm = dms[dms.length - 1]!;
      assert.ok(dm.includes(secret), "the DM has the signing secret");
      assert.match(dm, /Secret field of the github webhook settings/);
      assert.ok(!body.includes(secret) && !html.includes(secret));
      assert.ok(!roomText(h.hs).includes(secret), "not in the room, not in room state");
      assert.ok(!h.logText().includes(secret));
    });

    it("names GitLab's field, and turns checks off", async () => {
      await command(ALICE, "!webhook verify ci gitlab");
      const dms = dmBodies(h.hs, ALICE);
      assert.match(dms[dms.length - 1]!, /Secret token field of the gitlab webhook settings/);
      assert.equal((await command(ALICE, "!webhook verify ci off")).body, "Signature checks are off for ci.");
      const record = await h.manager.get(ROOM, "ci");
      assert.equal(record.signature, undefined);
      assert.equal(record.signingSecret, undefined);
    });

    it("refuses users without the power", async () => {
      assert.match((await command(BOB, "!webhook verify ci github")).body, /You need power level 50/);
      assert.equal((await h.manager.get(ROOM, "ci")).signature, undefined);
    });
  });

  describe("options", () => {
    beforeEach(async () => {
      await create("ci");
    });

    it("shows the options to anyone", async () => {
      assert.equal(
        (await command(BOB, "!webhook options ci")).body,
        "Options of ci: msgtype=m.notice, get=off, wait=off, override=on, ratelimit=default",
      );
    });

    it("changes them", async () => {
      const { body } = await command(
        ALICE,
        "!webhook options ci msgtype=m.text get=on  wait=on override=off ratelimit=6/2",
      );
      assert.equal(body, "Updated ci: msgtype=m.text, get=on, wait=on, override=off, ratelimit=6/2");
      const record = await h.manager.get(ROOM, "ci");
      assert.equal(record.msgtype, "m.text");
      assert.equal(record.allowGet, true);
      assert.equal(record.wait, true);
      assert.equal(record.allowSenderOverride, false);
      assert.deepEqual(record.rateLimit, { perMinute: 6, burst: 2 });
      await command(ALICE, "!webhook options ci ratelimit=default");
      assert.equal((await h.manager.get(ROOM, "ci")).rateLimit, undefined);
    });

    it("explains a bad option and changes nothing", async () => {
      const { body } = await command(ALICE, "!webhook options ci get=on colour=blue");
      assert.match(
        body,
        /^Unknown option "colour": the options are msgtype, get, wait, override, ratelimit\. Usage: !webhook options/,
      );
      assert.equal((await h.manager.get(ROOM, "ci")).allowGet, false);
    });

    it("refuses users without the power", async () => {
      assert.match((await command(BOB, "!webhook options ci get=on")).body, /You need power level 50/);
    });
  });

  describe("failures", () => {
    it("answers an unexpected error with a pointer to the log and logs it", async () => {
      h.hs.script("GET", /\/state\/m\.room\.power_levels\/?$/, {
        status: 400,
        body: { errcode: "M_UNKNOWN", error: "something odd" },
      });
      const { body } = await command(ALICE, "!webhook create ci");
      assert.equal(body, "Something went wrong (see the bridge log).");
      assert.match(h.logText(), /"level":50.*webhook command failed/);
    });

    it("never rejects, even when it cannot answer", async () => {
      const muted = { status: 403, body: { errcode: "M_FORBIDDEN", error: "muted" } };
      h.hs.script("PUT", /\/send\//, muted, muted);
      assert.equal(await h.commands.handle(message(BOB, "!webhook help")), true);
      assert.match(h.logText(), /could not answer a webhook command/);
    });

    it("logs commands without their bodies at info", async () => {
      await command(ALICE, "!webhook create ci");
      await command(ALICE, "!webhook template ci **SECRET-LOOKING {{text}}**");
      assert.match(h.logText(), /"command":"template","hook":"ci"/);
      assert.ok(!h.logText().includes("SECRET-LOOKING"));
    });
  });
});
