import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type ClientEvent,
  type MatrixTestClient,
  SERVER_NAME,
  useHarness,
} from "../../../../test/harness/index.js";
import { fixture, githubExample } from "../rendering/support.js";
import {
  botReply,
  createHookByCommand,
  roomWithBot,
  startWebhooksStack,
  type WebhooksStack,
} from "./stack.js";

/**
 * Built-in templates as a room member sees them: real sample payloads POSTed to a running
 * trestle-webhooks with the sending service's own headers, and the `body` / `formatted_body`
 * of the event alice receives through /sync from a real Synapse.
 */
describe("e2e: trestle-webhooks templates on real Synapse", () => {
  const harness = useHarness();
  let stack: WebhooksStack;
  let alice: MatrixTestClient;
  let roomId: string;
  const urls = new Map<string, string>();

  const ghost = (hook: string) => `@_webhook_${hook}:${SERVER_NAME}`;

  /** POSTs a webhook and checks the bridge accepted it (202) before anything was sent. */
  async function post(hook: string, payload: unknown, headers: Record<string, string> = {}): Promise<void> {
    const url = urls.get(hook);
    assert.ok(url, `no hook ${hook}`);
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(payload),
    });
    assert.equal(res.status, 202, await res.text());
  }

  /** The next message from the hook's ghost that alice receives and `match` accepts. */
  function messageFrom(hook: string, match: (body: string) => boolean): Promise<ClientEvent> {
    return alice.waitForEvent(
      (e) =>
        e.room_id === roomId &&
        e.type === "m.room.message" &&
        e.sender === ghost(hook) &&
        match(String(e.content.body)),
    );
  }

  /** Changes a hook by command and waits for the bot's confirmation. */
  async function command(text: string, confirmation: (body: string) => boolean): Promise<void> {
    await alice.sendMessage(roomId, text);
    await botReply(alice, roomId, confirmation);
  }

  function html(event: ClientEvent): string {
    assert.equal(event.content.format, "org.matrix.custom.html");
    assert.equal(typeof event.content.formatted_body, "string");
    return event.content.formatted_body as string;
  }

  before(async function () {
    stack = await startWebhooksStack(this, harness);
    alice = await harness.user(stack.hs, "alice");
    roomId = await roomWithBot(alice);
    // `github` keeps the default template, so the X-GitHub-Event header has to pick the built-in;
    // the others are set by command, the way a room admin does it.
    for (const name of ["github", "gitlab", "slack", "alerts"]) {
      urls.set(name, await createHookByCommand(alice, roomId, name));
    }
    await command("!webhook template gitlab gitlab", (b) =>
      b.includes("gitlab now uses the built-in template gitlab"),
    );
    await command("!webhook template slack slack", (b) =>
      b.includes("slack now uses the built-in template slack"),
    );
    await command("!webhook template alerts alertmanager", (b) =>
      b.includes("alerts now uses the built-in template alertmanager"),
    );
  });

  describe("GitHub, picked by the X-GitHub-Event header on a hook with the default template", () => {
    it("push: who pushed what where, the commit's short sha linked, and the compare link", async () => {
      const payload = githubExample("push", (e) => e.commits.length === 1 && !e.deleted);
      const commit = payload.commits[0];
      await post("github", payload, {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "5f1b6c2e-0001-11ef-8a3b-e2e000000001",
      });
      const event = await messageFrom("github", (b) => b.includes("pushed 1 commit"));
      const formatted = html(event);

      assert.equal(event.content.msgtype, "m.notice");
      assert.match(
        formatted,
        /^<p><strong>Codertocat<\/strong> pushed 1 commit to new branch <code>master<\/code> of <a href="https:\/\/github\.com\/Codertocat\/Hello-World">Codertocat\/Hello-World<\/a>/,
      );
      assert.ok(formatted.includes(`(<a href="${payload.compare}">compare</a>)`), formatted);
      assert.ok(
        formatted.includes(
          `<ul>\n<li><a href="${commit.url}"><code>${commit.id.slice(0, 7)}</code></a> Initial commit — Codertocat</li>\n</ul>`,
        ),
        formatted,
      );
      const text = formatted.replace(/<[^>]*>/g, "");
      assert.ok(!text.includes(commit.id.slice(0, 8)), "the sha is shown short, never in full");

      const body = String(event.content.body);
      assert.match(body, /^Codertocat pushed 1 commit to new branch master of Codertocat\/Hello-World /);
      assert.ok(
        body.includes(`\n• ${commit.id.slice(0, 7)} <${commit.url}> Initial commit — Codertocat`),
        body,
      );
      assert.doesNotMatch(body, /<\/?(strong|code|a|li)\b|\*\*/, "the plain body carries no markup");
    });

    it("pull_request opened: the title is the link to the pull request", async () => {
      const payload = githubExample("pull_request", (e) => e.action === "opened");
      await post("github", payload, { "X-GitHub-Event": "pull_request" });
      const event = await messageFrom("github", (b) => b.includes("opened pull request"));
      const formatted = html(event);

      const link = `<a href="${payload.pull_request.html_url}">#${payload.pull_request.number} ${payload.pull_request.title}</a>`;
      assert.equal(
        formatted,
        `🔀 <strong>Codertocat</strong> opened pull request ${link} (<code>changes</code> → <code>master</code>) in <a href="https://github.com/Codertocat/Hello-World">Codertocat/Hello-World</a>`,
      );
      assert.equal(
        event.content.body,
        `🔀 Codertocat opened pull request #2 ${payload.pull_request.title} <${payload.pull_request.html_url}> (changes → master) in Codertocat/Hello-World <https://github.com/Codertocat/Hello-World>`,
      );
    });
  });

  describe("GitLab, on a hook set to the gitlab template by command", () => {
    it("push: commits as a list with short shas, and a compare link built from before/after", async () => {
      const payload = fixture("gitlab-push") as Record<string, string>;
      await post("gitlab", payload, { "X-Gitlab-Event": "Push Hook" });
      const event = await messageFrom("gitlab", (b) => b.includes("pushed 2 commits"));
      const formatted = html(event);

      assert.match(
        formatted,
        /^<p><strong>praman<\/strong> pushed 2 commits to branch <code>main<\/code> of <a href="https:\/\/gitlab\.example\.com\/payments\/billing-service">payments\/billing-service<\/a>/,
      );
      assert.ok(
        formatted.includes(
          `<a href="https://gitlab.example.com/payments/billing-service/-/compare/${payload.before}...${payload.after}">compare</a>`,
        ),
        formatted,
      );
      assert.equal(formatted.match(/<li>/g)?.length, 2, formatted);
      assert.ok(
        formatted.includes("<code>1f0e9d8</code></a> Round invoice totals half-even — Priya Raman</li>"),
      );
      assert.ok(
        formatted.includes("<code>9a8b7c6</code></a> Log reconciliation batch ids — Priya Raman</li>"),
      );
      assert.doesNotMatch(formatted, /Matches what the ledger/, "only each commit's title");

      const lines = String(event.content.body).split("\n");
      assert.equal(lines.length, 3, String(event.content.body));
      assert.match(lines[0]!, /^praman pushed 2 commits to branch main of payments\/billing-service /);
      assert.match(
        lines[1]!,
        /^• 1f0e9d8 <https:\/\/gitlab\.example\.com\/[^>]+> Round invoice totals half-even — Priya Raman$/,
      );
      assert.match(
        lines[2]!,
        /^• 9a8b7c6 <https:\/\/gitlab\.example\.com\/[^>]+> Log reconciliation batch ids — Priya Raman$/,
      );
    });

    it("merge_request: the action, the title linked, source → target", async () => {
      await post("gitlab", fixture("gitlab-merge-request"), { "X-Gitlab-Event": "Merge Request Hook" });
      const event = await messageFrom("gitlab", (b) => b.includes("merge request"));
      assert.equal(
        html(event),
        '🔀 <strong>praman</strong> opened merge request <a href="https://gitlab.example.com/payments/billing-service/-/merge_requests/57">!57 Round invoice totals half-even</a> (<code>feature/half-even-rounding</code> → <code>main</code>) in <a href="https://gitlab.example.com/payments/billing-service">payments/billing-service</a>',
      );
      assert.equal(
        event.content.body,
        "🔀 praman opened merge request !57 Round invoice totals half-even <https://gitlab.example.com/payments/billing-service/-/merge_requests/57> (feature/half-even-rounding → main) in payments/billing-service <https://gitlab.example.com/payments/billing-service>",
      );
    });
  });

  describe("Slack-compatible payloads", () => {
    /** The ghost's display name in the room, from its m.room.member state there. */
    async function ghostNameInRoom(): Promise<unknown> {
      const member = await alice.request(
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(ghost("slack"))}`,
      );
      assert.equal(member.membership, "join");
      return member.displayname;
    }

    it("mrkdwn text and attachments with fields; <!here> pings no one", async () => {
      const payload = fixture("slack-attachments");
      await post("slack", payload);
      const event = await messageFrom("slack", (b) => b.startsWith("Build #1042"));
      const formatted = html(event);

      assert.ok(
        formatted.startsWith(
          '<p><strong>Build #1042</strong> of <em>payments-api</em> failed on <del>main</del> <code>release/2.3</code> <a href="https://ci.example.com/job/payments-api/1042/">Open build</a> cc @U024BE7LH &amp; @here</p>',
        ),
        formatted,
      );
      assert.ok(formatted.includes("<p>Nightly pipeline report</p>"), formatted);
      assert.ok(
        formatted.includes(
          '🟥 <a href="https://ci.example.com/user/ci-bot">ci-bot</a> <strong><a href="https://ci.example.com/job/payments-api/1042/">payments-api #1042</a></strong>',
        ),
        formatted,
      );
      assert.ok(formatted.includes("3 tests failed in <code>InvoiceTotalsTest</code>"), formatted);
      assert.ok(formatted.includes("<strong>Branch</strong>: release/2.3<br />"), formatted);
      assert.ok(formatted.includes("<strong>Duration</strong>: 12 min 4 s<br />"), formatted);
      assert.ok(formatted.includes("<em>Jenkins · 2024-04-08 08:00 UTC</em>"), formatted);
      assert.ok(formatted.endsWith("<p>🟩 Coverage 81.4% (+0.3%)</p>"), formatted);

      assert.equal(
        event.content.body,
        [
          "Build #1042 of payments-api failed on main release/2.3 Open build <https://ci.example.com/job/payments-api/1042/> cc @U024BE7LH & @here",
          "",
          "Nightly pipeline report",
          "",
          "🟥 ci-bot <https://ci.example.com/user/ci-bot> payments-api #1042 <https://ci.example.com/job/payments-api/1042/>",
          "3 tests failed in InvoiceTotalsTest",
          "Branch: release/2.3",
          "Duration: 12 min 4 s",
          "Jenkins · 2024-04-08 08:00 UTC",
          "",
          "🟩 Coverage 81.4% (+0.3%)",
        ].join("\n"),
      );
      assert.deepEqual(event.content["m.mentions"], {}, "Slack's <!here> must not notify the room");
    });

    it("`username` names the sender in the room while the hook allows overrides (the default)", async () => {
      await post("slack", { username: "Nightly Jenkins", text: "*named* by the payload" });
      const event = await messageFrom("slack", (b) => b === "named by the payload");
      assert.equal(html(event), "<strong>named</strong> by the payload");
      assert.equal(await ghostNameInRoom(), "Nightly Jenkins");

      // Set in this room with the ghost's member event, which alice sees before the message.
      const rename = alice.events.find(
        (e) =>
          e.room_id === roomId &&
          e.type === "m.room.member" &&
          e.state_key === ghost("slack") &&
          e.content.displayname === "Nightly Jenkins",
      );
      assert.ok(rename, "alice saw no member event renaming the ghost");
      assert.ok(alice.events.indexOf(rename) < alice.events.indexOf(event), "renamed only after the message");

      // Per message: a payload without username is sent under the hook's own name again.
      await post("slack", { text: "no username" });
      await messageFrom("slack", (b) => b === "no username");
      assert.equal(await ghostNameInRoom(), "slack");
    });

    it("`icon_url` becomes the sender's avatar in the room: fetched once, uploaded to the homeserver", async () => {
      const png = Buffer.from(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
        "base64",
      );
      let fetches = 0;
      const images = createServer((_req, res) => {
        fetches += 1;
        res.writeHead(200, { "content-type": "image/png", "content-length": png.length });
        res.end(png);
      });
      await new Promise<void>((resolve) => images.listen(0, "127.0.0.1", resolve));
      try {
        const iconUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/jenkins.png`;
        await post("slack", { username: "Jenkins", icon_url: iconUrl, text: "with an icon" });
        const event = await messageFrom("slack", (b) => b === "with an icon");
        const member = alice.events.find(
          (e) =>
            e.room_id === roomId &&
            e.type === "m.room.member" &&
            e.state_key === ghost("slack") &&
            e.content.displayname === "Jenkins" &&
            typeof e.content.avatar_url === "string",
        );
        assert.ok(member, "alice saw no member event giving the ghost the icon");
        assert.ok(
          alice.events.indexOf(member) < alice.events.indexOf(event),
          "the icon is set before the message",
        );
        const mxc = String(member.content.avatar_url);
        assert.match(mxc, new RegExp(`^mxc://${SERVER_NAME}/`));
        // What room members' clients download is the image the payload pointed at.
        const media = await fetch(`${stack.hs.baseUrl}/_matrix/client/v1/media/download/${mxc.slice(6)}`, {
          headers: { authorization: `Bearer ${alice.accessToken}` },
        });
        assert.equal(media.status, 200);
        assert.deepEqual(Buffer.from(await media.arrayBuffer()), png);

        await post("slack", { username: "Jenkins", icon_url: iconUrl, text: "same icon again" });
        await messageFrom("slack", (b) => b === "same icon again");
        assert.equal(fetches, 1, "the icon is fetched and uploaded once, then reused");
      } finally {
        await new Promise<void>((resolve) => images.close(() => resolve()));
      }
    });

    it("with `override=off`, a payload's `username` no longer renames the sender", async () => {
      await command(
        "!webhook options slack override=off",
        (b) => b.includes("Updated slack") && b.includes("override=off"),
      );
      await post("slack", { username: "Impostor", text: "override is off" });
      await messageFrom("slack", (b) => b === "override is off");
      assert.equal(await ghostNameInRoom(), "slack");
      assert.ok(
        !alice.events.some((e) => e.type === "m.room.member" && e.content.displayname === "Impostor"),
        "the ghost was renamed after the payload",
      );
    });
  });

  describe("Alertmanager, on a hook set to the alertmanager template by command", () => {
    it("a firing group with two alerts: the headline, then one list item per alert with its links", async () => {
      await post("alerts", fixture("alertmanager-firing"));
      const event = await messageFrom("alerts", (b) => b.startsWith("🔥 FIRING"));
      const formatted = html(event);

      assert.match(
        formatted,
        /^<p>🔥 <strong>FIRING<\/strong> HostHighCpuLoad · 2 alerts for <code>matrix-ops<\/code><\/p>\n<ul>\n/,
      );
      assert.equal(formatted.match(/<li>🔥 <strong>HostHighCpuLoad<\/strong>/g)?.length, 2, formatted);
      assert.ok(
        formatted.includes(
          "<li>🔥 <strong>HostHighCpuLoad</strong> (critical) on <code>db-1.example.org:9100</code>: CPU load above 90% for 10 minutes<br />\ndb-1 has been at 96% CPU since the nightly vacuum started.<br />\nsince 2024-05-02 01:14 UTC · ",
        ),
        formatted,
      );
      assert.ok(
        formatted.includes(
          "<li>🔥 <strong>HostHighCpuLoad</strong> (warning) on <code>web-3.example.org:9100</code>: CPU load above 80% for 10 minutes<br />\nsince 2024-05-02 01:16 UTC · ",
        ),
        formatted,
      );
      assert.ok(
        formatted.includes(
          '<a href="https://prometheus.example.org/graph?g0.expr=node_load15+%3E+0.9&amp;g0.tab=1">source</a>',
        ),
        formatted,
      );
      const silences = [
        ...formatted.matchAll(
          /<a href="(https:\/\/alertmanager\.example\.org\/#\/silences\/new\?filter=[^"]+)">silence<\/a>/g,
        ),
      ];
      assert.equal(silences.length, 2, formatted);
      const filter = new URL(silences[1]![1]!.replace("/#/", "/")).searchParams.get("filter");
      assert.equal(
        filter,
        '{alertname="HostHighCpuLoad",instance="web-3.example.org:9100",job="node",severity="warning"}',
      );

      const body = String(event.content.body);
      assert.match(
        body,
        /^🔥 FIRING HostHighCpuLoad · 2 alerts for matrix-ops\n• 🔥 HostHighCpuLoad \(critical\) on db-1\.example\.org:9100: /,
      );
      assert.match(
        body,
        /\n• 🔥 HostHighCpuLoad \(warning\) on web-3\.example\.org:9100: CPU load above 80% for 10 minutes\n {2}since 2024-05-02 01:16 UTC · source </,
      );
      assert.doesNotMatch(body, /0001/, "Go's zero endsAt is not shown");
    });

    it("a resolved group: ✅, when it ended, and no silence link", async () => {
      await post("alerts", fixture("alertmanager-resolved"));
      const event = await messageFrom("alerts", (b) => b.startsWith("✅ RESOLVED"));
      assert.equal(
        html(event),
        '<p>✅ <strong>RESOLVED</strong> DiskAlmostFull · 1 alert for <code>matrix-ops</code></p>\n<ul>\n<li>✅ <strong>DiskAlmostFull</strong> (warning) on <code>backup-2.example.org:9100</code>: Less than 10% disk space left<br />\nresolved 2024-05-02 03:48 UTC · <a href="https://prometheus.example.org/graph?g0.expr=node_filesystem_avail_bytes&amp;g0.tab=1">source</a></li>\n</ul>',
      );
      assert.equal(
        event.content.body,
        "✅ RESOLVED DiskAlmostFull · 1 alert for matrix-ops\n• ✅ DiskAlmostFull (warning) on backup-2.example.org:9100: Less than 10% disk space left\n  resolved 2024-05-02 03:48 UTC · source <https://prometheus.example.org/graph?g0.expr=node_filesystem_avail_bytes&g0.tab=1>",
      );
    });
  });
});
