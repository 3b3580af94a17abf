// `npm run bench -w @trestle/appservice`: transaction ingest against Trestle (durable) and
// matrix-appservice's AppService (the HTTP layer under matrix-appservice-bridge), then the
// heap cost of 100,000 ghosts. Prints Markdown tables; docs/benchmarks.md records a run.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type LoadResult, TransactionLoad } from "./load.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const HS_TOKEN = "bench-hs-token";
const quick = process.env.BENCH_QUICK === "1";

interface Target {
  name: string;
  script: string;
}

const targets: Target[] = [
  { name: "Trestle (journal, durable)", script: "targets/trestle.ts" },
  { name: "matrix-appservice 2.x (memory only)", script: "targets/matrix-appservice.ts" },
];

async function startTarget(target: Target): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=trestle-src", path.join(here, target.script)],
    { env: { ...process.env, BENCH_HS_TOKEN: HS_TOKEN }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    lines.on("line", (line) => {
      const match = /^LISTENING (\d+)/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`${target.name} exited ${code}`)));
  });
  return { child, port };
}

async function stopTarget(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "–");
const row = (cells: string[]) => `| ${cells.join(" | ")} |`;

interface Case {
  label: string;
  run: (load: TransactionLoad) => Promise<LoadResult>;
}

const cases: Case[] = [
  { label: "max, 1 in flight (as Synapse sends)", run: (l) => l.closedLoop(quick ? 300 : 2_000, 1) },
  { label: "max, 4 in flight", run: (l) => l.closedLoop(quick ? 300 : 2_000, 4) },
  { label: "fixed 1,000 events/s", run: (l) => l.openLoop(10, quick ? 3 : 15) },
];

/**
 * Rounds of every target in turn, the table showing each case's median round (by events/s): on a
 * shared machine, load from elsewhere then weighs on both targets alike instead of on whichever
 * ran while it lasted. `BENCH_ROUNDS` overrides (default 3; 1 with `BENCH_QUICK`).
 */
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3)));
const results = new Map<string, LoadResult[][]>(targets.map((t) => [t.name, cases.map(() => [])]));
for (let round = 0; round < rounds; round++) {
  for (const target of targets) {
    const { child, port } = await startTarget(target);
    const load = new TransactionLoad(port, HS_TOKEN);
    // Warm-up, as for a service that has been running: the JIT has optimised the hot paths and the
    // keep-alive connections are open. Too short a one measures the compiler instead of the server.
    await load.closedLoop(quick ? 100 : 500, 1);
    await load.closedLoop(quick ? 100 : 500, 4);
    for (const [i, c] of cases.entries()) results.get(target.name)?.[i]?.push(await c.run(load));
    load.close();
    await stopTarget(child);
  }
}

const median = (runs: LoadResult[]): LoadResult | undefined =>
  [...runs].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond)[Math.floor(runs.length / 2)];

console.log("\n### Transaction ingest (100 events per transaction, loopback HTTP, keep-alive)\n");
if (rounds > 1) console.log(`Median of ${rounds} rounds, the targets taking turns.\n`);
console.log(row(["server", "load", "events/s", "ack p50 ms", "ack p99 ms", "errors"]));
console.log(row(["---", "---", "---:", "---:", "---:", "---:"]));
for (const target of targets) {
  for (const [i, c] of cases.entries()) {
    const r = median(results.get(target.name)?.[i] ?? []);
    if (!r) continue;
    console.log(
      row([
        target.name,
        c.label,
        fmt(r.eventsPerSecond, 0),
        fmt(r.p50Ms, 2),
        fmt(r.p99Ms, 2),
        String(r.errors),
      ]),
    );
  }
}

// The requirement is at least the in-memory baseline's throughput while persisting, in the "max" rows.
const [ours, baseline] = targets.map((t) => results.get(t.name) ?? []);
console.log("");
for (const [i, c] of cases.entries()) {
  if (!c.label.startsWith("max")) continue;
  const a = median(ours?.[i] ?? [])?.eventsPerSecond ?? Number.NaN;
  const b = median(baseline?.[i] ?? [])?.eventsPerSecond ?? Number.NaN;
  console.log(`${targets[0]?.name} vs ${targets[1]?.name}, ${c.label}: ${fmt((100 * a) / b, 0)}%`);
}

// The intent cache case runs in its own process so the heap numbers are its own.
const heap = spawn(
  process.execPath,
  ["--expose-gc", "--import", "tsx", "--conditions=trestle-src", path.join(here, "intents-heap.ts")],
  {
    stdio: ["ignore", "inherit", "inherit"],
  },
);
await new Promise((r) => heap.once("exit", r));
