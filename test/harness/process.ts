import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";

/**
 * Every process the harness starts, so that none survives the test run: mocha exits
 * with `process.exit`, and a test that throws or times out never reaches its teardown.
 */
const live = new Set<ManagedProcess>();

function killAllNow(): void {
  for (const proc of live) proc.killGroupNow();
}
process.on("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAllNow();
    process.exit(130);
  });
}

export interface ProcessSpec {
  /** Short name used in log file names and failure reports, e.g. "synapse". */
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
}

/** A child process in its own process group, its output captured to a log file. */
export class ManagedProcess {
  private child?: ChildProcess;
  private log?: WriteStream;
  private exited?: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(readonly spec: ProcessSpec) {}

  get logFile(): string {
    return this.spec.logFile;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitCode === undefined;
  }

  /** How the last run ended: its exit code, -1 for a signal, undefined while running. */
  get lastExitCode(): number | null | undefined {
    return this.exitCode;
  }

  async start(): Promise<void> {
    await mkdir(path.dirname(this.spec.logFile), { recursive: true });
    this.log = createWriteStream(this.spec.logFile, { flags: "a" });
    this.exitCode = undefined;
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: { ...process.env, ...this.spec.env },
      stdio: ["ignore", "pipe", "pipe"],
      // Own process group: stop() can signal the whole tree (Synapse forks nothing, but scripts might).
      detached: true,
    });
    this.child = child;
    child.stdout?.pipe(this.log, { end: false });
    child.stderr?.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        live.delete(this);
        resolve(this.exitCode);
      });
      child.once("error", (err) => {
        this.log?.write(`\n[harness] failed to spawn ${this.spec.command}: ${err.message}\n`);
        this.exitCode = -1;
        live.delete(this);
        resolve(-1);
      });
    });
    live.add(this);
  }

  /** Resolves with the exit code if the process ends, for racing against readiness checks. */
  waitForExit(): Promise<number | null> {
    return this.exited ?? Promise.resolve(null);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return this.closeLog();
    this.signalGroup("SIGTERM");
    const timer = setTimeout(() => this.signalGroup("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
    await this.closeLog();
  }

  /** SIGKILL at once: what a crash test wants. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.signalGroup("SIGKILL");
    await this.exited;
    await this.closeLog();
  }

  killGroupNow(): void {
    if (this.running) this.signalGroup("SIGKILL");
  }

  async tail(lines = 80): Promise<string> {
    try {
      const text = await readFile(this.spec.logFile, "utf8");
      return text.split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }

  private closeLog(): Promise<void> {
    const log = this.log;
    this.log = undefined;
    return new Promise((resolve) => (log ? log.end(resolve) : resolve()));
  }
}

/** A free TCP port on loopback (bound then released; fine for a single test machine). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** Polls `check` until it resolves true, failing early if `proc` exits. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  { timeoutMs, intervalMs = 100, proc }: { timeoutMs: number; intervalMs?: number; proc?: ManagedProcess },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && !proc.running) {
      throw new Error(`${what}: process exited early; log ${proc.logFile}:\n${await proc.tail(40)}`);
    }
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const tail = proc ? `\nlog ${proc.logFile}:\n${await proc.tail(40)}` : "";
  throw new Error(`${what}: not ready after ${timeoutMs} ms${tail}`);
}

export function tcpAccepts(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
