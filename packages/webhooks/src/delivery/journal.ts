import { existsSync } from "node:fs";
import { rename } from "node:fs/promises";
import path from "node:path";
import {
  AppendFile,
  isJsonObject,
  type JsonObject,
  type Logger,
  parseRecordLine,
  readLines,
  StoreCorruptError,
  StoreError,
} from "@trestle/appservice";
import type { WebhookHeaders } from "../rendering/types.js";
import type { DeliveryFailure, DeliveryJob, FailedDelivery } from "./job.js";
import { readLegacyNedbJobs } from "./legacy-nedb.js";

export const DELIVERY_JOURNAL_FILE = "deliveries.journal";
/** The NeDB datafile of earlier versions; imported once, then renamed with {@link IMPORTED_SUFFIX}. */
export const LEGACY_DELIVERY_FILE = "deliveries.db";
export const IMPORTED_SUFFIX = ".imported";
/** Written as the first record; a journal from a newer format is refused rather than misread. */
export const DELIVERY_JOURNAL_VERSION = 1;
/** Rewrite the file once it has grown this much since the last rewrite (default 32 MiB). */
export const DEFAULT_DELIVERY_COMPACT_AFTER_BYTES = 32 * 1024 * 1024;

export interface DeliveryJournalOptions {
  /** Directory of `deliveries.journal`; required unless `inMemory`. */
  dataDir?: string;
  /** Keep nothing on disk (tests). */
  inMemory?: boolean;
  logger: Logger;
  compactAfterBytes?: number;
}

/** A dead letter without its message: what the per-room cap needs to pick and log. */
export interface DeadLetterSummary {
  id: string;
  hookId: string;
  failure: DeliveryFailure;
}

/** One stored job: its record as written, so compaction copies it instead of serialising it again. */
interface StoredJob {
  id: string;
  hookId: string;
  roomId: string;
  seq: number;
  receivedAt: number;
  /** The `job` record, newline included. Empty in memory-only mode, where `job` is kept instead. */
  record: string;
  job: DeliveryJob | undefined;
  failure: DeliveryFailure | undefined;
}

/**
 * The delivery queue's persistence: one append-only journal, `<dataDir>/deliveries.journal`, one
 * JSON record a line:
 *
 * - `{"op":"journal","version":1}`: first line.
 * - `{"op":"job","job":{id,hookId,roomId,seq,receivedAt,payload,headers,deliveryKey?}}`: accepted.
 * - `{"op":"done","id"}`: delivered, skipped or dropped; the job is gone.
 * - `{"op":"failed","id","failure"}`: dead-lettered, kept for an operator.
 * - `{"op":"requeue","id","seq"}`: a dead letter put back in line with a new seq.
 *
 * Every write is one synchronous `write(2)` to a file kept open (the core's `AppendFile`), so when
 * `insert` returns the job is in the page cache and survives the process being killed; there is
 * no per-write fsync (a power loss can lose the last seconds). Synchronous on purpose: on the ack
 * path an append costs microseconds, where an asynchronous write costs a thread-pool round trip
 * that a busy machine stretches into milliseconds. A crash can cut short only the last line,
 * which is dropped on open with a warning; more damage than that is refused.
 *
 * Live jobs are held in memory, as NeDB held them before. The file is rewritten on open, on close
 * and once it grew by `compactAfterBytes`.
 */
export class DeliveryJournal {
  private readonly jobs = new Map<string, StoredJob>();
  private file: AppendFile | undefined;
  private closed = false;

  private constructor(
    private readonly logger: Logger,
    private readonly compactAfterBytes: number,
    /** No file: jobs are kept as objects, and no record is ever built. */
    private readonly inMemory: boolean,
  ) {}

  static async open(options: DeliveryJournalOptions): Promise<DeliveryJournal> {
    const journal = new DeliveryJournal(
      options.logger,
      Math.max(1, options.compactAfterBytes ?? DEFAULT_DELIVERY_COMPACT_AFTER_BYTES),
      options.inMemory === true,
    );
    if (options.inMemory) return journal;
    if (!options.dataDir) throw new RangeError("The delivery store needs a dataDir, or inMemory: true");
    const filename = path.join(options.dataDir, DELIVERY_JOURNAL_FILE);
    const legacy = path.join(options.dataDir, LEGACY_DELIVERY_FILE);
    const hasJournal = existsSync(filename);
    if (hasJournal) await journal.replayFile(filename);
    // NeDB may have left only its temp file (`.db~`) after a crash mid-rewrite; it loads from that.
    const legacyFiles = () => [legacy, `${legacy}~`].filter((file) => existsSync(file));
    const importLegacy = legacyFiles().length > 0;
    if (importLegacy && !hasJournal) {
      const { pending, failed } = await readLegacyNedbJobs(legacy, options.logger);
      for (const job of pending) journal.put(job, undefined, jobRecord(job));
      for (const { failure, ...job } of failed) journal.put(job, failure, jobRecord(job));
    }
    journal.file = await AppendFile.create(
      filename,
      { afterBytes: journal.compactAfterBytes, snapshot: () => journal.snapshot() },
      options.logger,
    );
    if (importLegacy) {
      // Only now: the journal holding its jobs is complete on disk. A crash before this rename
      // leaves both files, and the journal wins on the next open.
      // Listed again: loading may have renamed NeDB's temp file to the datafile.
      for (const file of legacyFiles()) await rename(file, file + IMPORTED_SUFFIX);
      if (!hasJournal) {
        options.logger.info(
          { from: legacy, to: filename, jobs: journal.jobs.size },
          "imported the delivery queue of an earlier version",
        );
      }
    }
    return journal;
  }

  /** Persists a new job; when this returns it survives the process being killed. */
  insert(job: DeliveryJob): void {
    this.assertOpen();
    // Written before it is listed: a job whose write failed was refused (503) and must not
    // reappear through the next compaction.
    const record = this.inMemory ? "" : jobRecord(job);
    this.write(record);
    this.put(job, undefined, record);
  }

  /** The job is finished (delivered, skipped or dropped). Unknown ids are ignored. */
  remove(jobId: string): void {
    this.assertOpen();
    if (!this.jobs.has(jobId)) return;
    this.write(`{"op":"done","id":${JSON.stringify(jobId)}}\n`);
    this.jobs.delete(jobId);
  }

  /** Dead-letters a job: it stays, with the reason, until an operator retries or discards it. */
  markFailed(jobId: string, failure: DeliveryFailure): void {
    this.assertOpen();
    const stored = this.jobs.get(jobId);
    if (!stored) return;
    this.write(`${JSON.stringify({ op: "failed", id: jobId, failure })}\n`);
    stored.failure = failure;
  }

  /** Puts a dead-lettered job back in line, behind the room's jobs (`seq`). False if there is none. */
  markPending(jobId: string, seq: number): boolean {
    this.assertOpen();
    const stored = this.jobs.get(jobId);
    if (!stored?.failure) return false;
    this.write(`${JSON.stringify({ op: "requeue", id: jobId, seq })}\n`);
    this.requeue(stored, seq);
    return true;
  }

  /** Jobs waiting to be delivered, by room and then seq. */
  pending(): DeliveryJob[] {
    this.assertOpen();
    return [...this.jobs.values()]
      .filter((stored) => !stored.failure)
      .sort((a, b) => (a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : a.seq - b.seq))
      .map((stored) => this.jobOf(stored));
  }

  /** Dead letters, oldest first. */
  failed(): FailedDelivery[] {
    this.assertOpen();
    return [...this.jobs.values()]
      .filter((stored) => stored.failure)
      .sort((a, b) => a.receivedAt - b.receivedAt)
      .map((stored) => ({ ...this.jobOf(stored), failure: stored.failure as DeliveryFailure }));
  }

  /**
   * A room's dead letters, the one that failed longest ago first: ids and failures only, without
   * reading the stored messages back (cheap enough to run on every new dead letter).
   */
  failedInRoom(roomId: string): DeadLetterSummary[] {
    this.assertOpen();
    const letters: DeadLetterSummary[] = [];
    for (const stored of this.jobs.values()) {
      if (stored.failure && stored.roomId === roomId)
        letters.push({ id: stored.id, hookId: stored.hookId, failure: stored.failure });
    }
    return letters.sort((a, b) => a.failure.at - b.failure.at);
  }

  getFailed(jobId: string): FailedDelivery | undefined {
    this.assertOpen();
    const stored = this.jobs.get(jobId);
    return stored?.failure ? { ...this.jobOf(stored), failure: stored.failure } : undefined;
  }

  /** The highest seq stored per room, dead letters included, to continue each room's numbering. */
  lastSeqs(): Map<string, number> {
    this.assertOpen();
    const seqs = new Map<string, number>();
    for (const { roomId, seq } of this.jobs.values()) seqs.set(roomId, Math.max(seqs.get(roomId) ?? 0, seq));
    return seqs;
  }

  /** Compacts, closes the file and refuses further use. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.compact();
    this.closed = true;
    this.file?.close();
  }

  /** Rewrites the file to the live jobs. A failure is logged: the old file is still whole. */
  async compact(): Promise<void> {
    if (!this.closed) await this.file?.compact();
  }

  /** Lists a job; `record` is its `job` line, unused in memory-only mode. */
  private put(job: DeliveryJob, failure: DeliveryFailure | undefined, record: string): void {
    this.jobs.set(job.id, {
      id: job.id,
      hookId: job.hookId,
      roomId: job.roomId,
      seq: job.seq,
      receivedAt: job.receivedAt,
      record: this.inMemory ? "" : record,
      job: this.inMemory ? job : undefined,
      failure,
    });
  }

  private requeue(stored: StoredJob, seq: number): void {
    const job = { ...this.jobOf(stored), seq };
    stored.seq = seq;
    stored.failure = undefined;
    if (stored.job) stored.job = job;
    else stored.record = jobRecord(job);
  }

  private jobOf(stored: StoredJob): DeliveryJob {
    if (stored.job) return stored.job;
    const record = JSON.parse(stored.record) as { job: JsonObject };
    return toJob(record.job);
  }

  private write(record: string): void {
    this.file?.append(record);
  }

  private snapshot(): string {
    const parts = [`{"op":"journal","version":${DELIVERY_JOURNAL_VERSION}}\n`];
    for (const stored of this.jobs.values()) {
      parts.push(stored.record);
      if (stored.failure)
        parts.push(`${JSON.stringify({ op: "failed", id: stored.id, failure: stored.failure })}\n`);
    }
    return parts.join("");
  }

  private async replayFile(filename: string): Promise<void> {
    const corrupt: number[] = [];
    const scan = await readLines(filename, (line, lineNo) => {
      if (line !== "" && !this.replay(line)) corrupt.push(lineNo);
    });
    if (scan.tornTail) corrupt.push(scan.lines + 1);
    const totalLines = scan.lines + (scan.tornTail ? 1 : 0);
    // A crash cuts short at most the last append.
    if (corrupt.length > 1) throw new StoreCorruptError(filename, corrupt, totalLines, 1);
    if (corrupt.length > 0) {
      this.logger.warn(
        { file: filename, corruptLines: corrupt, totalLines },
        "Dropping an unreadable line of the delivery journal, most likely a write cut short by a crash",
      );
    }
  }

  /** Applies one line; false when it is not a record this version can read. */
  private replay(line: string): boolean {
    const record = parseRecordLine(line);
    if (!record) return false;
    switch (record.op) {
      case "job": {
        if (!isJsonObject(record.job) || !isJobShape(record.job)) return false;
        const job = toJob(record.job);
        this.jobs.set(job.id, {
          id: job.id,
          hookId: job.hookId,
          roomId: job.roomId,
          seq: job.seq,
          receivedAt: job.receivedAt,
          record: `${line}\n`,
          job: undefined,
          failure: undefined,
        });
        return true;
      }
      case "done":
        if (typeof record.id !== "string") return false;
        this.jobs.delete(record.id);
        return true;
      case "failed": {
        if (typeof record.id !== "string" || !isFailure(record.failure)) return false;
        const stored = this.jobs.get(record.id);
        if (stored) stored.failure = record.failure;
        return true;
      }
      case "requeue": {
        if (typeof record.id !== "string" || !isSeq(record.seq)) return false;
        const stored = this.jobs.get(record.id);
        if (stored?.failure) this.requeue(stored, record.seq);
        return true;
      }
      case "journal":
        if (typeof record.version !== "number") return false;
        if (record.version > DELIVERY_JOURNAL_VERSION) {
          throw new StoreError(
            `${DELIVERY_JOURNAL_FILE} was written in format ${record.version}; this version reads up to ${DELIVERY_JOURNAL_VERSION}`,
          );
        }
        return true;
      default:
        return false;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError("The delivery store is closed");
  }
}

/** JSON.stringify escapes control characters inside strings, so the record is one line. */
function jobRecord(job: DeliveryJob): string {
  return `${JSON.stringify({ op: "job", job })}\n`;
}

function toJob(raw: JsonObject): DeliveryJob {
  // Null prototype: header names come from senders, and `__proto__` must stay a plain key.
  const headers: WebhookHeaders = Object.assign(Object.create(null), raw.headers);
  const job: DeliveryJob = {
    id: raw.id as string,
    hookId: raw.hookId as string,
    roomId: raw.roomId as string,
    seq: raw.seq as number,
    receivedAt: raw.receivedAt as number,
    payload: raw.payload,
    headers,
  };
  if (typeof raw.deliveryKey === "string") job.deliveryKey = raw.deliveryKey;
  return job;
}

function isJobShape(raw: JsonObject): boolean {
  return (
    typeof raw.id === "string" &&
    typeof raw.hookId === "string" &&
    typeof raw.roomId === "string" &&
    isSeq(raw.seq) &&
    typeof raw.receivedAt === "number" &&
    isJsonObject(raw.headers)
  );
}

function isFailure(value: unknown): value is DeliveryFailure {
  return (
    isJsonObject(value) &&
    typeof value.reason === "string" &&
    typeof value.attempts === "number" &&
    typeof value.at === "number"
  );
}

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}
