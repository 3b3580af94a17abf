export interface RetryPolicy {
  /** Attempts in total, the first included. 1 disables retries. */
  maxAttempts: number;
  /** Backoff before the first retry; doubles with every further attempt. */
  baseDelayMs: number;
  /** Upper bound of one backoff step. */
  maxDelayMs: number;
  /** Upper bound of one 429 wait, whatever the homeserver asks for. */
  maxRetryAfterMs: number;
  /**
   * Budget for the whole call, waits included. A retry whose wait would overrun it is not
   * attempted, so a caller is never held much longer than this.
   */
  maxTotalMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 30_000,
  maxTotalMs: 60_000,
});

export function resolveRetryPolicy(...layers: (Partial<RetryPolicy> | undefined)[]): RetryPolicy {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer) as [keyof RetryPolicy, number | undefined][]) {
      if (value !== undefined) policy[key] = value;
    }
  }
  policy.maxAttempts = Math.max(1, Math.floor(policy.maxAttempts));
  return policy;
}

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random. The fixed half
 * keeps a floor under the wait; the random half spreads out bridges that failed together.
 * `failures` counts the failed attempts so far (1 before the first retry).
 */
export function backoffDelayMs(policy: RetryPolicy, failures: number, random: () => number = Math.random) {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(step / 2 + (step / 2) * random());
}

/**
 * The wait a 429 asks for: `retry_after_ms` in the body (older servers) or the `Retry-After`
 * header (delta-seconds or an HTTP-date, Matrix v1.10+). Undefined when neither is usable.
 */
export function parseRetryAfterMs(
  body: unknown,
  header: string | null,
  now: number = Date.now(),
): number | undefined {
  if (body && typeof body === "object" && "retry_after_ms" in body) {
    const ms = (body as { retry_after_ms: unknown }).retry_after_ms;
    if (typeof ms === "number" && Number.isFinite(ms) && ms >= 0) return ms;
  }
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
