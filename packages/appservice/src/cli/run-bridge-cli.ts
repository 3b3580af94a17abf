import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type CoreConfig, coreConfigSchema } from "../config/core-schema.js";
import { type DeepPartial, loadConfig } from "../config/load-config.js";
import { isHttpUrl, type JSONSchema } from "../config/validation.js";
import { ConfigError } from "../errors.js";
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, installShutdownHandlers } from "../lifecycle/shutdown.js";
import { createLogger, type Logger } from "../logging.js";
import { loadRegistration, writeRegistration } from "../registration/registration-file.js";
import type { Registration } from "../registration/types.js";

/** Exit codes returned by {@link runBridgeCli}; shutdown may also return 128 + signal number. */
export const ExitCode = { Ok: 0, Failure: 1, Usage: 2 } as const;

export const DEFAULT_REGISTRATION_PATH = "registration.yaml";

export interface RegistrationRequest {
  /** `-u/--url`: where the homeserver reaches the bridge. */
  url: string;
  /** `--id`, if given. */
  id?: string;
  /** `-l/--localpart`, if given: the bot's localpart. */
  localpart?: string;
}

export interface StartContext<C> {
  config: C;
  registration: Registration;
  /** `-p`, else `appservice.port` from the config (which `config` also holds). */
  port: number;
  logger: Logger;
}

export interface RunningBridge {
  /**
   * Stop accepting, drain queues, close stores, within `timeoutMs` when given: the CLI passes
   * its own shutdown timeout less a margin, after which it exits anyway.
   */
  stop(timeoutMs?: number): Promise<void>;
}

/** Kept back from the CLI's shutdown timeout for logging and exiting after `stop`. */
const SHUTDOWN_MARGIN_MS = 2_000;

export interface BridgeCliOptions<C extends CoreConfig> {
  /** Program name, used in usage and messages. */
  name: string;
  description: string;
  /** The bridge's config schema; the core properties are validated whether or not it embeds them. */
  configSchema: JSONSchema;
  /** Used when neither `-p` nor `appservice.port` gives one. */
  defaultPort?: number;
  generateRegistration: (config: C, request: RegistrationRequest) => Registration | Promise<Registration>;
  start: (context: StartContext<C>) => Promise<RunningBridge>;
  /** Default `process.argv.slice(2)`. */
  argv?: string[];
  /** Default: a logger at the config's `logging.level`, writing to `stdout`. */
  logger?: Logger;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Default `["SIGTERM", "SIGINT"]`. */
  signals?: NodeJS.Signals[];
  shutdownTimeoutMs?: number;
}

const OPTIONS = {
  config: { type: "string", short: "c" },
  file: { type: "string", short: "f" },
  "generate-registration": { type: "boolean", short: "r" },
  url: { type: "string", short: "u" },
  localpart: { type: "string", short: "l" },
  id: { type: "string" },
  port: { type: "string", short: "p" },
  help: { type: "boolean", short: "h" },
} as const;

export function usage(name: string, description: string): string {
  return `Usage: ${name} -c CONFIG [-f REGISTRATION] [-p PORT]
       ${name} -c CONFIG -r -u URL [-f REGISTRATION] [-l LOCALPART] [--id ID]

${description}

Options:
  -c, --config FILE            Bridge config file (YAML). Required.
  -f, --file FILE              Registration file to read, or to write with -r
                               (default: ${DEFAULT_REGISTRATION_PATH}).
  -r, --generate-registration  Write a new registration file with fresh tokens, then exit.
  -u, --url URL                With -r: the URL the homeserver uses to reach this bridge.
  -l, --localpart LOCALPART    With -r: the localpart of the bridge's bot user.
      --id ID                  With -r: the appservice ID.
  -p, --port PORT              Port to listen on; overrides appservice.port in the config.
  -h, --help                   Show this help and exit.
`;
}

class UsageError extends Error {}

interface ParsedArgs {
  configPath: string;
  registrationPath: string;
  port?: number;
  generate?: RegistrationRequest;
}

function parseCliArgs(argv: string[]): ParsedArgs | "help" {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs explains the mistake in its first sentence; the rest is about `--`.
    throw new UsageError((err as Error).message.split(/\.\s/)[0] ?? String(err));
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  if (positionals.length > 0) throw new UsageError(`Unexpected argument ${JSON.stringify(positionals[0])}`);
  if (!values.config) throw new UsageError("Missing -c/--config FILE");

  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) {
      throw new UsageError(
        `-p/--port must be a port number from 1 to 65535, got ${JSON.stringify(values.port)}`,
      );
    }
  }

  const args: ParsedArgs = {
    configPath: values.config,
    registrationPath: values.file ?? DEFAULT_REGISTRATION_PATH,
    ...(port !== undefined && { port }),
  };
  if (values["generate-registration"]) {
    if (!values.url) throw new UsageError("-r/--generate-registration needs -u/--url URL");
    if (!isHttpUrl(values.url)) {
      throw new UsageError(`-u/--url must be an http:// or https:// URL, got ${JSON.stringify(values.url)}`);
    }
    args.generate = {
      url: values.url,
      ...(values.id !== undefined && { id: values.id }),
      ...(values.localpart !== undefined && { localpart: values.localpart }),
    };
  }
  return args;
}

/**
 * The command line every bridge shares, with matrix-appservice-bridge's flags. Returns the
 * process exit code rather than exiting: at once for `--help`, `-r` and errors; after a
 * signal-driven shutdown when the bridge was started. The bin script ends the process:
 *
 *     process.exit(await runBridgeCli({ ... }));
 */
export async function runBridgeCli<C extends CoreConfig>(options: BridgeCliOptions<C>): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const fail = (message: string, code: number) => {
    stderr.write(`${options.name}: ${message}\n`);
    if (code === ExitCode.Usage) stderr.write(`Run "${options.name} --help" for usage.\n`);
    return code;
  };

  let args: ParsedArgs | "help";
  try {
    args = parseCliArgs(options.argv ?? process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message, ExitCode.Usage);
    throw err;
  }
  if (args === "help") {
    stdout.write(usage(options.name, options.description));
    return ExitCode.Ok;
  }

  try {
    const config = await loadConfig<C>(
      args.configPath,
      // Validating the core schema alongside lets the CLI rely on appservice.port and logging.level.
      { allOf: [coreConfigSchema, options.configSchema] },
      options.defaultPort === undefined
        ? {}
        : { defaults: { appservice: { port: options.defaultPort } } as DeepPartial<C> },
    );
    if (args.generate) {
      const registration = await options.generateRegistration(config, args.generate);
      await writeRegistration(args.registrationPath, registration);
      stdout.write(
        `Wrote the registration for appservice "${registration.id}" to ${resolve(args.registrationPath)}.\n` +
          "Add that path to the homeserver's app_service_config_files and restart it.\n",
      );
      return ExitCode.Ok;
    }
    const registration = await loadRegistrationWithHint(options.name, args.configPath, args.registrationPath);
    if (args.port !== undefined) config.appservice.port = args.port;
    return await runUntilShutdown(options, config, registration);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, ExitCode.Failure);
    return fail(`failed: ${(err as Error).stack ?? String(err)}`, ExitCode.Failure);
  }
}

async function loadRegistrationWithHint(
  name: string,
  configPath: string,
  path: string,
): Promise<Registration> {
  try {
    return await loadRegistration(path);
  } catch (err) {
    if (err instanceof ConfigError && !existsSync(path)) {
      throw new ConfigError(
        `${err.message}. Generate one with: ${name} -c ${configPath} -r -u URL -f ${path}`,
      );
    }
    throw err;
  }
}

async function runUntilShutdown<C extends CoreConfig>(
  options: BridgeCliOptions<C>,
  config: C,
  registration: Registration,
): Promise<number> {
  const logger =
    options.logger ??
    createLogger({
      level: config.logging.level,
      name: options.name,
      ...(options.stdout && { destination: options.stdout }),
    });
  const port = config.appservice.port;
  const bridge = await options.start({ config, registration, port, logger });
  logger.info({ port, appservice: registration.id }, "Bridge started");
  let dispose = () => {};
  const code = await new Promise<number>((exit) => {
    const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    const stopBudgetMs = Math.max(0, shutdownTimeoutMs - Math.min(SHUTDOWN_MARGIN_MS, shutdownTimeoutMs / 5));
    dispose = installShutdownHandlers(() => bridge.stop(stopBudgetMs), {
      logger,
      exit,
      ...(options.signals && { signals: options.signals }),
      timeoutMs: shutdownTimeoutMs,
    });
  });
  dispose();
  return code;
}
