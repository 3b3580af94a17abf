import assert from "node:assert/strict";
import { sanitizeMatrixHtml, toEventContent } from "../../src/rendering/index.js";
import { eventBytes, fixture, renderer } from "./support.js";

const MATRIX_EVENT_LIMIT = 65_536;

function bytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text), "utf8") - 2;
}

describe("message size", () => {
  it("a huge rendering is cut, marked, and the event stays under Matrix's limit", () => {
    const r = renderer();
    const alert = (fixture("alertmanager-firing").alerts as Record<string, unknown>[])[0];
    const alerts = Array.from({ length: 2_000 }, (_, i) => ({
      ...alert,
      labels: { ...(alert?.labels as object), instance: `node-${i}.example.org:9100` },
    }));
    const message = r.render(r.builtin("alertmanager"), { ...fixture("alertmanager-firing"), alerts });

    assert.equal(message.truncated, true);
    assert.match(message.body, /\n\n… \(truncated: \d+ bytes over the limit\)$/);
    assert.match(message.formatted_body, /<p><em>… \(truncated: \d+ bytes over the limit\)<\/em><\/p>$/);
    assert.ok(bytes(message.body) + bytes(message.formatted_body) <= r.maxBodyBytes);
    assert.ok(eventBytes(toEventContent(message)) < MATRIX_EVENT_LIMIT);
    assert.match(
      message.body,
      /^🔥 FIRING HostHighCpuLoad · 2000 alerts/,
      "the start of the message survives",
    );
  });

  it("cut HTML is well-formed: every tag the cut left open is closed again", () => {
    const r = renderer({ maxBodyBytes: 4_000 });
    const items = Array.from(
      { length: 400 },
      (_, i) => `- **item ${i}** with [a link](https://example.org/${i})`,
    );
    const message = r.render(r.compile("{{{list}}}"), { list: items.join("\n") });

    const html = message.formatted_body;
    assert.equal(sanitizeMatrixHtml(html), html, "sanitising again changes nothing");
    assert.equal(html.match(/<ul>/g)?.length, html.match(/<\/ul>/g)?.length);
    assert.equal(html.match(/<li>/g)?.length, html.match(/<\/li>/g)?.length);
    assert.ok(bytes(message.body) + bytes(html) <= 4_000);
  });

  it("cuts on a UTF-8 boundary: no broken characters", () => {
    const r = renderer({ maxBodyBytes: 3_000 });
    const message = r.render(r.compile("{{text}}"), { text: "😀é漢".repeat(2_000) });
    for (const part of [message.body, message.formatted_body]) {
      assert.equal(Buffer.from(part, "utf8").toString("utf8"), part);
      assert.doesNotMatch(part, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    }
    assert.match(message.body, /^(😀|é|漢)+\n\n… \(truncated/u);
    assert.ok(bytes(message.body) + bytes(message.formatted_body) <= 3_000);
  });

  it("a message under the limit is left alone", () => {
    const r = renderer();
    const message = r.render(r.compile("{{text}}"), { text: "x".repeat(20_000) });
    assert.equal(message.truncated, false);
    assert.equal(message.body, "x".repeat(20_000));
  });

  it("the generic fallback never throws for size, even for a multi-megabyte payload", () => {
    const r = renderer();
    const payload = { blob: 'a"b\\c\n'.repeat(400_000) };
    const { content } = r.renderWithFallback(r.builtin("generic"), payload);
    assert.ok(eventBytes(toEventContent(content)) < MATRIX_EVENT_LIMIT);
    assert.match(content.body, /^Received webhook data:/);
  });
});
