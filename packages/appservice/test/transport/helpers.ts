import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { Registry } from "prom-client";
import { createLogger, type Logger } from "../../src/logging.js";
import type { ParsedTransaction } from "../../src/transactions/types.js";
import {
  type AppserviceHttp,
  type AppserviceHttpOptions,
  createAppserviceHttp,
  type ListeningServer,
} from "../../src/transport/app.js";
import type { AppserviceHttpHandlers } from "../../src/transport/handlers.js";

export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** A debug-level logger whose JSON lines land in `lines`, for asserting what was logged. */
export function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { log: createLogger({ level: "debug", destination }), lines };
}

export const HS_TOKEN = "hs-token-7f3c9a1e";

export interface Harness {
  base: string;
  http: AppserviceHttp;
  server: ListeningServer;
  registry: Registry;
  lines: LogLine[];
  transactions: { txnId: string; txn: ParsedTransaction }[];
  /** Sends a request as the homeserver would: with the hs_token unless `token` says otherwise. */
  request(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

type HarnessOptions = Partial<Omit<AppserviceHttpOptions, "handlers">> & {
  handlers?: Partial<AppserviceHttpHandlers>;
};

/**
 * Starts the appservice HTTP API on 127.0.0.1 with recording handlers; `setup` runs
 * before listening, where a bridge adds its own routes.
 */
export async function startAppservice(
  options: HarnessOptions = {},
  setup?: (http: AppserviceHttp) => void,
): Promise<Harness> {
  const { log, lines } = capturingLogger();
  const registry = options.metrics ?? new Registry();
  const transactions: Harness["transactions"] = [];
  const http = createAppserviceHttp({
    hsToken: HS_TOKEN,
    logger: log,
    ...options,
    metrics: registry,
    handlers: {
      onTransaction: async (txnId, txn) => {
        transactions.push({ txnId, txn });
      },
      onUserQuery: async () => false,
      onAliasQuery: async () => false,
      ...options.handlers,
    },
  });
  setup?.(http);
  const server = await http.listen(0, "127.0.0.1");
  const base = `http://127.0.0.1:${server.port}`;
  return {
    base,
    http,
    server,
    registry,
    lines,
    transactions,
    request: (path, init = {}) => {
      const { token = HS_TOKEN, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== null) headers.set("Authorization", `Bearer ${token}`);
      return fetch(base + path, { ...rest, headers });
    },
    close: () => server.close(),
  };
}

/** The JSON body of a response together with its status, for one-line assertions. */
export async function statusAndBody(res: Response): Promise<[number, unknown]> {
  const text = await res.text();
  return [res.status, text === "" ? undefined : JSON.parse(text)];
}

/** Asserts a Matrix error answer (`{errcode, error}` with `status`) and returns its body. */
export async function assertMatrixError(
  res: Response,
  status: number,
  errcode: string,
  where?: string,
): Promise<{ errcode: string; error: string }> {
  const [actualStatus, body] = await statusAndBody(res);
  const error = body as { errcode?: unknown; error?: unknown };
  assert.deepEqual({ status: actualStatus, errcode: error?.errcode }, { status, errcode }, where);
  assert.equal(typeof error.error, "string", where);
  return body as { errcode: string; error: string };
}
