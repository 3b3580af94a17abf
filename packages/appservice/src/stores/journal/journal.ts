import path from "node:path";
import { isJsonObject, type JsonObject } from "../../json.js";
import type { Logger } from "../../logging.js";
import { StoreClosedError, StoreCorruptError, StoreError, StoreValueError } from "../errors.js";
import { toJson } from "../nedb/file.js";
import { DEFAULT_PROCESSED_WINDOW } from "../nedb/processed.js";
import type {
  AppendOptions,
  Completion,
  IdClaim,
  PendingTransaction,
  ProcessedEventStore,
  TransactionStore,
} from "../types.js";
import { AppendFile, type Content, parseRecordLine, readLines, removeIfExists } from "./file.js";
import { IdWindow } from "./window.js";

/**
 * Written as the first record; a journal from a newer format is refused rather than misread.
 * Version 2 leaves the ids of done transactions implicit in their done-mark (see `Completion`):
 * a version-1 reader would drop them from the de-duplication window, so it must refuse instead.
 * This version reads both.
 */
export const JOURNAL_FORMAT_VERSION = 2;
export const DEFAULT_JOURNAL_FILE = "transactions.journal";
/**
 * Compact once the file has grown this much since the last compaction. Every event passes through
 * the journal about twice (its transaction, then its id), so at 100,000 events/s this is a
 * compaction every couple of seconds; each rewrites only the pending transactions and the id window.
 */
export const DEFAULT_JOURNAL_COMPACT_AFTER_BYTES = 64 * 1024 * 1024;
/** Ids per record when the window is rewritten, to keep lines a reasonable length. */
const IDS_PER_RECORD = 1_000;

export interface TransactionJournalOptions<E = unknown> {
  /** Directory of the journal file; required unless `inMemory`. Created if missing. */
  dataDir?: string;
  /** Nothing touches the disk: for tests. */
  inMemory?: boolean;
  logger: Logger;
  /** File name under `dataDir` (default `transactions.journal`). */
  fileName?: string;
  /**
   * How many event ids the de-duplication window holds (default 10,000): the last this many ids
   * handled or being handled. See `NedbStoresOptions`.
   */
  processedEventWindow?: number;
  /** Unreadable lines tolerated on open, a torn last line included (default 1: what a crash can leave). */
  maxCorruptLines?: number;
  /** See {@link DEFAULT_JOURNAL_COMPACT_AFTER_BYTES}. */
  compactAfterBytes?: number;
  /**
   * Work carried over from another store (the NeDB files of an earlier version): queued after
   * what the journal already holds, and written into it by the compaction on open.
   */
  seed?: { transactions: readonly PendingTransaction<E>[]; processedEventIds: readonly string[] };
}

interface PendingEntry<E> {
  seq: number;
  txnId: string;
  receivedAt: number;
  /**
   * The record as written, newline included; compaction copies it unchanged. Undefined once the
   * transaction is handled (see `releaseHandled`): it is then left out of compactions.
   */
  record: Content | undefined;
  /**
   * Only without a file, or until handed out after a replay. Otherwise `pending()` parses the
   * record again: holding every event here until its done-mark would keep them alive well past
   * their handling, which the garbage collector pays for on every transaction.
   */
  events: E[] | undefined;
}

/**
 * The durable queue between acknowledging a transaction and handling its events, and the window
 * of handled event ids, in one append-only journal file (see docs/architecture.md, "Transaction
 * journal"). Records, one JSON object a line:
 *
 * - `{"op":"journal","version":2,"seq":N}`: first line; `seq` is the last sequence number issued.
 * - `{"op":"txn","seq":N,"txnId":"…","at":ms,"events":[…]}`: an accepted transaction; or with
 *   `"body":{…}` instead of `events`, the homeserver's body verbatim, its events under `events`.
 * - `{"op":"done","seqs":[…],"ids":[…]}`: transactions whose events were all handled, and handled
 *   event ids of other transactions (`ids` optional). The ids of the done transactions themselves
 *   are implied: replaying the record adds them to the window (see `Completion`).
 * - `{"op":"ids","ids":[…]}`: handled event ids, for de-duplication.
 *
 * Everything live is also held in memory, so reads never touch the disk. Writes are synchronous
 * appends (see {@link AppendFile}); the file is compacted on open, on close, and once it has grown
 * by `compactAfterBytes`.
 */
export class TransactionJournal<E = unknown> implements TransactionStore<E> {
  /** The window of handled ids, persisted in this journal. Closing it closes the journal. */
  readonly processedEvents: JournalProcessedEventStore;
  private file: AppendFile | undefined;
  private readonly pendingTxns = new Map<number, PendingEntry<E>>();
  private lastSeq = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly name: string,
    private readonly window: IdWindow,
    private readonly logger: Logger,
    private readonly compactAfterBytes: number,
  ) {
    this.processedEvents = new JournalProcessedEventStore(this, window);
  }

  static async open<E = unknown>(options: TransactionJournalOptions<E>): Promise<TransactionJournal<E>> {
    const fileName = options.fileName ?? DEFAULT_JOURNAL_FILE;
    const logger = options.logger.child({ store: fileName });
    const window = new IdWindow(Math.max(1, options.processedEventWindow ?? DEFAULT_PROCESSED_WINDOW));
    const journal = new TransactionJournal<E>(
      fileName,
      window,
      logger,
      Math.max(1, options.compactAfterBytes ?? DEFAULT_JOURNAL_COMPACT_AFTER_BYTES),
    );
    if (options.inMemory) {
      journal.applySeed(options.seed);
      return journal;
    }
    if (!options.dataDir) throw new StoreValueError("The transaction journal needs a dataDir or inMemory");
    const filename = path.join(options.dataDir, fileName);
    // Left by a compaction cut short; the journal itself is always whole, so it is simply dropped.
    removeIfExists(`${filename}.tmp`);
    const corrupt: number[] = [];
    const scan = await readLines(filename, (line, lineNo) => {
      if (line !== "" && !journal.replay(line)) corrupt.push(lineNo);
    });
    if (scan.tornTail) corrupt.push(scan.lines + 1);
    const maxCorrupt = options.maxCorruptLines ?? 1;
    const totalLines = scan.lines + (scan.tornTail ? 1 : 0);
    if (corrupt.length > maxCorrupt) throw new StoreCorruptError(filename, corrupt, totalLines, maxCorrupt);
    if (corrupt.length > 0) {
      logger.warn(
        { file: filename, corruptLines: corrupt, totalLines },
        "Dropping unreadable journal lines, most likely a write cut short by a crash",
      );
    }
    journal.applySeed(options.seed);
    // Rewriting on open drops a torn tail before anything is appended after it.
    journal.file = await AppendFile.create(
      filename,
      { afterBytes: journal.compactAfterBytes, snapshot: () => journal.snapshot() },
      logger,
    );
    return journal;
  }

  append(txnId: string, events: readonly E[], options?: AppendOptions): Promise<PendingTransaction<E>> {
    try {
      return Promise.resolve(this.appendNow(txnId, events, options?.body));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Every transaction not yet removed, oldest first. One released as handled (`releaseHandled`)
   * whose done-mark never came (its write failed as the dispatcher stopped) comes without events,
   * so the next dispatcher writes the mark at once instead of handling it again.
   */
  async pending(): Promise<PendingTransaction<E>[]> {
    this.assertOpen();
    const txns: PendingTransaction<E>[] = [];
    for (const entry of this.pendingTxns.values()) {
      const events =
        entry.record === undefined
          ? []
          : (entry.events ?? (eventsOf(JSON.parse(contentText(entry.record))) as E[] | undefined) ?? []);
      // Without a file there is no record to parse again: the events stay.
      if (this.file) entry.events = undefined;
      txns.push({ seq: entry.seq, txnId: entry.txnId, events: [...events], receivedAt: entry.receivedAt });
    }
    return txns.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Drops a handled transaction's record (mostly the request body, ~33 KB for 100 events) before
   * its done-mark: held until the completions' flush it outlived young-generation collections,
   * and compactions in between copied it. A crash before the done-mark replays it from the file;
   * a compaction before it leaves it out: its events were handled, and their ids are in the
   * window it writes unless evicted since (or held by a transaction still pending, for an event
   * skipped as a copy of one still running).
   */
  releaseHandled(seq: number): void {
    const entry = this.pendingTxns.get(seq);
    if (entry && this.file) entry.record = undefined;
  }

  async remove(seqs: readonly number[]): Promise<void> {
    this.assertOpen();
    const known = seqs.filter((seq) => this.pendingTxns.has(seq));
    if (known.length === 0) return;
    if (this.file) this.write(`{"op":"done","seqs":${JSON.stringify(known)}}\n`);
    for (const seq of known) this.pendingTxns.delete(seq);
  }

  async count(): Promise<number> {
    this.assertOpen();
    return this.pendingTxns.size;
  }

  /**
   * Rewrites the file to what is live now, after any compaction already running (which may predate
   * the last writes). Errors are logged, not thrown: a failed compaction loses nothing.
   */
  async compact(): Promise<void> {
    if (!this.closed) await this.file?.compact();
  }

  /** Compacts, closes the file and refuses further use. Idempotent; closes `processedEvents` too. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.compact();
      this.closed = true;
      this.file?.close();
    })();
    return this.closing;
  }

  assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.name);
  }

  /** Persists handled ids, then adds them to the window. */
  recordProcessed(eventIds: readonly string[]): void {
    this.assertOpen();
    if (eventIds.length === 0) return;
    // Not filtered against the window first: callers pass ids they just found missing from it, and
    // an id written twice is only added once, on replay as here.
    if (this.file) this.write(`{"op":"ids","ids":${JSON.stringify(eventIds)}}\n`);
    // Only after the write: `has` must never claim what a crash could forget.
    for (const id of eventIds) this.window.add(id);
  }

  /** Persists ids claimed and committed through {@link JournalProcessedEventStore}. */
  recordClaimed(eventIds: readonly string[]): void {
    this.assertOpen();
    if (eventIds.length === 0 || !this.file) return;
    this.write(`{"op":"ids","ids":${JSON.stringify(eventIds)}}\n`);
  }

  /**
   * Records a {@link Completion} in one `done` record: the done transactions, and the handled ids
   * of those not done yet (committed in the window already).
   */
  recordCompletion(completion: Completion): void {
    this.assertOpen();
    const { ids } = completion;
    const seqs = completion.seqs.filter((seq) => this.pendingTxns.has(seq));
    if (this.file && (seqs.length > 0 || ids.length > 0)) {
      const idsPart = ids.length > 0 ? `,"ids":${JSON.stringify(ids)}` : "";
      this.write(`{"op":"done","seqs":${JSON.stringify(seqs)}${idsPart}}\n`);
    }
    for (const seq of seqs) this.pendingTxns.delete(seq);
  }

  private appendNow(
    txnId: string,
    events: readonly E[],
    body: string | Uint8Array | undefined,
  ): PendingTransaction<E> {
    this.assertOpen();
    const seq = this.lastSeq + 1;
    const receivedAt = Date.now();
    // In memory there is no file to write or compact: the record is never needed.
    const record = this.file ? txnRecord(seq, txnId, receivedAt, events, body) : "";
    this.write(record);
    this.lastSeq = seq;
    // With a file nothing here keeps the array, so the caller's is handed on as it is; in memory
    // the journal keeps its own copy.
    const handed = this.file ? (events as E[]) : [...events];
    this.pendingTxns.set(seq, {
      seq,
      txnId,
      receivedAt,
      record,
      events: this.file ? undefined : [...events],
    });
    return { seq, txnId, events: handed, receivedAt };
  }

  private write(record: Content): void {
    this.file?.append(record);
  }

  /** The live state as journal content. */
  private snapshot(): Content {
    const parts: (string | Uint8Array)[] = [
      `{"op":"journal","version":${JOURNAL_FORMAT_VERSION},"seq":${this.lastSeq}}\n`,
    ];
    const ids = this.window.toArray();
    for (let i = 0; i < ids.length; i += IDS_PER_RECORD) {
      parts.push(`{"op":"ids","ids":${JSON.stringify(ids.slice(i, i + IDS_PER_RECORD))}}\n`);
    }
    for (const entry of this.pendingTxns.values()) {
      if (entry.record === undefined) continue;
      if (typeof entry.record === "string") parts.push(entry.record);
      else parts.push(...entry.record);
    }
    return parts;
  }

  /** Applies one journal line; false when it is not a record this version can read. */
  private replay(line: string): boolean {
    const record = parseRecordLine(line);
    if (!record) return false;
    switch (record.op) {
      case "txn": {
        const { seq, txnId, at } = record;
        const events = eventsOf(record);
        if (!isSeq(seq) || typeof txnId !== "string" || typeof at !== "number" || !events) return false;
        this.pendingTxns.set(seq, { seq, txnId, receivedAt: at, record: `${line}\n`, events: events as E[] });
        this.lastSeq = Math.max(this.lastSeq, seq);
        return true;
      }
      case "done": {
        const { seqs, ids } = record;
        if (!Array.isArray(seqs) || !seqs.every(isSeq)) return false;
        if (ids !== undefined && !isIdList(ids)) return false;
        for (const id of ids ?? []) this.window.add(id);
        for (const seq of seqs) {
          // Its events' ids were left out of the record (see `Completion`).
          for (const event of this.pendingTxns.get(seq)?.events ?? []) {
            const id = (event as { event_id?: unknown } | null)?.event_id;
            if (typeof id === "string") this.window.add(id);
          }
          this.pendingTxns.delete(seq);
        }
        return true;
      }
      case "ids": {
        if (!isIdList(record.ids)) return false;
        for (const id of record.ids) this.window.add(id);
        return true;
      }
      case "journal": {
        const { version, seq } = record;
        if (typeof version !== "number" || !(seq === 0 || isSeq(seq))) return false;
        if (version > JOURNAL_FORMAT_VERSION) {
          throw new StoreError(
            `${this.name} was written in journal format ${version}; this version reads up to ${JOURNAL_FORMAT_VERSION}`,
          );
        }
        this.lastSeq = Math.max(this.lastSeq, seq);
        return true;
      }
      default:
        return false;
    }
  }

  private applySeed(seed: TransactionJournalOptions<E>["seed"]): void {
    if (!seed) return;
    for (const id of seed.processedEventIds) this.window.add(id);
    for (const txn of seed.transactions) {
      const seq = this.lastSeq + 1;
      const record = txnRecord(seq, txn.txnId, txn.receivedAt, txn.events, undefined);
      this.pendingTxns.set(seq, {
        seq,
        txnId: txn.txnId,
        receivedAt: txn.receivedAt,
        record,
        events: [...txn.events],
      });
      this.lastSeq = seq;
    }
  }
}

/**
 * The processed-id window of a {@link TransactionJournal}. Lookups are in memory; `hasSync` lets
 * the dispatcher skip a promise per event.
 */
export class JournalProcessedEventStore implements ProcessedEventStore {
  constructor(
    private readonly journal: ProcessedIdsHost,
    private readonly window: IdWindow,
  ) {}

  hasSync(eventId: string): boolean {
    this.journal.assertOpen();
    return this.window.has(eventId);
  }

  async has(eventId: string): Promise<boolean> {
    return this.hasSync(eventId);
  }

  claimSync(eventId: string): IdClaim | undefined {
    this.journal.assertOpen();
    return this.window.claim(eventId);
  }

  unclaimSync(eventId: string, claim: IdClaim): void {
    this.window.unclaim(eventId, claim);
  }

  commitSync(eventId: string, claim: IdClaim): void {
    this.window.commit(eventId, claim);
  }

  async addClaimed(eventIds: readonly string[]): Promise<void> {
    this.journal.recordClaimed(eventIds);
  }

  sharesJournalWith(transactions: TransactionStore<unknown>): boolean {
    return (transactions as unknown) === this.journal;
  }

  async complete(completion: Completion): Promise<void> {
    this.journal.recordCompletion(completion);
  }

  async add(eventId: string): Promise<void> {
    this.journal.recordProcessed([eventId]);
  }

  async addMany(eventIds: readonly string[]): Promise<void> {
    this.journal.recordProcessed(eventIds);
  }

  async size(): Promise<number> {
    this.journal.assertOpen();
    return this.window.size;
  }

  /** The remembered ids, oldest first. */
  windowIds(): string[] {
    return this.window.toArray();
  }

  close(): Promise<void> {
    return this.journal.close();
  }
}

/** What the processed-id store needs of its journal. */
interface ProcessedIdsHost {
  assertOpen(): void;
  recordProcessed(eventIds: readonly string[]): void;
  recordClaimed(eventIds: readonly string[]): void;
  recordCompletion(completion: Completion): void;
  close(): Promise<void>;
}

const NEWLINE = 0x0a;
const SPACE = 0x20;
const RECORD_END = "}\n";
const RECORD_END_BYTES: Uint8Array = Buffer.from(RECORD_END);

/**
 * A transaction record. With `body` (see `AppendOptions`) the body saves serialising the events
 * again; as bytes it is written as received, without being encoded again. JSON allows a newline
 * only as whitespace between tokens (never inside a UTF-8 sequence), so replacing one with a space
 * keeps the value and the record on one line.
 */
function txnRecord(
  seq: number,
  txnId: string,
  receivedAt: number,
  events: readonly unknown[],
  body: string | Uint8Array | undefined,
): Content {
  const head = `{"op":"txn","seq":${seq},"txnId":${JSON.stringify(txnId)},"at":${receivedAt},`;
  if (body === undefined) return `${head}"events":${toJson(events, "Transaction events")}${RECORD_END}`;
  if (typeof body === "string")
    return `${head}"body":${body.includes("\n") ? body.replace(/\n/g, " ") : body}${RECORD_END}`;
  let bytes = body;
  if (bytes.indexOf(NEWLINE) !== -1) {
    bytes = new Uint8Array(bytes);
    for (let i = bytes.indexOf(NEWLINE); i !== -1; i = bytes.indexOf(NEWLINE, i + 1)) bytes[i] = SPACE;
  }
  return [`${head}"body":`, bytes, RECORD_END_BYTES];
}

/** A record's text, for parsing it again. */
function contentText(content: Content): string {
  if (typeof content === "string") return content;
  return Buffer.concat(
    content.map((piece) => (typeof piece === "string" ? Buffer.from(piece) : piece)),
  ).toString("utf8");
}

/** A transaction record's events: its `events`, or the `events` of its verbatim `body`. */
function eventsOf(record: JsonObject): unknown[] | undefined {
  if (Array.isArray(record.events)) return record.events;
  if (isJsonObject(record.body) && Array.isArray(record.body.events)) return record.body.events;
  return undefined;
}

function isIdList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((id) => typeof id === "string");
}

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}
