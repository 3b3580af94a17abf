export { Deadline } from "./deadline.js";
export { DEFAULT_SHUTDOWN_TIMEOUT_MS, installShutdownHandlers, type ShutdownOptions } from "./shutdown.js";
