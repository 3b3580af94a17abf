import { constants } from "node:os";
import { type Logger, silentLogger } from "../logging.js";

export interface ShutdownOptions {
  logger?: Logger;
  /** How long `stop` may take before the process exits with 1 anyway. Default 10 s. */
  timeoutMs?: number;
  /** Default `["SIGTERM", "SIGINT"]`. */
  signals?: NodeJS.Signals[];
  /**
   * Ends the process with a code. Defaults to `process.exit`; the CLI passes a function that
   * returns the code to its caller instead, so library code never exits by itself there.
   */
  exit?: (code: number) => void;
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * On the first signal: log, run `stop` (stop accepting, drain queues, close stores), then
 * exit 0, or 1 if it fails or outlasts the timeout. A second signal exits at once with
 * 128 + signal number, the shell convention, for an operator who cannot wait.
 * Returns a disposer that removes the handlers and cancels a pending timeout.
 */
export function installShutdownHandlers(
  stop: () => Promise<void>,
  options: ShutdownOptions = {},
): () => void {
  const logger = options.logger ?? silentLogger();
  const timeoutMs = options.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  const exit = options.exit ?? ((code: number) => process.exit(code));

  let stopping = false;
  let exited = false;
  let timer: NodeJS.Timeout | undefined;

  const finish = (code: number) => {
    if (exited) return;
    exited = true;
    dispose();
    exit(code);
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "Second signal received; exiting without waiting for shutdown");
      finish(128 + (constants.signals[signal] ?? 0));
      return;
    }
    stopping = true;
    logger.info({ signal, timeoutMs }, "Shutting down");
    // Not unref'd: if `stop` hangs on something that does not hold the event loop open,
    // this timer is what guarantees the process still ends, with a failure code.
    timer = setTimeout(() => {
      logger.error({ timeoutMs }, "Shutdown did not finish in time; exiting");
      finish(1);
    }, timeoutMs);
    Promise.resolve()
      .then(stop)
      .then(
        () => {
          logger.info("Shutdown complete");
          finish(0);
        },
        (err: unknown) => {
          logger.error({ err }, "Shutdown failed");
          finish(1);
        },
      );
  };

  for (const signal of signals) process.on(signal, onSignal);

  function dispose(): void {
    for (const signal of signals) process.off(signal, onSignal);
    if (timer) clearTimeout(timer);
    timer = undefined;
  }

  return dispose;
}
