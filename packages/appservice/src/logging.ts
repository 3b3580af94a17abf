import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger };

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface LoggingOptions {
  level?: LogLevel;
  /** Where JSON lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
  name?: string;
}

/**
 * Paths whose values are never written to logs, whatever the level: tokens and secrets
 * leak through logged configs, registrations and request objects otherwise.
 */
export const REDACTED_PATHS = [
  "as_token",
  "hs_token",
  "*.as_token",
  "*.hs_token",
  "access_token",
  "*.access_token",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "password",
  "*.password",
  "headers.authorization",
  "*.headers.authorization",
];

/** A structured JSON logger. Construct one per process and pass children down; there is no global. */
export function createLogger(options: LoggingOptions = {}): Logger {
  const pinoOptions: LoggerOptions = {
    level: options.level ?? "info",
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    base: options.name ? { name: options.name } : {},
  };
  return options.destination
    ? pino(pinoOptions, options.destination as unknown as pino.DestinationStream)
    : pino(pinoOptions);
}

/** A logger that drops everything, for tests and library callers that bring none. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
