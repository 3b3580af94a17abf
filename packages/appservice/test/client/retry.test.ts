import assert from "node:assert/strict";
import { backoffDelayMs, parseRetryAfterMs, resolveRetryPolicy } from "../../src/client/index.js";

describe("retry policy", () => {
  it("layers overrides on the defaults and keeps at least one attempt", () => {
    const policy = resolveRetryPolicy(
      { maxAttempts: 0, baseDelayMs: 5 },
      { maxDelayMs: 7, baseDelayMs: undefined },
    );
    assert.equal(policy.maxAttempts, 1);
    assert.equal(policy.baseDelayMs, 5);
    assert.equal(policy.maxDelayMs, 7);
  });

  it("doubles the backoff per failure, within [step/2, step], capped at maxDelayMs", () => {
    const policy = resolveRetryPolicy({ baseDelayMs: 100, maxDelayMs: 1_000 });
    assert.equal(
      backoffDelayMs(policy, 1, () => 0),
      50,
    );
    assert.equal(
      backoffDelayMs(policy, 1, () => 1),
      100,
    );
    assert.equal(
      backoffDelayMs(policy, 3, () => 1),
      400,
    );
    assert.equal(
      backoffDelayMs(policy, 10, () => 1),
      1_000,
    );
    assert.equal(
      backoffDelayMs(policy, 10, () => 0),
      500,
    );
  });

  it("reads retry_after_ms first, then Retry-After as seconds or an HTTP-date", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(parseRetryAfterMs({ retry_after_ms: 1234 }, "9", now), 1234);
    assert.equal(parseRetryAfterMs({}, "2", now), 2_000);
    assert.equal(parseRetryAfterMs({}, "0.5", now), 500);
    assert.equal(parseRetryAfterMs({}, "Thu, 01 Jan 2026 00:00:03 GMT", now), 3_000);
    assert.equal(parseRetryAfterMs({}, "Wed, 31 Dec 2025 23:59:00 GMT", now), 0, "a past date means now");
    assert.equal(parseRetryAfterMs({ retry_after_ms: "soon" }, null, now), undefined);
    assert.equal(parseRetryAfterMs({}, "whenever", now), undefined);
  });
});
