// `npm run bench -w @trestle/webhooks`: webhooks through trestle-webhooks into a real Synapse
// room, measured end to end (POST sent → event seen by a listening client's /sync), and in
// the same run the same messages sent straight to Synapse by a plain client, as the ceiling.
import { Worker } from "node:worker_threads";
import { MatrixTestClient } from "../../../test/harness/index.js";
import { startLocalStack } from "../scripts/local-stack.js";

const quick = process.env.BENCH_QUICK === "1";
const RATE = Number(process.env.BENCH_RATE ?? 1000); // offered webhooks per second on the ack path
const SECONDS = Number(process.env.BENCH_SECONDS ?? (quick ? 1 : 3));
/** See Listener: the sync loop's pause after each answer with events. */
const LISTENER_PAUSE_MS = 100;
const WARM_UP = Number(process.env.BENCH_WARM_UP ?? (quick ? 200 : 1_000));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

interface Posted {
  /** Seconds from the first send to the last acknowledgement. */
  seconds: number;
  /** Per body, in order: when it was sent (ms since the epoch). */
  sentAt: number[];
  ackMs: number[];
  status: number[];
}

/** POSTs `bodies` to `url` at RATE per second, open loop, from a worker thread (see post-worker.mjs). */
function postFromWorker(url: string, bodies: string[]): Promise<Posted> {
  const worker = new Worker(new URL("./post-worker.mjs", import.meta.url), {
    workerData: { url, rate: RATE, bodies },
  });
  return new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the posting worker exited (${code})`)));
  });
}

/** The bridge's own 202 times: cumulative counts per bucket bound (seconds), from its /metrics. */
async function ackHistogram(bridgeUrl: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${bridgeUrl}/metrics`)).text();
  const buckets = new Map<number, number>();
  const line = /^trestle_webhook_request_duration_seconds_bucket\{(.*)\} (\S+)$/;
  for (const match of text.split("\n").map((l) => line.exec(l))) {
    if (!match?.[1]?.includes('status="202"')) continue;
    const le = /le="([^"]+)"/.exec(match[1])?.[1];
    if (le !== undefined)
      buckets.set(le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), Number(match[2]));
  }
  return buckets;
}

/** The smallest bucket bound (ms) holding `p` % of the observations made between two snapshots. */
function histogramPercentileMs(before: Map<number, number>, after: Map<number, number>, p: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Number.POSITIVE_INFINITY) ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0);
  for (const bound of bounds) {
    const count = (after.get(bound) ?? 0) - (before.get(bound) ?? 0);
    if (count >= (p / 100) * total) return bound * 1000;
  }
  return Number.NaN;
}

/** Collects room messages with their arrival time, syncing in the background. */
class Listener {
  readonly arrivals = new Map<string, number>();
  private running = true;
  private loop?: Promise<void>;
  constructor(
    private readonly client: MatrixTestClient,
    private readonly roomId: string,
  ) {}
  async start(): Promise<void> {
    await this.client.sync(0);
    this.loop = (async () => {
      while (this.running) {
        // A failed sync (a busy homeserver's 5xx, a dropped connection) is retried, not fatal.
        const fresh = await this.client.sync(1000).catch(async (err: unknown) => {
          console.error(`listener: sync failed, retrying: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 200));
          return [];
        });
        const now = performance.timeOrigin + performance.now();
        for (const e of fresh) {
          if (e.room_id === this.roomId && typeof e.content.body === "string")
            this.arrivals.set(e.content.body, now);
        }
        // A long-poll answered at every new event makes Synapse build ~25 sync responses a second,
        // CPU taken from the bridge under test on a small machine. Pausing after each answer batches
        // them; arrival times lose up to this much precision, alike on both paths.
        if (fresh.length > 0) await new Promise((r) => setTimeout(r, LISTENER_PAUSE_MS));
      }
    })();
  }
  async waitFor(bodies: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (bodies.some((b) => !this.arrivals.has(b))) {
      if (Date.now() > deadline)
        throw new Error(`only ${bodies.filter((b) => this.arrivals.has(b)).length}/${bodies.length} arrived`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

const stack = await startLocalStack({
  name: "webhooks-bench",
  logLevel: "warn",
  webhooks: { rateLimit: { perMinute: 1_000_000, burst: 100_000 } },
  metrics: true,
});
const hs = stack.hs;

try {
  const user = await hs.registerUser("bench");
  const owner = new MatrixTestClient(hs.baseUrl, user.userId, user.accessToken);
  const roomWithHook = (name: string) =>
    stack.roomWithHook(owner, { name, template: "{{text}}", msgtype: "m.text" });

  // --- through the bridge: an open-loop load of RATE webhooks/s -----------------------------
  const viaBridge = await roomWithHook("bench");
  const listener = new Listener(
    new MatrixTestClient(hs.baseUrl, user.userId, user.accessToken),
    viaBridge.roomId,
  );
  await listener.start();
  // Warm-up at the offered rate, as for a bridge that has been running: the JIT has optimised the
  // ack path, the connections are open, the ghost is registered and joined. Measuring from cold
  // would time the compiler. Delivered before the measured run, so it starts with an empty queue.
  const warmBodies = Array.from({ length: WARM_UP }, (_, i) => `warm ${i}`);
  await postFromWorker(viaBridge.url, warmBodies);
  await listener.waitFor(warmBodies, 300_000);

  const total = RATE * SECONDS;
  const bodies = Array.from({ length: total }, (_, i) => `via bridge ${i}`);
  const histogramBefore = await ackHistogram(stack.bridge.url);
  const posted = await postFromWorker(viaBridge.url, bodies);
  const histogramAfter = await ackHistogram(stack.bridge.url);
  await listener.waitFor(bodies, 300_000);
  const start = posted.sentAt[0] ?? 0;
  const bridgeLast = Math.max(...bodies.map((b) => listener.arrivals.get(b)!));
  const bridgeLatencies = bodies.map((b, i) => listener.arrivals.get(b)! - posted.sentAt[i]!);
  await listener.stop();

  // --- the ceiling: the same messages straight to Synapse by a plain client ---------------
  // One at a time, in order, as a client that wants its messages ordered sends them.
  // Into the same room: the bot is in it, so Synapse pushes each message to the bridge as it
  // does for webhooks; the difference is then what the bridge adds, not what a bridged room costs.
  const directRoom = viaBridge.roomId;
  const direct = new Listener(new MatrixTestClient(hs.baseUrl, user.userId, user.accessToken), directRoom);
  await direct.start();
  const sender = new MatrixTestClient(hs.baseUrl, user.userId, user.accessToken);
  const directBodies = Array.from({ length: total }, (_, i) => `direct ${i}`);
  const directSent = new Map<string, number>();
  const epochNow = () => performance.timeOrigin + performance.now();
  const directStart = epochNow();
  for (const body of directBodies) {
    directSent.set(body, epochNow());
    await sender.sendMessage(directRoom, body);
  }
  await direct.waitFor(directBodies, 60_000);
  const directLast = Math.max(...directBodies.map((b) => direct.arrivals.get(b)!));
  const directLatencies = directBodies.map((b) => direct.arrivals.get(b)! - directSent.get(b)!);
  await direct.stop();

  const accepted = posted.status.filter((status) => status === 202).length;
  const ackMs = posted.ackMs;
  const deliveredPerSecond = total / ((bridgeLast - start) / 1000);
  const ceilingPerSecond = total / ((directLast - directStart) / 1000);
  const fmt = (n: number, d = 1) => n.toFixed(d);

  console.log(
    `\n### Webhooks into a real Synapse room (${total} messages, offered at ${RATE}/s, Synapse ${stack.synapseVersion})\n`,
  );
  console.log(
    "| path | accepted/s | ack p50 ms | ack p99 ms | delivered/s | end-to-end p50 ms | end-to-end p99 ms |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  console.log(
    `| trestle-webhooks | ${fmt(accepted / posted.seconds, 0)} | ${fmt(percentile(ackMs, 50), 2)} | ${fmt(percentile(ackMs, 99), 2)} | ${fmt(deliveredPerSecond)} | ${fmt(percentile(bridgeLatencies, 50), 0)} | ${fmt(percentile(bridgeLatencies, 99), 0)} |`,
  );
  console.log(
    `| plain client → Synapse (ceiling) | – | – | – | ${fmt(ceilingPerSecond)} | ${fmt(percentile(directLatencies, 50), 0)} | ${fmt(percentile(directLatencies, 99), 0)} |`,
  );
  console.log(
    `\nInside the bridge (routing to response, its \`trestle_webhook_request_duration_seconds\` histogram): p50 ≤ ${histogramPercentileMs(histogramBefore, histogramAfter, 50)} ms, p99 ≤ ${histogramPercentileMs(histogramBefore, histogramAfter, 99)} ms. The rest of the ack time is the HTTP exchange and waiting for a CPU.`,
  );
  console.log(
    `\naccepted ${accepted}/${total} (${total - accepted} not 202); delivered/s is ${fmt((100 * deliveredPerSecond) / ceilingPerSecond, 0)} % of the ceiling (target ≥ 80 %); ack target ≥ 1,000/s with p99 < 20 ms.`,
  );
} finally {
  await stack.stop();
}
