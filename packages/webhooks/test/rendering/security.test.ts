import assert from "node:assert/strict";
import { sanitizeMatrixHtml } from "../../src/rendering/index.js";
import { renderer } from "./support.js";

const SCRIPT = "<script>alert(1)</script>";
const IMG = "<img src=x onerror=alert(1)>";
const JS_URL = "javascript:alert(1)";

/** No tag that runs code, no event-handler attribute, no javascript: URL, no image from outside. */
function assertInert(html: string): void {
  assert.doesNotMatch(html, /<script/i, html);
  assert.doesNotMatch(html, /<[^>]*\son\w+\s*=/i, html);
  assert.doesNotMatch(html, /(href|src)\s*=\s*["']?\s*javascript:/i, html);
  assert.doesNotMatch(html, /<img\b(?![^>]*src="mxc:\/\/)/i, html);
}

describe("hostile payloads", () => {
  const r = renderer();
  const hostile = {
    title: `${SCRIPT} ${IMG}`,
    url: JS_URL,
    text: `Hi ${SCRIPT} ${IMG} [click](${JS_URL}) ![pic](${JS_URL}) <${JS_URL}>`,
    slack: `<${JS_URL}|click me> ${SCRIPT}`,
  };

  const templates: [name: string, source: string][] = [
    ["escaped interpolation", "{{title}} {{text}}"],
    ["raw interpolation", "{{{title}}} {{{text}}}"],
    ["markdown helper", "{{markdown text}}"],
    ["link helper", "{{link title url}}"],
    ["hand-written link", "[{{title}}]({{url}}) [x]({{{url}}})"],
    ["slack helper", "{{slack_mrkdwn slack}}"],
    ["code helpers", "{{code title}}\n{{codeblock text 'html\" onerror=\"x'}}"],
  ];
  for (const [name, source] of templates) {
    it(`${name}: nothing reaches formatted_body as active HTML`, () => {
      assertInert(r.render(r.compile(source), hostile).formatted_body);
    });
  }

  it("script and img tags show up as text, escaped", () => {
    const message = r.render(r.compile("{{title}}"), hostile);
    assert.equal(
      message.formatted_body,
      "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;",
    );
    assert.equal(message.body, `${SCRIPT} ${IMG}`);
  });

  it("the built-ins are inert with hostile values in every field", () => {
    const payload = {
      text: hostile.text,
      message: hostile.text,
      attachments: [
        { title: SCRIPT, title_link: JS_URL, text: hostile.slack, fields: [{ title: IMG, value: SCRIPT }] },
      ],
      repository: { full_name: SCRIPT, html_url: JS_URL },
      sender: { login: IMG },
      pull_request: { title: SCRIPT, html_url: JS_URL, user: { login: IMG }, base: { ref: SCRIPT } },
      action: "opened",
      status: "firing",
      alerts: [
        {
          status: "firing",
          labels: { alertname: SCRIPT },
          annotations: { description: IMG },
          generatorURL: JS_URL,
        },
      ],
      externalURL: JS_URL,
    };
    for (const name of ["generic", "slack", "github", "gitea", "alertmanager", "grafana"]) {
      const headers = { "X-GitHub-Event": "pull_request", "X-Gitea-Event": "pull_request" };
      assertInert(r.render(r.builtin(name), payload, { headers }).formatted_body);
    }
  });

  it("payload text is never compiled: handlebars in a value stays text", () => {
    const message = r.render(r.compile("{{text}} {{{text}}}"), { text: "{{constructor.constructor}}" });
    assert.equal(message.body, "{{constructor.constructor}} {{constructor.constructor}}");
  });

  it("prototype access yields nothing", () => {
    const template = r.compile(
      "[{{constructor.constructor}}][{{__proto__}}][{{lookup this 'constructor'}}][{{#with __proto__}}{{toString}}{{/with}}][{{constructor.name}}][{{text.constructor}}]",
    );
    assert.equal(r.render(template, { text: "x" }).body, "[][][][][][]");
    // JSON.parse makes "__proto__" an own property: it is plain data, not the prototype.
    const own = JSON.parse('{"__proto__": {"polluted": "data"}}');
    assert.equal(r.render(r.compile("{{__proto__.polluted}} {{polluted}}"), own).body, "data");
  });

  describe("sanitizeMatrixHtml", () => {
    it("keeps Matrix's tags and attributes and drops the rest", () => {
      assert.equal(
        sanitizeMatrixHtml(
          '<font color="#ff0000" data-mx-color="#ff0000" style="x">red</font><span data-mx-spoiler="why" class="c">s</span><code class="language-js evil">c</code><ol start="3" type="a"><li>x</li></ol>',
        ),
        '<font color="#ff0000" data-mx-color="#ff0000">red</font><span data-mx-spoiler="why">s</span><code class="language-js">c</code><ol start="3"><li>x</li></ol>',
      );
    });

    it("links only to allowed schemes; images only from mxc://, others become links", () => {
      assert.equal(
        sanitizeMatrixHtml(
          '<a href="javascript:alert(1)">a</a><a href="magnet:?xt=urn:btih:abc">m</a><img src="mxc://example.org/abc" alt="m"><img src="https://example.org/p.png" alt="pic"><iframe src="https://example.org"></iframe><script>alert(1)</script>',
        ),
        '<a>a</a><a href="magnet:?xt=urn:btih:abc">m</a><img src="mxc://example.org/abc" alt="m" /><a href="https://example.org/p.png">pic</a>',
      );
    });
  });
});
