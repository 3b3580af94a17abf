import { createHash } from "node:crypto";
import { Agent, request } from "node:http";

/**
 * An event id as Synapse makes them for room versions 4 and later: `$` and the event's reference
 * hash, 43 characters of unpadded URL-safe base64. Unique per process and `n`.
 */
function eventId(n: number): string {
  return `$${createHash("sha256").update(`${process.pid}:${n}`).digest("base64url")}`;
}

/** Synthetic transactions shaped like Synapse's: `eventsPerTxn` messages spread over `rooms` rooms. */
export function makeTransaction(seq: number, eventsPerTxn: number, rooms: number): string {
  const events = [];
  for (let i = 0; i < eventsPerTxn; i++) {
    const n = seq * eventsPerTxn + i;
    events.push({
      type: "m.room.message",
      event_id: eventId(n),
      room_id: `!room${n % rooms}:bench.test`,
      sender: `@user${n % 97}:bench.test`,
      origin_server_ts: Date.now(),
      content: { msgtype: "m.text", body: `message ${n} ${"x".repeat(80)}` },
      unsigned: { age: 1 },
    });
  }
  return JSON.stringify({ events });
}

/** What one run of load measured, before summarising; runs can be merged (see {@link summarise}). */
export interface LoadSample {
  latencies: number[];
  errors: number;
  elapsedMs: number;
  eventsPerTxn: number;
}

/** Merges runs of load against one server into one result: their events over their summed time. */
export function summarise(samples: readonly LoadSample[]): LoadResult {
  const latencies = samples.flatMap((sample) => sample.latencies);
  const sorted = latencies.sort((a, b) => a - b);
  const elapsedMs = samples.reduce((sum, sample) => sum + sample.elapsedMs, 0);
  const events = samples.reduce((sum, sample) => sum + sample.latencies.length * sample.eventsPerTxn, 0);
  return {
    transactions: latencies.length,
    events,
    seconds: elapsedMs / 1000,
    eventsPerSecond: events / (elapsedMs / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: samples.reduce((sum, sample) => sum + sample.errors, 0),
  };
}

export interface LoadResult {
  transactions: number;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Sends transactions to `PUT /_matrix/app/v1/transactions/{txnId}` over one keep-alive agent. */
export class TransactionLoad {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private seq = 0;
  /** Transactions sent: each gets its own txnId, as from a homeserver. */
  private sent = 0;

  constructor(
    private readonly port: number,
    private readonly hsToken: string,
    private readonly eventsPerTxn = 100,
    private readonly rooms = 50,
  ) {}

  private put(body: Buffer): Promise<{ ms: number; ok: boolean }> {
    const txnId = `bench-${process.pid}-${this.sent++}`;
    const start = performance.now();
    return new Promise((resolve) => {
      const req = request(
        {
          agent: this.agent,
          host: "127.0.0.1",
          port: this.port,
          method: "PUT",
          path: `/_matrix/app/v1/transactions/${txnId}`,
          headers: {
            authorization: `Bearer ${this.hsToken}`,
            "content-type": "application/json",
            "content-length": body.byteLength,
          },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ ms: performance.now() - start, ok: res.statusCode === 200 }));
        },
      );
      req.on("error", () => resolve({ ms: performance.now() - start, ok: false }));
      req.end(body);
    });
  }

  /**
   * The bodies of the next `count` transactions, built and encoded before the clock starts:
   * serialising a transaction costs the load generator about as much CPU as parsing it costs the
   * server, and on a small machine that would measure the client as much as the server. Encoded as
   * bytes for the same reason: a string body is encoded to UTF-8 again on every send.
   */
  private prepare(count: number): Buffer[] {
    return Array.from({ length: count }, () =>
      Buffer.from(makeTransaction(this.seq++, this.eventsPerTxn, this.rooms)),
    );
  }

  /**
   * As many transactions as the server takes, `concurrency` in flight (Synapse sends one at a
   * time). With `settle`, the first `settle` answers are not counted: the sample starts at the
   * last of them (and `onSettled` is called then), once the server has finished whatever the
   * previous load left it and runs in its steady state.
   */
  async closedLoop(
    transactions: number,
    concurrency: number,
    options: { settle?: number; onSettled?: () => void } = {},
  ): Promise<LoadSample> {
    const settle = Math.min(options.settle ?? 0, transactions - 1);
    const latencies: number[] = [];
    let errors = 0;
    let answered = 0;
    const bodies = this.prepare(transactions);
    let next = 0;
    let start = performance.now();
    if (settle === 0) options.onSettled?.();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++] as Buffer;
          const { ms, ok } = await this.put(body);
          // Every failure counts, settling or not.
          if (!ok) errors++;
          answered += 1;
          if (answered <= settle) {
            if (answered === settle) {
              start = performance.now();
              options.onSettled?.();
            }
            continue;
          }
          latencies.push(ms);
        }
      }),
    );
    return this.result(latencies, errors, performance.now() - start);
  }

  /** A fixed offered load: one transaction every `1000 / txnPerSecond` ms, for `seconds`. */
  async openLoop(txnPerSecond: number, seconds: number): Promise<LoadSample> {
    const latencies: number[] = [];
    let errors = 0;
    const total = Math.round(txnPerSecond * seconds);
    const bodies = this.prepare(total);
    const interval = 1000 / txnPerSecond;
    const start = performance.now();
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const body = bodies[i] as Buffer;
      inFlight.push(
        this.put(body).then(({ ms, ok }) => {
          latencies.push(ms);
          if (!ok) errors++;
        }),
      );
    }
    await Promise.all(inFlight);
    // Over the whole offered span: the last transaction is sent one interval before its end.
    return this.result(latencies, errors, Math.max(performance.now() - start, total * interval));
  }

  close(): void {
    this.agent.destroy();
  }

  private result(latencies: number[], errors: number, elapsedMs: number): LoadSample {
    return { latencies, errors, elapsedMs, eventsPerTxn: this.eventsPerTxn };
  }
}
