import assert from "node:assert/strict";
import { normalizeHeaders } from "../../src/rendering/index.js";
import { detectBuiltinTemplate, resolveTemplate } from "../../src/templates/index.js";
import { fixture, githubExample, renderer } from "./support.js";

describe("built-in templates", () => {
  const r = renderer();

  describe("gitlab", () => {
    const gitlab = r.builtin("gitlab");

    it("push: commits, branch and a compare link built from before/after", () => {
      const message = r.render(gitlab, fixture("gitlab-push"), {
        headers: { "X-Gitlab-Event": "Push Hook" },
      });
      const html = message.formatted_body;
      assert.match(
        html,
        /^<p><strong>praman<\/strong> pushed 2 commits to branch <code>main<\/code> of <a href="https:\/\/gitlab\.example\.com\/payments\/billing-service">payments\/billing-service<\/a>/,
      );
      assert.ok(
        html.includes(
          '<a href="https://gitlab.example.com/payments/billing-service/-/compare/4c1e7d3b2a9f8e6d5c4b3a29180716f5e4d3c2b1...9a8b7c6d5e4f30211f0e9d8c7b6a5f4e3d2c1b0a">compare</a>',
        ),
        html,
      );
      assert.ok(html.includes("<code>1f0e9d8</code></a> Round invoice totals half-even — Priya Raman</li>"));
      assert.ok(html.includes("<code>9a8b7c6</code></a> Log reconciliation batch ids — Priya Raman</li>"));
    });

    it("merge_request: action, title as link text, source → target", () => {
      const message = r.render(gitlab, fixture("gitlab-merge-request"));
      assert.equal(
        message.formatted_body,
        '🔀 <strong>praman</strong> opened merge request <a href="https://gitlab.example.com/payments/billing-service/-/merge_requests/57">!57 Round invoice totals half-even</a> (<code>feature/half-even-rounding</code> → <code>main</code>) in <a href="https://gitlab.example.com/payments/billing-service">payments/billing-service</a>',
      );

      const merged = fixture("gitlab-merge-request");
      (merged.object_attributes as Record<string, unknown>).action = "merge";
      assert.match(
        r.render(gitlab, merged).body,
        /^🟣 praman merged merge request !57 Round invoice totals half-even/,
      );
    });

    it("pipeline: status, ref, link, duration and the failed jobs", () => {
      const message = r.render(gitlab, fixture("gitlab-pipeline"));
      assert.match(
        message.formatted_body,
        /^<p>❌ Pipeline <a href="https:\/\/gitlab\.example\.com\/payments\/billing-service\/-\/pipelines\/1184406">#1184406<\/a> <strong>failed<\/strong> on <code>main<\/code> in .* after 6m 31s/,
      );
      assert.match(message.body, /\n• ❌ job rspec \(stage test\) failed$/);
      assert.doesNotMatch(message.body, /bundle|deploy-staging/, "only failed jobs are listed");

      const passed = fixture("gitlab-pipeline");
      (passed.object_attributes as Record<string, unknown>).status = "success";
      (passed as { builds: unknown[] }).builds = [];
      assert.match(r.render(gitlab, passed).body, /^✅ Pipeline #1184406 <[^>]+> success on main/);
    });
  });

  describe("gitea / forgejo", () => {
    const gitea = r.builtin("gitea");

    it("push: compare_url link and commits", () => {
      const message = r.render(gitea, fixture("gitea-push"), { headers: { "X-Gitea-Event": "push" } });
      const html = message.formatted_body;
      assert.match(html, /<strong>jweber<\/strong> pushed 2 commits to branch <code>develop<\/code>/);
      assert.ok(
        html.includes(
          '<a href="https://git.example.net/infra/ansible-roles/compare/2b7f4c9e1d0a8b6c5e3f2a1d9c8b7a6e5f4d3c2b...c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6">compare</a>',
        ),
      );
      assert.ok(html.includes("<code>c3d4e5f</code></a> postgres: pin to 16.2 — jweber</li>"));
    });

    it("pull_request merged, from Forgejo's own header", () => {
      const message = r.render(gitea, fixture("gitea-pull-request"), {
        headers: { "X-Forgejo-Event": "pull_request" },
      });
      assert.equal(
        message.formatted_body,
        '🟣 <strong>jweber</strong> merged pull request <a href="https://git.example.net/infra/ansible-roles/pulls/14">#14 Add fail2ban role</a> by <strong>mlindqvist</strong> into <code>main</code> of <a href="https://git.example.net/infra/ansible-roles">infra/ansible-roles</a>',
      );
    });

    it("an event without a template names Gitea", () => {
      const { repository, sender } = fixture("gitea-push");
      const create = { ref: "v2.0.0", ref_type: "tag", sha: "c3d4e5f6", repository, sender };
      const message = r.render(gitea, create, { headers: { "X-Gitea-Event": "create" } });
      assert.equal(
        message.body,
        "Gitea event create in infra/ansible-roles <https://git.example.net/infra/ansible-roles> by jweber",
      );
    });
  });

  describe("slack", () => {
    const slack = r.builtin("slack");

    it("mrkdwn text, attachments with pretext, title link, fields, colour and footer", () => {
      const message = r.render(slack, fixture("slack-attachments"));
      const html = message.formatted_body;
      assert.ok(
        html.startsWith(
          '<p><strong>Build #1042</strong> of <em>payments-api</em> failed on <del>main</del> <code>release/2.3</code> <a href="https://ci.example.com/job/payments-api/1042/">Open build</a> cc @U024BE7LH &amp; @here</p>',
        ),
        html,
      );
      assert.ok(html.includes("<p>Nightly pipeline report</p>"));
      assert.ok(
        html.includes(
          '🟥 <a href="https://ci.example.com/user/ci-bot">ci-bot</a> <strong><a href="https://ci.example.com/job/payments-api/1042/">payments-api #1042</a></strong>',
        ),
      );
      assert.ok(html.includes("3 tests failed in <code>InvoiceTotalsTest</code>"));
      assert.ok(html.includes("<strong>Branch</strong>: release/2.3<br />"));
      assert.ok(html.includes("<strong>Duration</strong>: 12 min 4 s<br />"));
      assert.ok(html.includes("<em>Jenkins · 2024-04-08 08:00 UTC</em>"));
      assert.ok(
        html.endsWith("<p>🟩 Coverage 81.4% (+0.3%)</p>"),
        "an attachment with only a fallback shows it",
      );
      assert.match(
        message.body,
        /^Build #1042 of payments-api failed on main release\/2\.3 Open build <https:\/\/ci\.example\.com\/job\/payments-api\/1042\/> cc @U024BE7LH & @here\n/,
      );
    });

    it("exposes username and icon_url for the caller to apply as the sender", () => {
      assert.deepEqual(r.render(slack, fixture("slack-attachments")).sender, {
        displayname: "Jenkins",
        avatar_url: "https://ci.example.com/static/jenkins-logo.png",
      });
      assert.equal(r.render(slack, { text: "hi", icon_url: "javascript:alert(1)" }).sender, undefined);
    });
  });

  describe("alertmanager", () => {
    const alertmanager = r.builtin("alertmanager");

    it("a firing group with two alerts: 🔥, labels, annotations, since, source and silence links", () => {
      const message = r.render(alertmanager, fixture("alertmanager-firing"));
      const html = message.formatted_body;
      assert.match(
        html,
        /^<p>🔥 <strong>FIRING<\/strong> HostHighCpuLoad · 2 alerts for <code>matrix-ops<\/code><\/p>/,
      );
      assert.equal(html.match(/<li>🔥 <strong>HostHighCpuLoad<\/strong>/g)?.length, 2);
      assert.ok(
        html.includes(
          "(critical) on <code>db-1.example.org:9100</code>: CPU load above 90% for 10 minutes<br />",
        ),
      );
      assert.ok(html.includes("db-1 has been at 96% CPU since the nightly vacuum started.<br />"));
      assert.ok(html.includes("since 2024-05-02 01:14 UTC"));
      assert.ok(
        html.includes(
          '<a href="https://prometheus.example.org/graph?g0.expr=node_load15+%3E+0.9&amp;g0.tab=1">source</a>',
        ),
      );
      const silence =
        /<a href="(https:\/\/alertmanager\.example\.org\/#\/silences\/new\?filter=[^"]+)">silence<\/a>/.exec(
          html,
        );
      assert.ok(silence?.[1], html);
      assert.equal(
        decodeURIComponent(new URL(silence[1].replace("/#/", "/")).searchParams.get("filter") ?? ""),
        '{alertname="HostHighCpuLoad",instance="db-1.example.org:9100",job="node",severity="critical"}',
      );
      assert.doesNotMatch(message.body, /0001/, "Go's zero endsAt is not shown");
    });

    it("a resolved group: ✅ and when it ended, no silence link", () => {
      const message = r.render(alertmanager, fixture("alertmanager-resolved"));
      assert.match(
        message.body,
        /^✅ RESOLVED DiskAlmostFull · 1 alert for matrix-ops\n• ✅ DiskAlmostFull \(warning\) on backup-2\.example\.org:9100: Less than 10% disk space left\n {2}resolved 2024-05-02 03:48 UTC · source </,
      );
      assert.doesNotMatch(message.formatted_body, /silence/);
    });
  });

  describe("grafana", () => {
    it("firing: title, per-alert summary, values and dashboard/panel/silence links", () => {
      const message = r.render(r.builtin("grafana"), fixture("grafana-firing"));
      const html = message.formatted_body;
      assert.match(
        html,
        /^<p>🔥 <strong>\[FIRING:1\] API p99 latency Checkout \(checkout-api critical\)<\/strong><\/p>/,
      );
      assert.ok(
        html.includes("<li>🔥 <strong>API p99 latency</strong> (critical): p99 latency above 800 ms<br />"),
      );
      assert.ok(html.includes("Values: <code>[ var='A' labels={service=checkout-api} value=1.42 ]"));
      assert.ok(html.includes('<a href="https://grafana.example.com/d/checkout-slo?orgId=1">dashboard</a>'));
      assert.ok(
        html.includes(
          '<a href="https://grafana.example.com/d/checkout-slo?orgId=1&amp;viewPanel=4">panel</a>',
        ),
      );
      assert.match(
        html,
        /<a href="https:\/\/grafana\.example\.com\/alerting\/silence\/new\?[^"]+">silence<\/a>/,
      );
    });

    it("without alerts, shows Grafana's message", () => {
      const message = r.render(r.builtin("grafana"), {
        status: "firing",
        title: "[FIRING:0] test",
        message: "Test notification from Grafana",
        alerts: [],
      });
      assert.equal(message.body, "🔥 [FIRING:0] test\nTest notification from Grafana");
    });
  });

  describe("generic", () => {
    const generic = r.builtin("generic");

    it("arbitrary JSON: pretty-printed in a JSON code block", () => {
      const message = r.render(generic, { build: { id: 7, ok: true }, tags: ["a", "b"] });
      assert.equal(
        message.formatted_body,
        '<p>Received webhook data:</p>\n<pre><code class="language-json">{\n  "build": {\n    "id": 7,\n    "ok": true\n  },\n  "tags": [\n    "a",\n    "b"\n  ]\n}\n</code></pre>',
      );
      assert.match(message.body, /^Received webhook data:\n\n\{\n {2}"build": \{/);
    });

    it("a text field (or message, or body) is shown as Markdown, with a title above it", () => {
      assert.equal(
        r.render(generic, { text: "Backup **done** in 4 min" }).formatted_body,
        "Backup <strong>done</strong> in 4 min",
      );
      assert.equal(
        r.render(generic, { title: "Nightly backup", message: "Finished" }).formatted_body,
        "<strong>Nightly backup</strong><br />\nFinished",
      );
      assert.equal(r.render(generic, { body: "from body" }).body, "from body");
    });

    it("a plain-text request body is shown as it is", () => {
      assert.equal(r.render(generic, "disk check: all good").body, "disk check: all good");
    });

    it("huge JSON is cut in the code block", () => {
      const payload = { items: Array.from({ length: 5000 }, (_, i) => ({ id: i, name: `item-${i}` })) };
      const message = r.render(generic, payload);
      assert.match(message.formatted_body, /…\n<\/code><\/pre>/);
      assert.ok(message.body.length < 25_000);
    });
  });

  describe("choosing a built-in", () => {
    const detect = (headers: Record<string, string>, payload: unknown) =>
      detectBuiltinTemplate(normalizeHeaders(headers), payload);

    it("by the sender's header, then the payload's shape", () => {
      assert.equal(detect({ "X-GitHub-Event": "push" }, githubExample("push")), "github");
      assert.equal(
        detect({ "X-GitHub-Event": "push", "X-Gitea-Event": "push" }, fixture("gitea-push")),
        "gitea",
      );
      assert.equal(detect({}, fixture("gitlab-pipeline")), "gitlab");
      assert.equal(detect({}, fixture("alertmanager-firing")), "alertmanager");
      assert.equal(detect({}, fixture("grafana-firing")), "grafana");
      assert.equal(detect({}, fixture("slack-attachments")), "slack");
      assert.equal(detect({}, { text: "hello" }), "generic");
      assert.equal(detect({}, "plain text"), "generic");
    });

    it("resolveTemplate: a built-in name, inline handlebars, or an error for an unknown word", () => {
      assert.deepEqual(resolveTemplate("GitHub"), { kind: "builtin", name: "github" });
      assert.deepEqual(resolveTemplate("  Deployed {{version}}  "), {
        kind: "inline",
        source: "Deployed {{version}}",
      });
      assert.throws(() => resolveTemplate("githib"), {
        name: "TemplateError",
        kind: "unknown-builtin",
        message:
          /no built-in template "githib" \(built-in: generic, slack, github, gitlab, gitea, alertmanager, grafana\)/,
      });
      assert.equal(r.resolve("alertmanager"), r.builtin("alertmanager"), "built-ins are compiled once");
    });
  });
});
