import { LRUCache } from "lru-cache";

export interface RateLimit {
  /** Sustained rate: tokens added per minute. */
  ratePerMinute: number;
  /** Bucket size: how many requests may arrive at once after a quiet spell. */
  burst: number;
}

export const DEFAULT_RATE_LIMIT: Readonly<RateLimit> = { ratePerMinute: 60, burst: 30 };
export const DEFAULT_MAX_TRACKED_HOOKS = 10_000;

export interface HookRateLimiterOptions {
  /** Applies to every hook that `take` gets no own limit for. */
  limit?: RateLimit;
  /** At most this many buckets are kept; the least recently used goes first. */
  maxTrackedHooks?: number;
  /** Milliseconds clock; tests pass a fake one. */
  now?: () => number;
}

export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * A token bucket per hook id: each request takes a token, tokens come back at `ratePerMinute`, and
 * at most `burst` accumulate. A refusal says when the next token arrives, for `Retry-After`.
 *
 * Memory is bounded by an LRU over hook ids. A bucket pushed out by `maxTrackedHooks` busier hooks
 * comes back full, which only ever errs towards letting a request through; keep the bound above the
 * number of hooks that are active at the same time. The route should take a token only for hook
 * ids it has looked up, so random ids cannot churn the cache.
 */
export class HookRateLimiter {
  private readonly buckets: LRUCache<string, Bucket>;
  private readonly limit: RateLimit;
  private readonly now: () => number;

  constructor(options: HookRateLimiterOptions = {}) {
    this.limit = checkLimit(options.limit ?? DEFAULT_RATE_LIMIT);
    const max = options.maxTrackedHooks ?? DEFAULT_MAX_TRACKED_HOOKS;
    if (!Number.isInteger(max) || max < 1) throw new RangeError("maxTrackedHooks must be a positive integer");
    this.buckets = new LRUCache({ max });
    this.now = options.now ?? Date.now;
  }

  /**
   * Takes a token for `hookId`. `limit` overrides the default for this hook (its own setting); a
   * changed limit applies from now on, with the tokens already saved capped at the new burst.
   */
  take(hookId: string, limit?: RateLimit): RateLimitDecision {
    const { ratePerMinute, burst } = limit ? checkLimit(limit) : this.limit;
    const now = this.now();
    const bucket = this.buckets.get(hookId) ?? { tokens: burst, updatedAt: now };
    const perMs = ratePerMinute / 60_000;
    // max(0, …): a clock stepping backwards must not drain the bucket.
    const elapsed = Math.max(0, now - bucket.updatedAt);
    bucket.tokens = Math.min(burst, bucket.tokens + elapsed * perMs);
    bucket.updatedAt = now;
    this.buckets.set(hookId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    const waitMs = (1 - bucket.tokens) / perMs;
    // The epsilon keeps float noise (4.0000000001 s) from adding a whole second.
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000 - 1e-9)) };
  }

  /** How many hooks have a bucket right now (at most `maxTrackedHooks`). */
  get trackedHooks(): number {
    return this.buckets.size;
  }

  /** Drops a hook's bucket, e.g. when the hook is deleted. */
  forget(hookId: string): void {
    this.buckets.delete(hookId);
  }
}

function checkLimit(limit: RateLimit): RateLimit {
  if (!Number.isFinite(limit.ratePerMinute) || limit.ratePerMinute <= 0) {
    throw new RangeError("ratePerMinute must be a positive number");
  }
  if (!Number.isInteger(limit.burst) || limit.burst < 1)
    throw new RangeError("burst must be a positive integer");
  return limit;
}
