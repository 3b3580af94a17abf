import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import {
  generateHookId,
  generateHookSecret,
  hashSecret,
  redactWebhookUrl,
  verifySecret,
} from "../../src/hooks/secrets.js";

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Share of 1 bits over all the bytes; ~0.5 for random data. */
function oneBitShare(samples: Buffer[]): number {
  let ones = 0;
  let bits = 0;
  for (const sample of samples) {
    for (const byte of sample) {
      for (let b = byte; b > 0; b >>= 1) ones += b & 1;
      bits += 8;
    }
  }
  return ones / bits;
}

describe("hook secrets", () => {
  /** 2000 samples: base64url of `bytes` random bytes, all distinct, with about half their bits set. */
  function assertRandomTokens(generate: () => string, bytes: number, chars: number, tolerance: number): void {
    const tokens = Array.from({ length: 2000 }, generate);
    for (const token of tokens) {
      assert.match(token, BASE64URL);
      assert.equal(token.length, chars);
      assert.equal(Buffer.from(token, "base64url").length, bytes);
    }
    assert.equal(new Set(tokens).size, tokens.length);
    const share = oneBitShare(tokens.map((t) => Buffer.from(t, "base64url")));
    assert.ok(Math.abs(share - 0.5) < tolerance, `share of one bits ${share}`);
  }

  it("generateHookSecret gives 32 random bytes in base64url, 43 characters", () => {
    // 512,000 bits: a fair source lands within ±0.005 of a half with overwhelming probability.
    assertRandomTokens(generateHookSecret, 32, 43, 0.005);
  });

  it("generateHookId gives 12 random bytes in base64url, 16 characters", () => {
    assertRandomTokens(generateHookId, 12, 16, 0.01);
  });

  describe("hashSecret / verifySecret", () => {
    const secret = generateHookSecret();

    it("stores a salted SHA-256 that is not the secret", () => {
      const stored = hashSecret(secret);
      assert.notEqual(stored, secret);
      assert.ok(!stored.includes(secret));
      const [scheme, salt, digest] = stored.split("$");
      assert.equal(scheme, "sha256");
      const expected = createHash("sha256")
        .update(Buffer.from(salt!, "base64url"))
        .update(secret)
        .digest("base64url");
      assert.equal(digest, expected);
    });

    it("salts every hash differently", () => {
      assert.notEqual(hashSecret(secret), hashSecret(secret));
    });

    it("verifies the right secret and refuses any other", () => {
      const stored = hashSecret(secret);
      assert.equal(verifySecret(secret, stored), true);
      const lastFlipped = secret.slice(0, -1) + (secret.endsWith("A") ? "B" : "A");
      for (const wrong of [lastFlipped, generateHookSecret(), "", secret.slice(1), `${secret}x`]) {
        assert.equal(verifySecret(wrong, stored), false, wrong);
      }
    });

    it("keys the hash with a pepper when one is configured", () => {
      const pepper = "server-side-pepper";
      const stored = hashSecret(secret, { pepper });
      const [scheme, salt, digest] = stored.split("$");
      assert.equal(scheme, "hmac-sha256");
      const expected = createHmac("sha256", pepper)
        .update(Buffer.from(salt!, "base64url"))
        .update(secret)
        .digest("base64url");
      assert.equal(digest, expected);
      assert.equal(verifySecret(secret, stored, { pepper }), true);
      assert.equal(verifySecret(secret, stored, { pepper: "other pepper" }), false);
      assert.throws(() => verifySecret(secret, stored), /pepper/);
      // Hashes from before the pepper was configured keep working.
      assert.equal(verifySecret(secret, hashSecret(secret), { pepper }), true);
    });

    it("throws on a malformed stored hash without naming the secret", () => {
      const stored = hashSecret(secret);
      const [, salt, digest] = stored.split("$");
      for (const bad of [
        "",
        secret,
        `md5$${salt}$${digest}`,
        `sha256$${salt}`,
        `sha256$x$${digest}`,
        `${stored}$x`,
      ]) {
        assert.throws(
          () => verifySecret(secret, bad),
          (err: Error) => /malformed/.test(err.message) && !err.message.includes(secret),
        );
      }
    });
  });

  describe("redactWebhookUrl", () => {
    const id = "AbCdEfGhIjKlMnOp";
    const secret = generateHookSecret();

    it("keeps the hook id and hides the secret", () => {
      assert.equal(redactWebhookUrl(`/webhooks/v1/${id}/${secret}`), `/webhooks/v1/${id}/<redacted>`);
      assert.equal(
        redactWebhookUrl(`https://hooks.example.org/webhooks/v1/${id}/${secret}`),
        `https://hooks.example.org/webhooks/v1/${id}/<redacted>`,
      );
    });

    it("works under a mount prefix, in any case, and hides what follows the secret", () => {
      assert.equal(
        redactWebhookUrl(`https://example.org:8443/bridge/Webhooks/V1/${id}/${secret}/extra/path`),
        `https://example.org:8443/bridge/Webhooks/V1/${id}/<redacted>`,
      );
    });

    it("hides query strings, fragments and URL credentials", () => {
      assert.equal(
        redactWebhookUrl(`https://user:pw@example.org/webhooks/v1/${id}/${secret}?token=abc#frag`),
        `https://<redacted>@example.org/webhooks/v1/${id}/<redacted>?<redacted>`,
      );
      assert.equal(
        redactWebhookUrl(`/webhooks/v1/${id}/${secret}?token=abc`),
        `/webhooks/v1/${id}/<redacted>?<redacted>`,
      );
      assert.equal(redactWebhookUrl("/health?token=abc"), "/health?<redacted>");
      assert.equal(
        redactWebhookUrl("https://example.org/page#access_token=abc"),
        "https://example.org/page?<redacted>",
      );
      assert.equal(redactWebhookUrl("/page#access_token=abc"), "/page?<redacted>");
    });

    it("leaves URLs without a secret alone", () => {
      assert.equal(redactWebhookUrl(`/webhooks/v1/${id}`), `/webhooks/v1/${id}`);
      assert.equal(redactWebhookUrl("/metrics"), "/metrics");
      assert.equal(redactWebhookUrl("https://example.org/"), "https://example.org/");
    });

    it("never lets a generated secret through", () => {
      for (let i = 0; i < 200; i += 1) {
        const s = generateHookSecret();
        const hookId = generateHookId();
        for (const url of [`/webhooks/v1/${hookId}/${s}`, `http://h/x/webhooks/v1/${hookId}/${s}?a=${s}`]) {
          const redacted = redactWebhookUrl(url);
          assert.ok(!redacted.includes(s), redacted);
          assert.ok(redacted.includes(hookId), redacted);
        }
      }
    });
  });
});
