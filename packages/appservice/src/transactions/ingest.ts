import { LRUCache } from "lru-cache";
import { Registry } from "prom-client";
import { MatrixError } from "../errors.js";
import { hashedIdLength } from "../event-ids.js";
import { Deadline } from "../lifecycle/deadline.js";
import { type Logger, silentLogger } from "../logging.js";
import type { TransactionStore } from "../stores/types.js";
import type { DispatchableEvent, EventDispatcher } from "./dispatcher.js";
import { createIngestMetrics, type IngestMetrics } from "./metrics.js";
import type { ParsedTransaction } from "./types.js";

/** The parts of a parsed transaction the ingest reads; {@link ParsedTransaction} fits. */
export interface IngestibleTransaction {
  events: readonly DispatchableEvent[];
  ephemeral?: readonly unknown[];
  toDevice?: readonly unknown[];
  deviceLists?: { changed: readonly string[]; left: readonly string[] };
  deviceOneTimeKeysCount?: Readonly<Record<string, unknown>>;
  deviceUnusedFallbackKeyTypes?: Readonly<Record<string, unknown>>;
}

export type EventOf<T extends IngestibleTransaction> = T["events"][number];

export interface DeviceKeyCounts<T extends IngestibleTransaction> {
  oneTimeKeysCount: NonNullable<T["deviceOneTimeKeysCount"]>;
  unusedFallbackKeyTypes: NonNullable<T["deviceUnusedFallbackKeyTypes"]>;
}

/**
 * Receivers of a transaction's non-room data; the crypto layer plugs in here. Each is called only
 * when its part is non-empty, and awaited before the transaction is acknowledged.
 */
export interface TransactionSink<T extends IngestibleTransaction = ParsedTransaction> {
  onToDevice?(events: NonNullable<T["toDevice"]>, txnId: string): Promise<void> | void;
  onDeviceLists?(lists: NonNullable<T["deviceLists"]>, txnId: string): Promise<void> | void;
  onDeviceKeyCounts?(counts: DeviceKeyCounts<T>, txnId: string): Promise<void> | void;
  onEphemeral?(events: NonNullable<T["ephemeral"]>, txnId: string): Promise<void> | void;
}

export interface TransactionIngestOptions<T extends IngestibleTransaction> {
  /** Started and stopped by the ingest; its transaction store is where transactions are persisted. */
  dispatcher: EventDispatcher<EventOf<T>>;
  sink?: TransactionSink<T>;
  logger?: Logger;
  /** Metrics go here; a private registry when omitted. */
  registry?: Registry;
  /** Above this many queued events, acknowledging waits for the queue to drain (default 10,000). */
  maxPendingEvents?: number;
  /** ...down to this many (default half of `maxPendingEvents`). */
  lowWaterMark?: number;
  /** Transaction ids remembered for de-duplication (default 1,000). */
  txnIdCacheSize?: number;
}

export interface IngestStopOptions {
  /** Handle every queued event before stopping, instead of only those already running. */
  drain?: boolean;
  /**
   * Upper bound on the whole stop: draining, then waiting for running handlers (default 10 s;
   * 30 s with `drain`). What is not handled by then stays pending in the store.
   */
  timeoutMs?: number;
}

/**
 * The ingest is not accepting transactions (not started, or shutting down). HTTP 503, so the
 * homeserver keeps the transaction and retries it later.
 */
export class IngestUnavailableError extends MatrixError {
  constructor(state: string) {
    super(503, "M_UNKNOWN", `Not accepting transactions: ${state}`);
  }
}

/**
 * Where a transaction came from, when the transport has it: lets the store persist the body's
 * text instead of serialising the events again.
 */
export interface TransactionSource {
  /** The request body exactly as received: JSON text, or its UTF-8 bytes. */
  body: string | Uint8Array;
  /**
   * Parsing kept every room event unchanged and dropped none, so the body's `events` parse to
   * exactly the transaction's events.
   */
  eventsAsSent: boolean;
}

interface SeenTransaction {
  fingerprint: string;
  done: Promise<void>;
}

type State = "idle" | "starting" | "running" | "stopping" | "stopped";

/**
 * Turns a pushed transaction into durable work. `accept` resolves, and the HTTP layer may answer
 * 200, only once:
 * 1. the room events are persisted in the transaction store (one write for the transaction);
 * 2. the sink has taken the to-device messages, device lists and key counts, then the ephemeral
 *    events. These are not persisted: a crash before `accept` resolves means no 200, so the
 *    homeserver resends them; after it resolves they are the sink's to keep. The crypto data goes
 *    before the room events are queued so keys arrive before the events needing them;
 * 3. the queue is back under `maxPendingEvents`, or has drained to the low-water mark. Waiting
 *    delays the 200, and the homeserver (which sends one transaction at a time) slows down.
 *
 * Duplicates: a transaction id seen recently with the same content returns the first attempt's
 * promise. A reused id with different content (the homeserver restarted its counter) is accepted
 * as new. Events already handled are skipped by the dispatcher whatever the transaction id.
 */
export class TransactionIngest<T extends IngestibleTransaction = ParsedTransaction> {
  private readonly dispatcher: EventDispatcher<EventOf<T>>;
  private readonly transactions: TransactionStore<EventOf<T>>;
  private readonly sink: TransactionSink<T>;
  private readonly logger: Logger;
  private readonly metrics: IngestMetrics;
  private readonly maxPendingEvents: number;
  private readonly lowWaterMark: number;
  private readonly seen: LRUCache<string, SeenTransaction>;
  private state: State = "idle";
  /** Persisting and queueing run one transaction at a time so queue order is persisted order. */
  private serial: Promise<unknown> = Promise.resolve();
  /** Acknowledgements held back by back-pressure: released when the queue drains, or on stop. */
  private readonly heldAcks = new Set<() => void>();
  /** `stopAccepting` was called (possibly while starting). */
  private acceptingStopped = false;
  private stopping: Promise<void> | undefined;

  constructor(options: TransactionIngestOptions<T>) {
    this.dispatcher = options.dispatcher;
    this.transactions = options.dispatcher.transactions;
    this.sink = options.sink ?? {};
    this.logger = (options.logger ?? silentLogger()).child({ component: "ingest" });
    this.metrics = createIngestMetrics(options.registry ?? new Registry());
    this.maxPendingEvents = Math.max(1, options.maxPendingEvents ?? 10_000);
    this.lowWaterMark = Math.min(
      this.maxPendingEvents,
      Math.max(0, options.lowWaterMark ?? Math.floor(this.maxPendingEvents / 2)),
    );
    this.seen = new LRUCache({ max: Math.max(1, options.txnIdCacheSize ?? 1_000) });
  }

  /** Queues what a previous run left pending, then accepts transactions. */
  async start(): Promise<void> {
    if (this.state !== "idle") throw new IngestUnavailableError(this.state);
    this.state = "starting";
    try {
      await this.dispatcher.start();
    } catch (err) {
      this.state = "idle";
      throw err;
    }
    // A stop that came while starting wins.
    this.state = this.acceptingStopped ? "stopping" : "running";
  }

  /**
   * `source`, when given, may be persisted instead of the parsed events (when its events are as
   * sent and the body carries no to-device messages, which stay out of the queue file).
   */
  accept(txnId: string, txn: T, source?: TransactionSource): Promise<void> {
    if (this.state !== "running") return Promise.reject(new IngestUnavailableError(this.state));
    const fingerprint = fingerprintOf(txn);
    const seen = this.seen.get(txnId);
    if (seen?.fingerprint === fingerprint) {
      this.metrics.transactions.inc({ outcome: "duplicate" });
      this.logger.debug({ txnId }, "Duplicate transaction");
      return seen.done;
    }
    if (seen) {
      this.logger.warn({ txnId }, "Transaction id reused with different content; accepting it as new");
    }
    const persisted = this.serial.then(() => this.persistAndQueue(txnId, txn, source));
    this.serial = persisted.catch(() => {});
    const done = persisted.then(() => this.applyBackPressure());
    this.seen.set(txnId, { fingerprint, done });
    // A failed attempt must not be replayed as a success to the homeserver's retry.
    done.catch(() => {
      if (this.seen.get(txnId)?.done === done) this.seen.delete(txnId);
    });
    return done;
  }

  /**
   * Refuses new transactions, lets those being accepted finish, then stops the dispatcher: events
   * already running finish (or, with `drain`, every queued event), the rest stays pending in the
   * store for the next start. The stores are not closed: whoever opened them closes them after this.
   */
  stop(options: IngestStopOptions = {}): Promise<void> {
    // A second call waits for the first instead of returning while it still drains.
    this.stopping ??= this.stopOnce(options);
    return this.stopping;
  }

  private async stopOnce(options: IngestStopOptions): Promise<void> {
    if (this.state === "stopped") return;
    const deadline = new Deadline(options.timeoutMs ?? (options.drain ? 30_000 : 10_000));
    this.stopAccepting();
    this.state = "stopping";
    // A transaction being persisted may wait on a sink that never answers: not past the deadline.
    if (!(await deadline.within(this.serial)))
      this.logger.warn("Stopping while a transaction is still being stored; the homeserver will resend it");
    if (options.drain) {
      const drained = await this.dispatcher.drain(deadline.remaining());
      if (!drained)
        this.logger.warn({ depth: this.dispatcher.depth }, "Stopping before the event queue drained");
    }
    await this.dispatcher.stop(deadline.remaining());
    this.state = "stopped";
  }

  /**
   * Refuses new transactions from now on (503, so the homeserver keeps them for later), and lets
   * those waiting on back-pressure be acknowledged: they are stored already, and their events are
   * handled after the restart if not before. The first step of {@link stop}, which calls it.
   */
  stopAccepting(): void {
    this.acceptingStopped = true;
    if (this.state === "running") this.state = "stopping";
    // Each removes itself from the set.
    for (const release of [...this.heldAcks]) release();
  }

  private async persistAndQueue(txnId: string, txn: T, source: TransactionSource | undefined): Promise<void> {
    // Checked again: stop() may have begun while this waited its turn.
    if (this.state !== "running") throw new IngestUnavailableError(this.state);
    const body = source?.eventsAsSent && !txn.toDevice?.length ? source.body : undefined;
    const pending =
      txn.events.length > 0
        ? await this.transactions.append(
            txnId,
            txn.events as EventOf<T>[],
            body === undefined ? undefined : { body },
          )
        : undefined;
    const { sink } = this;
    const toDevice = txn.toDevice;
    if (sink.onToDevice && toDevice && toDevice.length > 0) {
      await this.deliver("to_device", txnId, () => sink.onToDevice?.(toDevice, txnId));
    }
    const lists = txn.deviceLists;
    if (sink.onDeviceLists && lists && (lists.changed.length > 0 || lists.left.length > 0)) {
      await this.deliver("device_lists", txnId, () => sink.onDeviceLists?.(lists, txnId));
    }
    const oneTimeKeysCount = txn.deviceOneTimeKeysCount ?? {};
    const unusedFallbackKeyTypes = txn.deviceUnusedFallbackKeyTypes ?? {};
    if (sink.onDeviceKeyCounts && (!isEmpty(oneTimeKeysCount) || !isEmpty(unusedFallbackKeyTypes))) {
      const counts = { oneTimeKeysCount, unusedFallbackKeyTypes } as DeviceKeyCounts<T>;
      await this.deliver("device_key_counts", txnId, () => sink.onDeviceKeyCounts?.(counts, txnId));
    }
    if (pending) this.dispatcher.enqueue(pending);
    const ephemeral = txn.ephemeral;
    if (sink.onEphemeral && ephemeral && ephemeral.length > 0) {
      await this.deliver("ephemeral", txnId, () => sink.onEphemeral?.(ephemeral, txnId));
    }
    this.metrics.transactions.inc({ outcome: "accepted" });
    this.logger.debug({ txnId, events: txn.events.length, seq: pending?.seq }, "Transaction accepted");
  }

  /**
   * A sink failure is logged and counted but does not fail the transaction: failing it would make
   * the homeserver resend it forever while the sink keeps failing, blocking every room.
   */
  private async deliver(sinkName: string, txnId: string, call: () => Promise<void> | void): Promise<void> {
    try {
      await call();
    } catch (err) {
      this.metrics.sinkFailures.inc({ sink: sinkName });
      this.logger.error({ err, txnId, sink: sinkName }, "Transaction sink failed");
    }
  }

  private async applyBackPressure(): Promise<void> {
    if (this.dispatcher.depth <= this.maxPendingEvents) return;
    this.metrics.backPressureWaits.inc();
    this.logger.debug(
      { depth: this.dispatcher.depth, lowWaterMark: this.lowWaterMark },
      "Event queue full; delaying acknowledgement",
    );
    if (this.acceptingStopped) return;
    await new Promise<void>((resolve) => {
      const release = () => {
        if (this.heldAcks.delete(release)) resolve();
      };
      this.heldAcks.add(release);
      void this.dispatcher.waitForDepthAtMost(this.lowWaterMark).then(release);
    });
  }
}

function isEmpty(record: Readonly<Record<string, unknown>>): boolean {
  for (const _ in record) return false;
  return true;
}

/**
 * Identifies a transaction's content: event ids stand for the events, and the non-room parts,
 * usually empty, are serialised whole only when present. An id that is a reference hash (room
 * versions 3 and later: `$` and base64, no `:`) counts by its length and first 16 characters,
 * as random as the rest of it; this is on the path every acknowledgement waits for. Older ids,
 * which servers make as they like, count whole. Two 32-bit FNV-1a lanes in JavaScript:
 * it tells a resent transaction from a different one reusing its id (the homeserver restarted its
 * counter), which only the authenticated homeserver sends, so it need not resist forgery, and it
 * costs a tenth of a native SHA-1 call on the ids joined into one string.
 */
function fingerprintOf(txn: IngestibleTransaction): string {
  const lanes = new FingerprintLanes();
  for (const event of txn.events) lanes.addId(event.event_id);
  const rest = [
    txn.ephemeral,
    txn.toDevice,
    txn.deviceLists,
    txn.deviceOneTimeKeysCount,
    txn.deviceUnusedFallbackKeyTypes,
  ];
  if (rest.some((part) => part !== undefined && !isEmptyPart(part))) lanes.add(JSON.stringify(rest));
  return lanes.digest(txn.events.length);
}

class FingerprintLanes {
  private a = 0x811c9dc5;
  private b = 0x01000193;

  add(text: string): void {
    // A newline after it, so the texts "ab", "c" and "a", "bc" differ.
    this.mix(text, text.length, 0x0a);
  }

  /** An event id: see {@link fingerprintOf}. Its length ends it, as it may be hashed in part. */
  addId(id: string): void {
    this.mix(id, hashedIdLength(id), id.length);
  }

  /** The first `end` characters of `text`, then `terminator`. */
  private mix(text: string, end: number, terminator: number): void {
    let { a, b } = this;
    for (let i = 0; i < end; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    this.a = Math.imul(a ^ terminator, 0x01000193);
    this.b = Math.imul(b ^ terminator, 0x5bd1e995) ^ (b >>> 15);
  }

  digest(count: number): string {
    return `${count}:${(this.a >>> 0).toString(36)}:${(this.b >>> 0).toString(36)}`;
  }
}

function isEmptyPart(part: object): boolean {
  if (Array.isArray(part)) return part.length === 0;
  if ("changed" in part && "left" in part) {
    const lists = part as { changed: readonly unknown[]; left: readonly unknown[] };
    return lists.changed.length === 0 && lists.left.length === 0;
  }
  return isEmpty(part as Record<string, unknown>);
}
