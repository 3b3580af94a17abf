import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { installShutdownHandlers } from "../../src/lifecycle/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "../../../..");
const fixture = join(here, "fixtures/shutdown-child.ts");

interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the fixture, sends each step's signal once its stdout line has appeared,
 * and resolves when the child exits.
 */
function runChild(mode: string, timeoutMs: number, steps: [waitFor: string, signal: NodeJS.Signals][]) {
  return new Promise<ChildRun>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fixture, mode, String(timeoutMs)], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let next = 0;
    const guard = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      while (next < steps.length && stdout.split("\n").includes(steps[next]![0])) {
        child.kill(steps[next]![1]);
        next++;
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("installShutdownHandlers in a real process", () => {
  it("runs stop on SIGTERM and exits 0 when it finishes", async () => {
    const run = await runChild("ok", 5000, [["ready", "SIGTERM"]]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /stop:begin\nstop:done\n/);
    assert.match(run.stderr, /"signal":"SIGTERM"/);
  });

  it("does the same on SIGINT", async () => {
    const run = await runChild("ok", 5000, [["ready", "SIGINT"]]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /stop:done/);
  });

  it("exits 1 when stop fails", async () => {
    const run = await runChild("fail", 5000, [["ready", "SIGTERM"]]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Shutdown failed/);
    assert.match(run.stderr, /store would not close/);
  });

  it("exits 1 when stop outlasts the timeout", async () => {
    const started = Date.now();
    const run = await runChild("hang", 300, [["ready", "SIGTERM"]]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /stop:begin/);
    assert.doesNotMatch(run.stdout, /stop:done/);
    assert.match(run.stderr, /did not finish in time/);
    assert.ok(Date.now() - started >= 300);
  });

  it("exits at once on a second signal, with 128 + its number", async () => {
    const run = await runChild("hang", 10_000, [
      ["ready", "SIGTERM"],
      ["stop:begin", "SIGINT"],
    ]);
    assert.equal(run.code, 130);
    assert.match(run.stderr, /Second signal/);
  });
});

describe("installShutdownHandlers in process", () => {
  // A signal no test runner uses, emitted rather than sent, so mocha is never at risk.
  const signal = "SIGUSR2";

  it("reports the exit code through the injected exit and uninstalls itself", async () => {
    const before = process.listenerCount(signal);
    let stopped = 0;
    const code = await new Promise<number>((exit) => {
      installShutdownHandlers(
        async () => {
          stopped++;
        },
        { signals: [signal], exit },
      );
      assert.equal(process.listenerCount(signal), before + 1);
      process.emit(signal, signal);
    });
    assert.equal(code, 0);
    assert.equal(stopped, 1);
    assert.equal(process.listenerCount(signal), before);
  });

  it("returns a disposer that removes the handlers before any signal", () => {
    const before = process.listenerCount(signal);
    const dispose = installShutdownHandlers(async () => {}, { signals: [signal], exit: () => assert.fail() });
    dispose();
    assert.equal(process.listenerCount(signal), before);
  });
});
