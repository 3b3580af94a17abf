// `npm run bench -w @trestle/appservice`: transaction ingest against Trestle (durable) and
// matrix-appservice's AppService (the HTTP layer under matrix-appservice-bridge), then the
// heap cost of 100,000 ghosts. Prints Markdown tables; docs/benchmarks.md records a run.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type LoadResult, type LoadSample, summarise, TransactionLoad } from "./load.js";

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

/**
 * CPU time the process has used, all threads, user and system, in µs; undefined where there is no
 * `/proc`. Linux counts it in ticks of 1/100 s (`USER_HZ`), which over a batch of a few hundred
 * transactions is fine-grained enough.
 */
function cpuMicros(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
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
  /**
   * One segment of the case; the servers take turns segment by segment. `onSettled` is called
   * where the counted part (and the CPU reading) starts.
   */
  segment: (load: TransactionLoad, onSettled: () => void) => Promise<LoadSample>;
  segments: number;
}

/**
 * Answers at the start of each "max" segment that are not counted: the server first finishes the
 * work the previous segment left it (Trestle handles events after acknowledging them), and its
 * collector adjusts to the load. Then 1,000 transactions are counted.
 */
const SETTLE = 250;
const COUNTED = quick ? 250 : 1_000;
const maxSegment = (concurrency: number) => (l: TransactionLoad, onSettled: () => void) =>
  l.closedLoop(SETTLE + COUNTED, concurrency, { settle: SETTLE, onSettled });

const cases: Case[] = [
  { label: "max, 1 in flight (as Synapse sends)", segment: maxSegment(1), segments: quick ? 2 : 8 },
  { label: "max, 4 in flight", segment: maxSegment(4), segments: quick ? 2 : 8 },
  {
    label: "fixed 1,000 events/s",
    segment: (l, onSettled) => {
      onSettled();
      return l.openLoop(10, 3);
    },
    segments: quick ? 1 : 5,
  },
];

/**
 * Both servers run side by side and take turns segment by segment (A B B A A B …), so that a
 * change in the machine's speed during the run (other tenants, frequency) weighs on both alike: on
 * a shared two-core machine it drifts by ±20 % over tens of seconds, which took whole rounds of
 * one server against whole rounds of the other apart. Each row merges its server's segments.
 */
const servers = [];
for (const target of targets) {
  const { child, port } = await startTarget(target);
  servers.push({ target, child, load: new TransactionLoad(port, HS_TOKEN) });
}
// Warm-up, as for a service that has been running: the JIT has optimised the hot paths, the heap
// has grown to the load and the keep-alive connections are open. After 500 + 500 transactions
// both servers still sped up by half over the next 2,000: a shorter one measures the warm-up.
for (const { load } of servers) {
  await load.closedLoop(quick ? 200 : 2_000, 1);
  await load.closedLoop(quick ? 200 : 2_000, 4);
}
const results = new Map<string, LoadResult[]>();
/** Server CPU per transaction, in µs, by server and case. */
const cpuPerTxn = new Map<string, number[]>();
for (const c of cases) {
  const samples = servers.map((): LoadSample[] => []);
  const cpu = servers.map(() => 0);
  for (let s = 0; s < c.segments; s++) {
    const order = s % 2 === 0 ? servers.keys() : [...servers.keys()].reverse();
    for (const i of order) {
      const server = servers[i] as (typeof servers)[number];
      let before: number | undefined;
      samples[i]?.push(
        await c.segment(server.load, () => {
          before = cpuMicros(server.child.pid);
        }),
      );
      cpu[i] = (cpu[i] ?? 0) + (cpuMicros(server.child.pid) ?? Number.NaN) - (before ?? Number.NaN);
    }
  }
  servers.forEach(({ target }, i) => {
    const list = results.get(target.name) ?? [];
    const result = summarise(samples[i] ?? []);
    list.push(result);
    results.set(target.name, list);
    const perTxn = cpuPerTxn.get(target.name) ?? [];
    perTxn.push((cpu[i] ?? Number.NaN) / result.transactions);
    cpuPerTxn.set(target.name, perTxn);
  });
}
for (const { load, child } of servers) {
  load.close();
  await stopTarget(child);
}

console.log("\n### Transaction ingest (100 events per transaction, loopback HTTP, keep-alive)\n");
console.log("Both servers side by side, taking turns segment by segment.\n");
console.log(row(["server", "load", "events/s", "ack p50 ms", "ack p99 ms", "server CPU µs/txn", "errors"]));
console.log(row(["---", "---", "---:", "---:", "---:", "---:", "---:"]));
for (const target of targets) {
  for (const [i, c] of cases.entries()) {
    const r = results.get(target.name)?.[i];
    if (!r) continue;
    console.log(
      row([
        target.name,
        c.label,
        fmt(r.eventsPerSecond, 0),
        fmt(r.p50Ms, 2),
        fmt(r.p99Ms, 2),
        fmt(cpuPerTxn.get(target.name)?.[i] ?? Number.NaN, 0),
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
  const a = ours?.[i]?.eventsPerSecond ?? Number.NaN;
  const b = baseline?.[i]?.eventsPerSecond ?? Number.NaN;
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
