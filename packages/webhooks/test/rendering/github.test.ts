import assert from "node:assert/strict";
import type { RenderedMessage } from "../../src/rendering/index.js";
import { githubExample, renderer } from "./support.js";

/** Real payloads from @octokit/webhooks-examples, rendered the way the room sees them. */
describe("built-in github template", () => {
  const r = renderer();
  const github = r.builtin("github");
  const render = (event: string, payload: unknown): RenderedMessage =>
    r.render(github, payload, { headers: { "X-GitHub-Event": event } });

  it("push: who pushed how many commits where, with the compare link and each commit", () => {
    const payload = githubExample("push", (e) => e.commits.length > 0);
    const message = render("push", payload);
    const html = message.formatted_body;

    assert.match(html, /<strong>Codertocat<\/strong> pushed 1 commit to new branch <code>master<\/code>/);
    assert.ok(html.includes(`<a href="${payload.compare}">compare</a>`), html);
    assert.ok(
      html.includes(
        '<a href="https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246"><code>6113728</code></a> Initial commit — Codertocat',
      ),
      html,
    );
    assert.ok(
      html.includes('<a href="https://github.com/Codertocat/Hello-World">Codertocat/Hello-World</a>'),
    );
    assert.match(message.body, /^Codertocat pushed 1 commit to new branch master of Codertocat\/Hello-World/);
    assert.match(
      message.body,
      /\n• 6113728 <https:\/\/github\.com\/Codertocat\/Hello-World\/commit\/6113728f[0-9a-f]+> Initial commit — Codertocat$/,
    );
  });

  it("push of a tag, and deletion of a ref, read as such", () => {
    const tag = render(
      "push",
      githubExample("push", (e) => e.created && e.ref.startsWith("refs/tags/")),
    );
    assert.match(tag.formatted_body, /🏷️ <strong>Codertocat<\/strong> pushed tag <code>simple-tag<\/code>/);

    const deleted = render(
      "push",
      githubExample("push", (e) => e.deleted),
    );
    assert.match(deleted.body, /^🗑️ Codertocat deleted tag simple-tag in Codertocat\/Hello-World/);
  });

  it("push with many commits lists ten and counts the rest", () => {
    const payload = githubExample("push", (e) => e.commits.length > 0);
    const commit = payload.commits[0];
    payload.commits = Array.from({ length: 13 }, (_, i) => ({
      ...commit,
      id: `${String(i).padStart(2, "0")}${commit.id.slice(2)}`,
      message: `Change ${i}\n\nDetails`,
    }));
    const message = render("push", payload);
    assert.match(message.body, /pushed 13 commits/);
    assert.equal(message.body.match(/^• [0-9a-f]{7} /gm)?.length, 10);
    assert.match(message.body, /Change 9 — Codertocat\n• … and 3 more commits$/);
    assert.doesNotMatch(message.body, /Details/, "only the first line of each message");
  });

  it("pull_request opened: the title is the link text, with author and branches", () => {
    const payload = githubExample("pull_request", (e) => e.action === "opened");
    const message = render("pull_request", payload);
    assert.ok(
      message.formatted_body.includes(
        '<a href="https://github.com/Codertocat/Hello-World/pull/2">#2 Update the README with new information.</a>',
      ),
      message.formatted_body,
    );
    assert.match(message.formatted_body, /^🔀 <strong>Codertocat<\/strong> opened pull request/);
    assert.match(message.formatted_body, /\(<code>changes<\/code> → <code>master<\/code>\)/);
  });

  it("pull_request closed: merged and unmerged read differently", () => {
    const closed = githubExample("pull_request", (e) => e.action === "closed");
    assert.equal(closed.pull_request.merged, false);
    assert.match(
      render("pull_request", closed).body,
      /^🔴 Codertocat closed pull request #2 Update the README/,
    );

    // GitHub reports a merge as action "closed" with merged: true. The examples package has no
    // merged example, so the closed one is marked merged (as GitHub's payload would be).
    const merged = githubExample("pull_request", (e) => e.action === "closed");
    merged.pull_request.merged = true;
    merged.pull_request.merged_at = merged.pull_request.closed_at;
    const html = render("pull_request", merged).formatted_body;
    assert.match(
      html,
      /^🟣 <strong>Codertocat<\/strong> merged pull request <a href="https:\/\/github\.com\/Codertocat\/Hello-World\/pull\/2">#2 Update the README with new information\.<\/a>/,
    );
    assert.match(html, /into <code>master<\/code>/);
  });

  it("pull_request by someone else names the author", () => {
    const payload = githubExample("pull_request", (e) => e.action === "reopened");
    payload.sender.login = "octocat";
    assert.match(
      render("pull_request", payload).body,
      /^🔁 octocat reopened pull request #2 .* by Codertocat in Codertocat\/Hello-World/,
    );
  });

  it("issues opened", () => {
    const message = render(
      "issues",
      githubExample("issues", (e) => e.action === "opened"),
    );
    assert.equal(
      message.formatted_body,
      '🐛 <strong>Codertocat</strong> opened issue <a href="https://github.com/Codertocat/Hello-World/issues/1">#1 Spelling error in the README file</a> in <a href="https://github.com/Codertocat/Hello-World">Codertocat/Hello-World</a>',
    );
  });

  it("release published: name (or tag) linking to the release", () => {
    const payload = githubExample("release", (e) => e.action === "published");
    assert.match(
      render("release", payload).formatted_body,
      /^🚀 <strong>Codertocat<\/strong> published release <a href="https:\/\/github\.com\/Codertocat\/Hello-World\/releases\/tag\/0\.0\.1">0\.0\.1<\/a> in /,
    );
    payload.release.name = "Spring cleaning";
    assert.match(render("release", payload).body, /published release Spring cleaning <[^>]+> \(0\.0\.1\)/);
  });

  it("workflow_run completed: ✅ on success, ❌ on failure, with workflow, branch and run link", () => {
    const success = githubExample(
      "workflow_run",
      (e) => e.action === "completed" && e.workflow_run.conclusion === "success",
    );
    const ok = render("workflow_run", success);
    assert.match(
      ok.formatted_body,
      /^✅ Workflow <strong>test<\/strong> finished with <strong>success<\/strong> on <code>master<\/code>/,
    );
    assert.ok(
      ok.formatted_body.includes(
        '<a href="https://github.com/octo-org/octo-repo/actions/runs/289782451">run #163</a>',
      ),
    );

    // No failed run in the examples package: the successful one with GitHub's failure conclusion.
    success.workflow_run.conclusion = "failure";
    const failed = render("workflow_run", success);
    assert.match(failed.body, /^❌ Workflow test finished with failure on master in octo-org\/octo-repo/);
  });

  it("check_run completed: conclusion and check name", () => {
    const failure = render(
      "check_run",
      githubExample("check_run", (e) => e.action === "completed" && e.check_run.conclusion === "failure"),
    );
    assert.match(
      failure.formatted_body,
      /^❌ Check <strong>Octocoders-linter<\/strong> finished with <strong>failure<\/strong> on <code>ec26c3e<\/code>/,
    );
    const success = render(
      "check_run",
      githubExample("check_run", (e) => e.action === "completed" && e.check_run.conclusion === "success"),
    );
    assert.match(success.body, /^✅ Check Octocoders-linter finished with success/);
    assert.ok(
      success.formatted_body.includes(
        '<a href="https://github.com/Codertocat/Hello-World/runs/128620228">details</a>',
      ),
    );
  });

  it("ping confirms the hook with GitHub's zen line", () => {
    const message = render(
      "ping",
      githubExample("ping", (e) => e.repository !== undefined),
    );
    assert.match(message.body, /^🏓 GitHub webhook 109948940 is set up for Octocoders\/Hello-World/);
    assert.match(
      message.formatted_body,
      /<blockquote>\n<p>Anything added dilutes everything else\.<\/p>\n<\/blockquote>/,
    );
  });

  it("an event without a template of its own gets a short line", () => {
    const message = render("star", githubExample("star"));
    assert.match(
      message.formatted_body,
      /^GitHub event <strong>star<\/strong> \(created\) in <a href="https:\/\/github\.com\/Codertocat\/Hello-World">/,
    );
  });

  it("without the event header, the payload's shape picks the template", () => {
    const payload = githubExample("issues", (e) => e.action === "opened");
    assert.match(r.render(github, payload).body, /^🐛 Codertocat opened issue #1/);
  });
});
