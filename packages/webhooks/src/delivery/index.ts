export {
  AvatarFetchError,
  createHttpAvatarFetcher,
  type HttpAvatarFetcherOptions,
} from "./avatar-fetcher.js";
export { DeliveryUnavailableError } from "./errors.js";
export { type ClassifiedFailure, classifyDeliveryError, type FailureKind } from "./failures.js";
export {
  type DeliveryFailure,
  type DeliveryJob,
  type DeliveryOutcome,
  type DeliveryRequest,
  type FailedDelivery,
  templateHeaders,
} from "./job.js";
export {
  DEFAULT_DELIVERY_COMPACT_AFTER_BYTES,
  DELIVERY_JOURNAL_FILE,
  DeliveryJournal,
  type DeliveryJournalOptions,
  LEGACY_DELIVERY_FILE,
} from "./journal.js";
export { createDeliveryMetrics, type DeliveryMetrics } from "./metrics.js";
export {
  DEFAULT_NOTICE_INTERVAL_MS,
  TemplateErrorNotices,
  type TemplateErrorNoticesOptions,
  templateErrorNotice,
} from "./notices.js";
export {
  type AvatarFetcher,
  type HookPoster,
  MatrixHookPoster,
  type MatrixHookPosterOptions,
  type PosterIntents,
  type PostRequest,
} from "./poster.js";
export {
  DEFAULT_DELIVERY_RETRY,
  DeliveryQueue,
  type DeliveryQueueOptions,
  type DeliveryRetryPolicy,
  type DeliveryStatus,
  type DeliveryTimers,
  type EnqueuedDelivery,
} from "./queue.js";
