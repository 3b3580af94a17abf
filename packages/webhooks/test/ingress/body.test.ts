import assert from "node:assert/strict";
import { parseWebhookBody } from "../../src/ingress/body.js";
import { expectWebhookError } from "./helpers.js";

function parse(contentType: string | undefined, body: string | Buffer) {
  return parseWebhookBody({ contentType, raw: typeof body === "string" ? Buffer.from(body, "utf8") : body });
}

const UNSUPPORTED = "TRESTLE_UNSUPPORTED_MEDIA_TYPE";
const BAD_ENCODING = "TRESTLE_BAD_ENCODING";

describe("parseWebhookBody", () => {
  describe("JSON", () => {
    const body = '{"text":"deploy ok","n":3,"tags":["a","b"]}';
    const expected = { text: "deploy ok", n: 3, tags: ["a", "b"] };

    for (const contentType of [
      "application/json",
      "application/json; charset=utf-8",
      'Application/JSON ; Charset="UTF-8"',
      "application/vnd.github+json",
      "application/cloudevents+json; charset=utf-8",
      "text/json",
    ]) {
      it(`parses ${contentType}`, () => {
        assert.deepEqual(parse(contentType, body), {
          kind: "json",
          payload: expected,
          rawText: body,
          fromSlackForm: false,
        });
      });
    }

    it("accepts any JSON value at the top level", () => {
      assert.deepEqual(parse("application/json", "[1,2]").payload, [1, 2]);
      assert.equal(parse("application/json", '"just a string"').payload, "just a string");
      assert.equal(parse("application/json", "null").payload, null);
    });

    it("drops a UTF-8 byte order mark", () => {
      const raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]);
      assert.deepEqual(parse("application/json", raw).payload, { a: 1 });
    });

    it("decodes a declared UTF-16 charset", () => {
      const raw = Buffer.from('{"text":"héllo ✓"}', "utf16le");
      assert.deepEqual(parse("application/json; charset=utf-16le", raw).payload, { text: "héllo ✓" });
    });

    it("refuses invalid JSON with 400 M_NOT_JSON naming the position", () => {
      const err = expectWebhookError(() => parse("application/json", '{"a": }'), 400, "M_NOT_JSON");
      assert.equal(
        err.message,
        "Request body is not valid JSON: unexpected character where a value was expected at line 1, column 7 (position 6)",
      );
    });

    it("counts lines and columns in a multi-line body", () => {
      const err = expectWebhookError(
        () => parse("application/json", '{\n  "a": 1,\n  "b": 2\n  "c": 3\n}'),
        400,
        "M_NOT_JSON",
      );
      assert.match(err.message, /expected ',' or '}' at line 4, column 3 \(position 23\)$/);
    });

    it("reports a body cut short", () => {
      const err = expectWebhookError(() => parse("application/json", '{"a": [1, 2'), 400, "M_NOT_JSON");
      assert.match(err.message, /unexpected end of input at line 1, column 12 \(position 11\)$/);
    });

    it("never echoes the body in the error", () => {
      const secretish = "hunter2-s3cr3t-token";
      for (const body of [
        `{"token": ${secretish}}`,
        `{"token": "${secretish}" "x": 1}`,
        `${secretish}`,
        `{"token": "${secretish}"} trailing`,
        `{"token": "${secretish}\u0001"}`,
      ]) {
        const err = expectWebhookError(() => parse("application/json", body), 400, "M_NOT_JSON");
        assert.ok(!err.message.includes("hunter2"), err.message);
        assert.ok(!err.message.includes("token"), err.message);
      }
    });

    it("refuses an empty JSON body", () => {
      const err = expectWebhookError(() => parse("application/json", " \n"), 400, "M_NOT_JSON");
      assert.match(err.message, /empty/);
    });
  });

  describe("forms", () => {
    const FORM = "application/x-www-form-urlencoded";

    it("returns the fields, decoding + and percent escapes", () => {
      assert.deepEqual(parse(FORM, "a=1&b=two+words&c=%C3%A9t%C3%A9&empty=&flag"), {
        kind: "form",
        payload: { a: "1", b: "two words", c: "été", empty: "", flag: "" },
        rawText: "a=1&b=two+words&c=%C3%A9t%C3%A9&empty=&flag",
      });
    });

    it("keeps every value of a repeated field, in order", () => {
      assert.deepEqual(parse(`${FORM}; charset=utf-8`, "tag=a&x=1&tag=b&tag=c").payload, {
        tag: ["a", "b", "c"],
        x: "1",
      });
    });

    it("reads an empty body as no fields", () => {
      assert.deepEqual(parse(FORM, "").payload, {});
      assert.deepEqual(parse(FORM, "&&").payload, {});
    });

    it("leaves a % that starts no escape as it is", () => {
      assert.deepEqual(parse(FORM, "p=100%&q=%zz%4").payload, { p: "100%", q: "%zz%4" });
    });

    it("makes __proto__ an ordinary field without touching any prototype", () => {
      const { payload } = parse(FORM, "__proto__=x&constructor=y");
      assert.equal(Object.getPrototypeOf(payload), Object.prototype);
      assert.deepEqual(Object.keys(payload as object), ["__proto__", "constructor"]);
      assert.equal(Object.getOwnPropertyDescriptor(payload, "__proto__")?.value, "x");
      assert.equal(({} as Record<string, unknown>).x, undefined);
    });

    it("decodes escapes in a declared charset", () => {
      assert.deepEqual(parse(`${FORM}; charset=iso-8859-1`, "name=Ren%E9").payload, { name: "René" });
    });

    it("refuses percent-escapes that are not valid UTF-8 with 400, naming the field but not its value", () => {
      const err = expectWebhookError(() => parse(FORM, "ok=1&secret=abc%FFdef"), 400, BAD_ENCODING);
      assert.equal(err.message, "Form field 2 is not valid utf-8");
    });

    it("unwraps Slack's payload=<json> form", () => {
      const slack = { text: "Hello *world*", username: "ci", attachments: [{ color: "good" }] };
      assert.deepEqual(parse(FORM, `payload=${encodeURIComponent(JSON.stringify(slack))}`), {
        kind: "json",
        payload: slack,
        rawText: `payload=${encodeURIComponent(JSON.stringify(slack))}`,
        fromSlackForm: true,
      });
    });

    it("refuses a Slack payload that is not JSON with 400 M_NOT_JSON", () => {
      const err = expectWebhookError(() => parse(FORM, "payload=%7B%22text%22%3A"), 400, "M_NOT_JSON");
      assert.match(err.message, /^Form field "payload" is not valid JSON: unexpected end of input/);
    });

    it("treats payload as an ordinary field when other fields come with it", () => {
      assert.deepEqual(parse(FORM, "payload=not+json&channel=x").payload, {
        payload: "not json",
        channel: "x",
      });
    });

    it("refuses forms in UTF-16", () => {
      expectWebhookError(
        () => parse(`${FORM}; charset=utf-16le`, Buffer.from("a=1", "utf16le")),
        415,
        UNSUPPORTED,
      );
    });
  });

  describe("text", () => {
    it("wraps text/plain as { text }", () => {
      assert.deepEqual(parse("text/plain", "Build #12 failed\nsee logs"), {
        kind: "text",
        payload: { text: "Build #12 failed\nsee logs" },
        rawText: "Build #12 failed\nsee logs",
      });
    });

    it("honours the charset parameter", () => {
      assert.deepEqual(parse("text/plain; charset=utf-8", "✓ done").payload, { text: "✓ done" });
      assert.deepEqual(
        parse("text/plain; charset=ISO-8859-1", Buffer.from([0x63, 0x61, 0x66, 0xe9])).payload,
        {
          text: "café",
        },
      );
    });

    it("treats other text/* types as text", () => {
      assert.deepEqual(parse("text/markdown", "**hi**").payload, { text: "**hi**" });
    });
  });

  describe("without a Content-Type", () => {
    for (const contentType of [undefined, "", "  "]) {
      it(`parses an object or array as JSON (header ${JSON.stringify(contentType)})`, () => {
        assert.deepEqual(parse(contentType, ' {"a":1}'), {
          kind: "json",
          payload: { a: 1 },
          rawText: ' {"a":1}',
          fromSlackForm: false,
        });
        assert.deepEqual(parse(contentType, "[1]").payload, [1]);
      });
    }

    it("falls back to text for anything else", () => {
      for (const body of ["hello", "{not json", "[1,", "42", "true", '"quoted"', ""]) {
        assert.deepEqual(parse(undefined, body), { kind: "text", payload: { text: body }, rawText: body });
      }
    });
  });

  describe("unsupported media types", () => {
    for (const contentType of [
      "application/xml",
      "text/xml; charset=utf-8",
      "application/atom+xml",
      "multipart/form-data; boundary=----x",
      "application/octet-stream",
      "image/png",
    ]) {
      it(`refuses ${contentType} with 415`, () => {
        const err = expectWebhookError(() => parse(contentType, "<a/>"), 415, UNSUPPORTED);
        assert.match(err.message, /send JSON, a form or plain text$/);
      });
    }

    it("refuses a Content-Type that is not a media type", () => {
      const err = expectWebhookError(() => parse("json", "{}"), 415, UNSUPPORTED);
      assert.equal(err.message, "Content-Type is not a valid media type");
    });

    it("refuses an unknown charset with 415", () => {
      const err = expectWebhookError(() => parse("text/plain; charset=klingon-8", "x"), 415, UNSUPPORTED);
      assert.equal(err.message, "The charset klingon-8 is not supported");
    });
  });

  describe("invalid UTF-8", () => {
    const cases: [string, number[]][] = [
      ["a stray continuation byte", [0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0x80, 0x22, 0x7d]],
      ["an invalid byte", [0x68, 0xff, 0x69]],
      ["an overlong encoding", [0xc0, 0xaf]],
      ["an encoded surrogate", [0xed, 0xa0, 0x80]],
      ["a truncated sequence", [0x61, 0xe2, 0x9c]],
    ];
    for (const [what, bytes] of cases) {
      it(`refuses ${what} with 400 whatever the content type`, () => {
        for (const contentType of [
          "application/json",
          "text/plain",
          "application/x-www-form-urlencoded",
          undefined,
        ]) {
          const err = expectWebhookError(() => parse(contentType, Buffer.from(bytes)), 400, BAD_ENCODING);
          assert.equal(err.message, "Request body is not valid utf-8");
        }
      });
    }
  });
});
