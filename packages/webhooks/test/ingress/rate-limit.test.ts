import assert from "node:assert/strict";
import { RateLimitedError } from "../../src/ingress/errors.js";
import {
  HookRateLimiter,
  type HookRateLimiterOptions,
  type RateLimitDecision,
} from "../../src/ingress/rate-limit.js";

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

function limiterWithClock(options: Omit<HookRateLimiterOptions, "now"> = {}) {
  const clock = fakeClock();
  return { clock, limiter: new HookRateLimiter({ ...options, now: clock.now }) };
}

function takeMany(limiter: HookRateLimiter, hookId: string, count: number): RateLimitDecision[] {
  return Array.from({ length: count }, () => limiter.take(hookId));
}

const ALLOWED: RateLimitDecision = { allowed: true };

describe("HookRateLimiter", () => {
  it("allows the default burst of 30, then refuses with Retry-After 1 s at 60/min", () => {
    const { limiter } = limiterWithClock();
    assert.deepEqual(takeMany(limiter, "hook", 30), Array(30).fill(ALLOWED));
    assert.deepEqual(limiter.take("hook"), { allowed: false, retryAfterSeconds: 1 });
  });

  it("says when the next token arrives and honours it", () => {
    const { clock, limiter } = limiterWithClock({ limit: { ratePerMinute: 6, burst: 3 } });
    assert.deepEqual(takeMany(limiter, "hook", 3), Array(3).fill(ALLOWED));
    assert.deepEqual(limiter.take("hook"), { allowed: false, retryAfterSeconds: 10 });
    clock.advance(4_000);
    assert.deepEqual(limiter.take("hook"), { allowed: false, retryAfterSeconds: 6 });
    clock.advance(5_500);
    // 500 ms short of a token: rounds up, never down to 0.
    assert.deepEqual(limiter.take("hook"), { allowed: false, retryAfterSeconds: 1 });
    clock.advance(500);
    assert.deepEqual(limiter.take("hook"), ALLOWED);
    assert.deepEqual(limiter.take("hook"), { allowed: false, retryAfterSeconds: 10 });
  });

  it("refills at the configured rate and never beyond the burst", () => {
    const { clock, limiter } = limiterWithClock({ limit: { ratePerMinute: 120, burst: 5 } });
    takeMany(limiter, "hook", 5);
    clock.advance(1_000); // 2 tokens
    assert.deepEqual(takeMany(limiter, "hook", 3), [
      ALLOWED,
      ALLOWED,
      { allowed: false, retryAfterSeconds: 1 },
    ]);
    clock.advance(60 * 60_000);
    const afterAnHour = takeMany(limiter, "hook", 6);
    assert.deepEqual(afterAnHour.slice(0, 5), Array(5).fill(ALLOWED));
    assert.equal(afterAnHour[5]?.allowed, false);
  });

  it("rounds fractional waits up to whole seconds", () => {
    const { limiter } = limiterWithClock({ limit: { ratePerMinute: 90, burst: 1 } });
    limiter.take("hook");
    // 1.5 tokens/s: the next one is 667 ms away.
    assert.deepEqual(limiter.take("hook"), { allowed: false, retryAfterSeconds: 1 });
    const twoThirds = limiterWithClock({ limit: { ratePerMinute: 40, burst: 1 } }).limiter;
    twoThirds.take("hook");
    // 1.5 s away: 2, not 1.
    assert.deepEqual(twoThirds.take("hook"), { allowed: false, retryAfterSeconds: 2 });
    const slow = limiterWithClock({ limit: { ratePerMinute: 0.5, burst: 1 } }).limiter;
    slow.take("hook");
    assert.deepEqual(slow.take("hook"), { allowed: false, retryAfterSeconds: 120 });
  });

  it("keeps one bucket per hook", () => {
    const { limiter } = limiterWithClock({ limit: { ratePerMinute: 60, burst: 2 } });
    takeMany(limiter, "a", 2);
    assert.equal(limiter.take("a").allowed, false);
    assert.deepEqual(takeMany(limiter, "b", 2), [ALLOWED, ALLOWED]);
  });

  it("applies a hook's own limit instead of the default", () => {
    const { limiter } = limiterWithClock({ limit: { ratePerMinute: 60, burst: 30 } });
    const own = { ratePerMinute: 1, burst: 2 };
    assert.deepEqual([limiter.take("strict", own), limiter.take("strict", own)], [ALLOWED, ALLOWED]);
    assert.deepEqual(limiter.take("strict", own), { allowed: false, retryAfterSeconds: 60 });
  });

  it("bounds memory with an LRU over hook ids", () => {
    const { limiter } = limiterWithClock({ limit: { ratePerMinute: 1, burst: 1 }, maxTrackedHooks: 2 });
    limiter.take("a");
    limiter.take("b");
    assert.equal(limiter.take("a").allowed, false); // a is now the most recently used
    limiter.take("c"); // pushes out b
    assert.equal(limiter.trackedHooks, 2);
    assert.equal(limiter.take("a").allowed, false, "a kept its empty bucket");
    assert.equal(limiter.take("b").allowed, true, "b was forgotten and starts full");
    for (let i = 0; i < 1000; i += 1) limiter.take(`hook-${i}`);
    assert.equal(limiter.trackedHooks, 2);
  });

  it("forgets a hook on request", () => {
    const { limiter } = limiterWithClock({ limit: { ratePerMinute: 1, burst: 1 } });
    limiter.take("a");
    limiter.forget("a");
    assert.equal(limiter.take("a").allowed, true);
  });

  it("survives a clock that steps backwards", () => {
    const { clock, limiter } = limiterWithClock({ limit: { ratePerMinute: 60, burst: 1 } });
    limiter.take("a");
    clock.advance(-60_000);
    assert.deepEqual(limiter.take("a"), { allowed: false, retryAfterSeconds: 1 });
    clock.advance(1_000);
    assert.deepEqual(limiter.take("a"), ALLOWED);
  });

  it("refuses nonsensical limits", () => {
    for (const limit of [
      { ratePerMinute: 0, burst: 1 },
      { ratePerMinute: Number.NaN, burst: 1 },
      { ratePerMinute: 1, burst: 0 },
      { ratePerMinute: 1, burst: 1.5 },
    ]) {
      assert.throws(() => new HookRateLimiter({ limit }), RangeError);
      assert.throws(() => new HookRateLimiter().take("a", limit), RangeError);
    }
    assert.throws(() => new HookRateLimiter({ maxTrackedHooks: 0 }), RangeError);
  });

  it("has a 429 error carrying the wait", () => {
    const err = new RateLimitedError(7);
    assert.equal(err.httpStatus, 429);
    assert.equal(err.retryAfterSeconds, 7);
    assert.deepEqual(err.toJSON(), {
      errcode: "M_LIMIT_EXCEEDED",
      error: "Too many requests to this webhook",
      retry_after_ms: 7000,
    });
  });
});
