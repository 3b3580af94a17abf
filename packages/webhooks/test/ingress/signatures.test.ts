import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { SignatureError } from "../../src/ingress/errors.js";
import type { HeaderBag } from "../../src/ingress/headers.js";
import { type HookSignatureConfig, verifyWebhookSignature } from "../../src/ingress/signatures.js";
import { expectWebhookError } from "./helpers.js";

const SECRET = "It's a Secret to Everybody";
const BODY = Buffer.from("Hello, World!");
/** The worked example from GitHub's "Validating webhook deliveries" documentation. */
const GITHUB_DOCS_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

function hmacHex(secret: string, body: Buffer): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

function expectForbidden(
  config: HookSignatureConfig,
  headers: HeaderBag,
  header: string,
  problem: SignatureError["problem"],
  body = BODY,
): SignatureError {
  const err = expectWebhookError(() => verifyWebhookSignature(config, headers, body), 403, "M_FORBIDDEN");
  assert.ok(err instanceof SignatureError);
  assert.equal(err.header, header);
  assert.equal(err.problem, problem);
  assert.ok(err.message.startsWith(`${header} header `), err.message);
  assert.ok(!err.message.includes(SECRET), err.message);
  for (const value of Object.values(headers)) {
    for (const v of [value ?? []].flat()) if (v.length > 8) assert.ok(!err.message.includes(v), err.message);
  }
  return err;
}

describe("verifyWebhookSignature", () => {
  it("needs nothing from a hook without a signature setting", () => {
    assert.equal(verifyWebhookSignature(undefined, {}, BODY), undefined);
  });

  it("fails closed on a scheme it does not know, instead of skipping the check", () => {
    const unknown = { scheme: "GitHub", secret: SECRET } as unknown as HookSignatureConfig;
    assert.throws(() => verifyWebhookSignature(unknown, {}, BODY), /Unknown signature scheme "GitHub"/);
  });

  it("refuses an empty secret as a configuration error", () => {
    assert.throws(() => verifyWebhookSignature({ scheme: "github", secret: "" }, {}, BODY), RangeError);
  });

  describe("GitHub X-Hub-Signature-256", () => {
    const config: HookSignatureConfig = { scheme: "github", secret: SECRET };

    it("accepts GitHub's documented example", () => {
      assert.deepEqual(
        verifyWebhookSignature(config, { "x-hub-signature-256": GITHUB_DOCS_SIGNATURE }, BODY),
        { scheme: "github", headers: ["X-Hub-Signature-256"] },
      );
    });

    it("accepts an independently computed HMAC of any body, in either hex case", () => {
      const body = Buffer.from(JSON.stringify({ action: "opened", number: 7, title: "é ✓" }));
      const hex = hmacHex("another secret", body);
      const cfg: HookSignatureConfig = { scheme: "github", secret: "another secret" };
      assert.ok(verifyWebhookSignature(cfg, { "x-hub-signature-256": `sha256=${hex}` }, body));
      assert.ok(verifyWebhookSignature(cfg, { "x-hub-signature-256": `SHA256=${hex.toUpperCase()}` }, body));
    });

    it("refuses a signature made with another secret", () => {
      const headers = { "x-hub-signature-256": `sha256=${hmacHex("wrong secret", BODY)}` };
      expectForbidden(config, headers, "X-Hub-Signature-256", "mismatch");
    });

    it("refuses a tampered body", () => {
      const headers = { "x-hub-signature-256": GITHUB_DOCS_SIGNATURE };
      expectForbidden(config, headers, "X-Hub-Signature-256", "mismatch", Buffer.from("Hello, World?"));
    });

    it("refuses a missing header", () => {
      const err = expectForbidden(
        config,
        { "x-gitea-signature": hmacHex(SECRET, BODY) },
        "X-Hub-Signature-256",
        "missing",
      );
      assert.equal(err.message, "X-Hub-Signature-256 header is missing");
    });

    it("refuses malformed values without echoing them", () => {
      const hex = hmacHex(SECRET, BODY);
      for (const value of [
        hex,
        `sha1=${hex}`,
        `sha256=${hex.slice(2)}`,
        `sha256=${hex}00`,
        `sha256=${"zz".repeat(32)}`,
      ]) {
        expectForbidden(config, { "x-hub-signature-256": value }, "X-Hub-Signature-256", "malformed");
      }
    });

    it("refuses a header sent twice with different values", () => {
      const headers = { "x-hub-signature-256": [GITHUB_DOCS_SIGNATURE, `sha256=${"0".repeat(64)}`] };
      expectForbidden(config, headers, "X-Hub-Signature-256", "ambiguous");
    });
  });

  describe("Gitea / Forgejo", () => {
    const gitea: HookSignatureConfig = { scheme: "gitea", secret: SECRET };
    const forgejo: HookSignatureConfig = { scheme: "forgejo", secret: SECRET };
    const good = hmacHex(SECRET, BODY);

    it("accepts X-Gitea-Signature", () => {
      assert.deepEqual(verifyWebhookSignature(gitea, { "x-gitea-signature": good }, BODY), {
        scheme: "gitea",
        headers: ["X-Gitea-Signature"],
      });
    });

    it("accepts X-Forgejo-Signature alone, under either scheme name", () => {
      for (const config of [gitea, forgejo]) {
        assert.deepEqual(verifyWebhookSignature(config, { "x-forgejo-signature": good }, BODY)?.headers, [
          "X-Forgejo-Signature",
        ]);
      }
    });

    it("checks both headers when Forgejo sends both", () => {
      assert.deepEqual(
        verifyWebhookSignature(forgejo, { "x-gitea-signature": good, "x-forgejo-signature": good }, BODY)
          ?.headers,
        ["X-Gitea-Signature", "X-Forgejo-Signature"],
      );
      const wrong = hmacHex("wrong", BODY);
      expectForbidden(
        forgejo,
        { "x-gitea-signature": good, "x-forgejo-signature": wrong },
        "X-Forgejo-Signature",
        "mismatch",
      );
      expectForbidden(
        forgejo,
        { "x-gitea-signature": wrong, "x-forgejo-signature": good },
        "X-Gitea-Signature",
        "mismatch",
      );
    });

    it("refuses a wrong signature or a tampered body", () => {
      expectForbidden(
        gitea,
        { "x-gitea-signature": hmacHex("wrong", BODY) },
        "X-Gitea-Signature",
        "mismatch",
      );
      expectForbidden(
        gitea,
        { "x-gitea-signature": good },
        "X-Gitea-Signature",
        "mismatch",
        Buffer.from("other"),
      );
    });

    it("refuses a missing signature, naming both accepted headers", () => {
      const err = expectForbidden(
        gitea,
        { "x-hub-signature-256": `sha256=${good}` },
        "X-Gitea-Signature",
        "missing",
      );
      assert.match(err.message, /X-Forgejo-Signature/);
      expectForbidden(forgejo, {}, "X-Forgejo-Signature", "missing");
    });

    it("refuses a GitHub-style prefixed value as malformed", () => {
      expectForbidden(gitea, { "x-gitea-signature": `sha256=${good}` }, "X-Gitea-Signature", "malformed");
    });
  });

  describe("GitLab X-Gitlab-Token", () => {
    const config: HookSignatureConfig = { scheme: "gitlab", secret: "glpat-like-token-123" };

    it("accepts the configured token", () => {
      assert.deepEqual(verifyWebhookSignature(config, { "x-gitlab-token": "glpat-like-token-123" }, BODY), {
        scheme: "gitlab",
        headers: ["X-Gitlab-Token"],
      });
    });

    it("refuses a wrong token of any length", () => {
      for (const token of [
        "glpat-like-token-124",
        "glpat-like-token-12",
        "glpat-like-token-1234",
        "completely-different",
      ]) {
        const err = expectForbidden(config, { "x-gitlab-token": token }, "X-Gitlab-Token", "mismatch");
        assert.ok(!err.message.includes(token));
      }
    });

    it("refuses a missing token", () => {
      expectForbidden(config, {}, "X-Gitlab-Token", "missing");
    });
  });
});
