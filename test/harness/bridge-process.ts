import { readFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT, RUN_DIR } from "./paths.js";
import { ManagedProcess, waitUntil } from "./process.js";

export interface BridgeProcessSpec {
  /** Short name for the log file, e.g. "echo-bridge". */
  name: string;
  /** TypeScript entry point, relative to the repo root. */
  script: string;
  args: string[];
  /** The port its appservice API listens on, polled on `/health` for readiness. */
  port: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * A bridge as users run it: its own Node process, started from its CLI entry point with
 * the same flags (`-c`, `-f`, `-p`), killed with SIGTERM or SIGKILL like a real deployment.
 */
export class BridgeProcess {
  private readonly process: ManagedProcess;

  constructor(readonly spec: BridgeProcessSpec) {
    this.process = new ManagedProcess({
      name: spec.name,
      command: process.execPath,
      args: ["--import", "tsx", "--conditions=trestle-src", path.join(REPO_ROOT, spec.script), ...spec.args],
      cwd: REPO_ROOT,
      env: spec.env,
      logFile: path.join(RUN_DIR, `${spec.name}-${spec.port}`, "bridge.log"),
    });
  }

  get logFile(): string {
    return this.process.logFile;
  }

  get running(): boolean {
    return this.process.running;
  }

  get url(): string {
    return `http://127.0.0.1:${this.spec.port}`;
  }

  async start(): Promise<void> {
    await this.process.start();
    await waitUntil(
      `${this.spec.name} on port ${this.spec.port}`,
      async () => (await fetch(`${this.url}/health`)).ok,
      {
        timeoutMs: 30_000,
        proc: this.process,
      },
    );
  }

  /** For one-shot commands (e.g. `-r`): runs the process and waits for exit code 0. */
  async runToCompletion(timeoutMs = 30_000): Promise<void> {
    await this.process.start();
    const timer = setTimeout(() => this.process.killGroupNow(), timeoutMs);
    const code = await this.process.waitForExit();
    clearTimeout(timer);
    if (code !== 0) throw new Error(`${this.spec.name} exited ${code}:\n${await this.process.tail(30)}`);
  }

  /** SIGTERM: a graceful shutdown that drains queues. */
  stop(): Promise<void> {
    return this.process.stop(15_000);
  }

  /** The exit code of the last run (-1 if a signal ended it); undefined while running. */
  get exitCode(): number | null | undefined {
    return this.process.lastExitCode;
  }

  /** SIGKILL: a crash. */
  kill(): Promise<void> {
    return this.process.kill();
  }

  tail(lines?: number): Promise<string> {
    return this.process.tail(lines);
  }

  /** The structured (JSON) log lines written so far, across restarts. */
  async logRecords(): Promise<Record<string, unknown>[]> {
    const text = await readFile(this.logFile, "utf8").catch(() => "");
    return text
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  }

  /** A sample of `/metrics`, e.g. `metric("trestle_transactions_total", { outcome: "accepted" })`. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    let total = 0;
    for (const line of text.split("\n")) {
      if (!line.startsWith(name)) continue;
      const match = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
      if (!match || match[1] !== name) continue;
      if (wanted.every((w) => (match[2] ?? "").includes(w))) total += Number(match[3]);
    }
    return total;
  }
}
