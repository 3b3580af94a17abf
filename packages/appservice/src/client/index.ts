export * from "./client.js";
export * from "./errors.js";
export type { ClientMetrics, RequestOutcome, RetryReason } from "./metrics.js";
export * from "./ping.js";
export {
  backoffDelayMs,
  DEFAULT_RETRY_POLICY,
  parseRetryAfterMs,
  type RetryPolicy,
  resolveRetryPolicy,
} from "./retry.js";
export type * from "./types.js";
