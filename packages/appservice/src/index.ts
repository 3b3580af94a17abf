export * from "./appservice/index.js";
export * from "./bridge-info.js";
export * from "./cli/index.js";
export * from "./client/index.js";
export * from "./config/index.js";
export * from "./errors.js";
export * from "./intents/index.js";
export * from "./json.js";
export * from "./lifecycle/index.js";
export * from "./logging.js";
export { registeredMetric } from "./metrics-registry.js";
export * from "./registration/index.js";
export * from "./stores/index.js";
export {
  type DispatchableEvent,
  DispatcherNotRunningError,
  EventDispatcher,
  type EventDispatcherOptions,
  type EventHandler,
  HandlerTimeoutError,
} from "./transactions/dispatcher.js";
export {
  type DeviceKeyCounts,
  type EventOf,
  type IngestibleTransaction,
  type IngestStopOptions,
  IngestUnavailableError,
  TransactionIngest,
  type TransactionIngestOptions,
  type TransactionSink,
} from "./transactions/ingest.js";
export { parseTransaction } from "./transactions/parse.js";
export * from "./transactions/types.js";
export * from "./transport/app.js";
export { bearerToken, createTokenCheck, requireHsToken } from "./transport/auth.js";
export { DEFAULT_MAX_BODY_BYTES, type ReadJsonOptions, readJsonBody } from "./transport/body.js";
export * from "./transport/handlers.js";
export {
  type AppserviceHttpMetrics,
  createAppserviceHttpMetrics,
  type EventKind,
} from "./transport/metrics.js";
export { APPSERVICE_PREFIX } from "./transport/routes.js";
