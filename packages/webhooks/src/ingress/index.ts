export {
  DEFAULT_WEBHOOK_BODY_LIMIT_BYTES,
  type FormFields,
  type ParsedWebhookBody,
  parseWebhookBody,
  readLimitedBody,
  type WebhookBodyInput,
} from "./body.js";
export {
  BadEncodingError,
  BodyTooLargeError,
  IncompleteBodyError,
  RateLimitedError,
  SignatureError,
  type SignatureProblem,
  UnsupportedMediaTypeError,
  WebhookError,
  WebhookNotJsonError,
} from "./errors.js";
export { type HeaderBag, type HeaderRead, readHeader } from "./headers.js";
export {
  DEFAULT_DELIVERY_KEY_MAX_ENTRIES,
  DEFAULT_DELIVERY_KEY_TTL_MS,
  DELIVERY_KEY_HEADERS,
  type DeliveryKey,
  type DeliveryKeyStore,
  deriveDeliveryKey,
  type IgnoredDeliveryKey,
  MAX_DELIVERY_KEY_LENGTH,
  NedbDeliveryKeyStore,
  type NedbDeliveryKeyStoreOptions,
} from "./idempotency.js";
export { findJsonSyntaxError, formatJsonSyntaxProblem, type JsonSyntaxProblem } from "./json-syntax.js";
export {
  DEFAULT_MAX_TRACKED_HOOKS,
  DEFAULT_RATE_LIMIT,
  HookRateLimiter,
  type HookRateLimiterOptions,
  type RateLimit,
  type RateLimitDecision,
} from "./rate-limit.js";
export {
  type HookSignatureConfig,
  type SignatureScheme,
  type VerifiedSignature,
  verifyWebhookSignature,
} from "./signatures.js";
