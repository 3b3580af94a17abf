import assert from "node:assert/strict";
import { TemplateError, toEventContent } from "../../src/rendering/index.js";
import { renderer } from "./support.js";

describe("Renderer", () => {
  const r = renderer();
  const show = (source: string, payload: unknown = {}) => r.render(r.compile(source), payload);

  describe("escaping", () => {
    it("{{value}} shows payload text literally: no Markdown, no HTML", () => {
      const text =
        "*not bold* _nor italic_ [link](https://example.org) # not a heading\n- not a list\n1. nor this";
      const message = show("Commit: {{message}}", { message: text });
      assert.equal(message.body, `Commit: ${text}`);
      assert.doesNotMatch(message.formatted_body, /<(em|strong|a|h1|ul|ol|li)\b/);
    });

    it("{{{value}}} and {{markdown value}} insert payload text as Markdown on purpose", () => {
      assert.equal(show("{{{text}}}", { text: "**bold**" }).formatted_body, "<strong>bold</strong>");
      assert.equal(show("{{markdown text}}", { text: "_it_" }).formatted_body, "<em>it</em>");
    });

    it("a blank line inside a value cannot end the list item it stands in", () => {
      const message = show("- {{a}}\n- {{b}}", { a: "first\n\n# injected", b: "second" });
      assert.equal(message.formatted_body, "<ul>\n<li>first<br />\n# injected</li>\n<li>second</li>\n</ul>");
    });

    it("between backticks a value is shown literally, and cannot close the code span", () => {
      assert.equal(
        show("on `{{ref}}`", { ref: "feature/my_branch-1*" }).formatted_body,
        "on <code>feature/my_branch-1*</code>",
      );
      assert.equal(
        show("`{{cmd}}` done", { cmd: "echo `id`" }).formatted_body,
        "<code>echo ˋidˋ</code> done",
      );
    });

    it("in a fenced block a value is shown literally, and cannot close the block", () => {
      const message = show("Log:\n```\n{{log}}\n```\nafter", { log: "a_b *c*\n```\n# not a heading" });
      assert.equal(
        message.formatted_body,
        "<p>Log:</p>\n<pre><code>a_b *c*\n\u200B```\n# not a heading\n</code></pre>\n<p>after</p>",
      );
    });

    it("an escaped value inside a link destination still links", () => {
      const message = show("[docs]({{url}})", { url: "https://example.org/a_b" });
      assert.equal(message.formatted_body, '<a href="https://example.org/a_b">docs</a>');
    });
  });

  describe("helpers, as the room sees them", () => {
    const cases: [template: string, payload: unknown, body: string][] = [
      ["{{truncate text 8}}", { text: "abcdefghijkl" }, "abcdefg…"],
      ["{{truncate text 8}}", { text: "short" }, "short"],
      ["{{truncate text 3}}", { text: "😀😀😀😀" }, "😀😀…"],
      ["{{truncate text 6 '...'}}", { text: "abcdefghij" }, "abc..."],
      ["{{date at}}", { at: "2024-01-15T14:03:05+01:00" }, "2024-01-15 13:03 UTC"],
      ["{{date at 'date'}} {{date at 'time'}}", { at: 1705327385 }, "2024-01-15 14:03 UTC"],
      ["{{date at 'full'}}", { at: 1705327385123 }, "2024-01-15 14:03:05 UTC"],
      ["{{date at 'iso'}}", { at: "2016-08-12 15:23:28 UTC" }, "2016-08-12T15:23:28.000Z"],
      ["[{{date at}}]", { at: "not a date" }, "[not a date]"],
      ["[{{date at}}]", { at: "0001-01-01T00:00:00Z" }, "[]"],
      ["{{#if (eq a 1)}}yes{{else}}no{{/if}}", { a: "1" }, "yes"],
      ["{{#if (ne a b)}}differ{{/if}}", { a: "x", b: "y" }, "differ"],
      ["{{#if (and a b)}}both{{else}}not both{{/if}}", { a: 1, b: [] }, "not both"],
      ["{{#if (or a b)}}one{{/if}}", { a: 0, b: "x" }, "one"],
      ["{{#if (not a)}}none{{/if}}", { a: "" }, "none"],
      ["{{#eq state 'open'}}open{{else}}other{{/eq}}", { state: "open" }, "open"],
      ["{{default name 'anonymous'}}", { name: "" }, "anonymous"],
      ["{{default name 'anonymous'}}", { name: "ana" }, "ana"],
      ["{{len items}} {{len word}} {{len map}}", { items: [1, 2, 3], word: "héllo", map: { a: 1 } }, "3 5 1"],
      ["{{join tags}} / {{join tags ' + '}}", { tags: ["a", "b"] }, "a, b / a + b"],
      ["{{lowercase s}} {{uppercase s}}", { s: "MiXed" }, "mixed MIXED"],
      ["{{first xs}} {{last xs}}", { xs: [1, 2, 3] }, "1 3"],
      ["{{#each (last xs 2)}}{{this}};{{/each}}", { xs: [1, 2, 3] }, "2;3;"],
      ["{{short_sha sha}}", { sha: "6113728f27ae82c7b1a177c8d03f9e96e0adf246" }, "6113728"],
      [
        "{{pluralize n 'commit'}}, {{pluralize 1 'commit'}}, {{pluralize xs 'fix' 'fixes'}}",
        { n: 3, xs: [1, 2] },
        "3 commits, 1 commit, 2 fixes",
      ],
      ["{{first_line msg}}", { msg: "Title\n\nBody" }, "Title"],
      ["{{ref_name r}} is a {{ref_type r}}", { r: "refs/tags/v1.2" }, "v1.2 is a tag"],
      ["{{replace a '_' ' '}}", { a: "review_requested" }, "review requested"],
      ["{{concat a '-' b}}", { a: "x", b: 2 }, "x-2"],
      ["{{add a 2}} {{sub a 2}} {{#if (gt a 2)}}gt{{/if}}{{#if (lt a 2)}}lt{{/if}}", { a: 5 }, "7 3 gt"],
      ["{{duration s}}", { s: 3725 }, "1h 2m 5s"],
      [
        "{{status_emoji a}}{{status_emoji b}}{{status_emoji c}}",
        { a: "success", b: "failed", c: "weird" },
        "✅❌❔",
      ],
      ["{{typeof a}} {{typeof b}} {{typeof c}}", { a: [], b: null, c: "s" }, "array null string"],
      ["{{code x}}", { x: "a `tick` b" }, "a `tick` b"],
    ];
    for (const [template, payload, body] of cases) {
      it(`${template} → ${body}`, () => {
        assert.equal(show(template, payload).body, body);
      });
    }

    it("json: pretty JSON, with an optional indent", () => {
      const message = show("{{codeblock (json data 4) 'json'}}", { data: { a: [1] } });
      assert.equal(message.body, '{\n    "a": [\n        1\n    ]\n}');
      assert.match(message.formatted_body, /^<pre><code class="language-json">/);
    });

    it("link: a Markdown link for http(s)/mailto URLs, plain text for anything else", () => {
      assert.equal(
        show("{{link title url}}", { title: "Build *42*", url: "https://ci.example.org/42" }).formatted_body,
        '<a href="https://ci.example.org/42">Build *42*</a>',
      );
      assert.equal(
        show("{{link title url}}", { title: "x", url: "javascript:alert(1)" }).formatted_body,
        "x",
      );
      assert.equal(show("{{link title url}}", { title: "x", url: "/relative" }).formatted_body, "x");
      assert.equal(
        show("{{link '' url}}", { url: "https://example.org/" }).formatted_body,
        '<a href="https://example.org/">https://example.org/</a>',
      );
    });

    it("code: an inline code span that survives backticks in the value", () => {
      assert.equal(show("{{code x}}", { x: "a `tick` b" }).formatted_body, "<code>a `tick` b</code>");
    });

    it("a field named like a helper is read when the helper gets no arguments", () => {
      assert.equal(show("{{date}} / {{this.link}}", { date: "today", link: "here" }).body, "today / here");
    });
  });

  describe("messages", () => {
    it("is an m.notice by default; the context can ask for m.text", () => {
      const template = r.compile("hi");
      assert.equal(r.render(template, {}).msgtype, "m.notice");
      assert.equal(r.render(template, {}, { msgtype: "m.text" }).msgtype, "m.text");
    });

    it("a template that renders nothing says so, so the caller can skip the event", () => {
      const template = r.compile('{{#if (eq action "opened")}}Opened{{/if}}\n');
      assert.equal(r.render(template, { action: "labeled" }).empty, true);
      assert.equal(r.render(template, { action: "opened" }).empty, false);
    });

    it("request headers are available as @headers, without credentials", () => {
      const template = r.compile(
        "{{@headers.[x-github-event]}}/{{@headers.[x-gitlab-token]}}/{{@headers.authorization}}/{{@hook.name}}",
      );
      const message = r.render(
        template,
        {},
        {
          headers: { "X-GitHub-Event": "push", "X-Gitlab-Token": "s3cret", Authorization: "Bearer t" },
          hook: { name: "ci" },
        },
      );
      assert.equal(message.body, "push///ci");
    });
  });

  describe("mentions", () => {
    it("{{mention}} renders a pill and lists the user in m.mentions", () => {
      const message = show('Deploy by {{mention "@alice:example.org"}} and {{mention user "Bob"}}', {
        user: "@bob:example.org",
      });
      assert.equal(
        message.formatted_body,
        'Deploy by <a href="https://matrix.to/#/@alice:example.org">@alice:example.org</a> and <a href="https://matrix.to/#/@bob:example.org">Bob</a>',
      );
      assert.equal(message.body, "Deploy by @alice:example.org and Bob");
      assert.deepEqual(message.mentions, { user_ids: ["@alice:example.org", "@bob:example.org"] });
      assert.deepEqual(toEventContent(message)["m.mentions"], {
        user_ids: ["@alice:example.org", "@bob:example.org"],
      });
    });

    it("something that is not a user id is shown as text and mentions no one", () => {
      const message = show("{{mention who}}", { who: "@room" });
      assert.equal(message.body, "@room");
      assert.deepEqual(message.mentions.user_ids, []);
      assert.deepEqual(
        toEventContent(message)["m.mentions"],
        {},
        "an empty m.mentions: @room in the body pings no one",
      );
    });

    it("renders do not share mentions", () => {
      const template = r.compile("{{mention who}}");
      r.render(template, { who: "@alice:example.org" });
      assert.deepEqual(r.render(template, { who: "@bob:example.org" }).mentions.user_ids, [
        "@bob:example.org",
      ]);
    });
  });

  describe("template errors", () => {
    it("a syntax error names the problem and the line", () => {
      assert.throws(
        () => r.compile("line one\n{{#if ready}}\nready\n"),
        (error: unknown) => {
          assert.ok(error instanceof TemplateError);
          assert.equal(error.kind, "syntax");
          assert.equal(error.line, 4);
          assert.match(error.message, /^line 4: a block opened with \{\{#…\}\} is never closed/);
          return true;
        },
      );
      assert.throws(() => r.compile("{{#each items}}\n{{/if}}"), {
        kind: "syntax",
        line: 1,
        message: /\{\{#each\}\} is closed by \{\{\/if\}\}/,
      });
    });

    it("unknown helpers, partials, log and oversized templates are refused", () => {
      assert.throws(() => r.compile("ok\n{{shout name}}"), {
        kind: "unknown-helper",
        line: 2,
        message: /unknown helper "shout"/,
      });
      assert.throws(() => r.compile("{{log 'x'}}"), { kind: "unknown-helper" });
      assert.throws(() => r.compile("a\n{{> header}}"), {
        kind: "unsupported",
        line: 2,
        message: /partials/,
      });
      assert.throws(() => r.compile('{{#*inline "x"}}y{{/inline}}'), { kind: "unsupported" });
      assert.throws(() => r.compile("x".repeat(20_000)), { kind: "too-large" });
      assert.throws(() => r.compile("   "), { kind: "syntax", message: /empty/ });
    });

    it("a runtime error is a TemplateError from render()", () => {
      assert.throws(() => r.render(r.compile("{{#each}}x{{/each}}"), {}), {
        name: "TemplateError",
        kind: "runtime",
        message: /Must pass iterator to #each/,
      });
    });

    it("renderWithFallback: a template failing at run time is replaced by the generic rendering, error named", () => {
      const result = r.renderWithFallback(r.compile("{{#if}}x{{/if}}"), { text: "Deploy finished" });
      assert.equal(result.content.body, "Deploy finished");
      assert.equal(result.template, "generic");
      assert.equal(result.error?.kind, "runtime");
      assert.match(result.error?.message ?? "", /#if requires exactly one argument/);
    });

    it("renderWithFallback: a template that does not compile falls back too, never dropping the webhook", () => {
      const result = r.renderWithFallback("Status: {{#if ok}}fine", { status: "ok" });
      assert.match(
        result.content.formatted_body,
        /^<p>Received webhook data:<\/p>\n<pre><code class="language-json">\{\n {2}"status": "ok"\n\}/,
      );
      assert.equal(result.error?.kind, "syntax");
      assert.match(result.error?.message ?? "", /^line 1: a block opened/);

      const unknown = r.renderWithFallback("nosuchtemplate", { text: "hi" });
      assert.equal(unknown.content.body, "hi");
      assert.equal(unknown.error?.kind, "unknown-builtin");
    });

    it("renderWithFallback: a working template renders without an error", () => {
      const result = r.renderWithFallback("Deployed {{version}}", { version: "1.2" });
      assert.deepEqual(
        [result.content.body, result.error, result.template],
        ["Deployed 1.2", undefined, "inline"],
      );
    });
  });
});
