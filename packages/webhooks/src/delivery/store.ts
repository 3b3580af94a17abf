import path from "node:path";
import type { Logger } from "@trestle/appservice";
import Datastore from "nedb-promises";
import type { WebhookHeaders } from "../rendering/types.js";
import type { DeliveryFailure, DeliveryJob, FailedDelivery } from "./job.js";

export interface DeliveryStoreOptions {
  /** Directory of `deliveries.db`; required unless `inMemory`. */
  dataDir?: string;
  /** Keep nothing on disk (tests). */
  inMemory?: boolean;
  logger: Logger;
  /** Rewrite the append-only datafile after this many appended lines (default 10,000). */
  compactAfterLines?: number;
}

interface DeliveryDoc {
  _id: string;
  hookId: string;
  roomId: string;
  seq: number;
  receivedAt: number;
  deliveryKey?: string;
  /**
   * `{ payload, headers }` as JSON text. NeDB refuses field names with `.` or a leading `$`,
   * which payloads are full of; a string is also copied cheaply by NeDB's deep copies.
   */
  data: string;
  state: "pending" | "failed";
  failure?: DeliveryFailure;
}

/** What the nedb-promises proxy forwards to @seald-io/nedb but does not declare. */
interface CompactableDatastore {
  compactDatafileAsync(): Promise<void>;
}

/** What @seald-io/nedb attaches to the error of a load refused for corrupt lines. */
interface CorruptionError {
  corruptItems?: unknown;
}

const DEFAULT_COMPACT_AFTER_LINES = 10_000;

/**
 * The queue's persistence: one NeDB document per job in `<dataDir>/deliveries.db`.
 *
 * Every write is one `fs.appendFile`, and its promise resolves once that write completed: a job
 * whose `insert` resolved is in the kernel's page cache and survives the process being killed
 * (not a power loss: there is no fsync on appends). A crash can cut short only the last line;
 * that job's `insert` never resolved, so its sender never got a 202 and will retry. Such a line
 * is dropped on open, with a warning.
 */
export class NedbDeliveryStore {
  private appended = 0;
  private inserting = false;
  private readonly waitingInserts: {
    doc: DeliveryDoc;
    resolve: () => void;
    reject: (err: unknown) => void;
  }[] = [];
  private compacting: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly db: Datastore<DeliveryDoc>,
    private readonly persistent: boolean,
    private readonly compactAfterLines: number,
    private readonly logger: Logger,
  ) {}

  static async open(options: DeliveryStoreOptions): Promise<NedbDeliveryStore> {
    const logger = options.logger;
    let db: Datastore<DeliveryDoc>;
    if (options.inMemory) {
      db = Datastore.create({ inMemoryOnly: true }) as unknown as Datastore<DeliveryDoc>;
      await db.load();
    } else {
      if (!options.dataDir) throw new RangeError("The delivery store needs a dataDir, or inMemory: true");
      db = await loadTolerant(path.join(options.dataDir, "deliveries.db"), logger);
    }
    await db.ensureIndex({ fieldName: "roomId" });
    return new NedbDeliveryStore(
      db,
      !options.inMemory,
      options.compactAfterLines ?? DEFAULT_COMPACT_AFTER_LINES,
      logger,
    );
  }

  /**
   * Resolves once the job is appended to the datafile. Inserts that arrive while a write is in
   * flight go out together as one append (group commit): NeDB opens, appends and closes the
   * file for every write, so one write per webhook would cap the ack path at the disk's
   * open/close rate under load.
   */
  insert(job: DeliveryJob): Promise<void> {
    this.assertOpen();
    const doc: DeliveryDoc = {
      _id: job.id,
      hookId: job.hookId,
      roomId: job.roomId,
      seq: job.seq,
      receivedAt: job.receivedAt,
      data: JSON.stringify({ payload: job.payload, headers: job.headers }),
      state: "pending",
    };
    if (job.deliveryKey !== undefined) doc.deliveryKey = job.deliveryKey;
    return new Promise((resolve, reject) => {
      this.waitingInserts.push({ doc, resolve, reject });
      this.flushInserts();
    });
  }

  private flushInserts(): void {
    if (this.inserting || this.waitingInserts.length === 0) return;
    this.inserting = true;
    const batch = this.waitingInserts.splice(0);
    this.db
      .insert(batch.map((b) => b.doc))
      .then(
        () => {
          this.noteAppended(batch.length);
          for (const b of batch) b.resolve();
        },
        (err: unknown) => {
          for (const b of batch) b.reject(err);
        },
      )
      .finally(() => {
        this.inserting = false;
        this.flushInserts();
      });
  }

  /** The job is done (delivered, skipped or dropped). */
  async remove(jobId: string): Promise<void> {
    this.assertOpen();
    await this.db.remove({ _id: jobId }, { multi: false });
    this.noteAppended(1);
  }

  /** Dead-letters a job: it stays, with the reason, until an operator retries or discards it. */
  async markFailed(jobId: string, failure: DeliveryFailure): Promise<void> {
    this.assertOpen();
    await this.db.update({ _id: jobId }, { $set: { state: "failed", failure } });
    this.noteAppended(1);
  }

  /** Puts a dead-lettered job back in line, behind the room's jobs (`seq`). False if none. */
  async markPending(jobId: string, seq: number): Promise<boolean> {
    this.assertOpen();
    const changed = await this.db.update(
      { _id: jobId, state: "failed" },
      { $set: { state: "pending", seq }, $unset: { failure: true } },
    );
    this.noteAppended(1);
    return changed > 0;
  }

  /** Jobs waiting to be delivered, by room and then seq. */
  async pending(): Promise<DeliveryJob[]> {
    this.assertOpen();
    const docs = await this.db.find({ state: "pending" }).sort({ roomId: 1, seq: 1 });
    return docs.map(fromDoc);
  }

  async failed(): Promise<FailedDelivery[]> {
    this.assertOpen();
    const docs = await this.db.find({ state: "failed" }).sort({ receivedAt: 1 });
    return docs.map((doc) => ({ ...fromDoc(doc), failure: doc.failure ?? unknownFailure(doc) }));
  }

  async getFailed(jobId: string): Promise<FailedDelivery | undefined> {
    this.assertOpen();
    const doc = await this.db.findOne({ _id: jobId, state: "failed" });
    return doc ? { ...fromDoc(doc), failure: doc.failure ?? unknownFailure(doc) } : undefined;
  }

  /** The highest seq stored per room, dead letters included, to continue each room's numbering. */
  async lastSeqs(): Promise<Map<string, number>> {
    this.assertOpen();
    const seqs = new Map<string, number>();
    for (const doc of await this.db.find({}, { roomId: 1, seq: 1 })) {
      seqs.set(doc.roomId, Math.max(seqs.get(doc.roomId) ?? 0, doc.seq));
    }
    return seqs;
  }

  /** Waits for queued writes (NeDB runs them in order), compacts, and refuses further use. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.compacting;
    await this.compact();
  }

  private noteAppended(lines: number): void {
    this.appended += lines;
    if (this.appended >= this.compactAfterLines && !this.compacting) void this.compact();
  }

  private compact(): Promise<void> {
    if (!this.persistent) return Promise.resolve();
    this.compacting ??= (this.db as unknown as CompactableDatastore)
      .compactDatafileAsync()
      .then(() => {
        this.appended = 0;
      })
      .catch((err: unknown) => this.logger.error({ err }, "Delivery datafile compaction failed"))
      .finally(() => {
        this.compacting = undefined;
      });
    return this.compacting;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("The delivery store is closed");
  }
}

/**
 * Loads the datafile refusing damage, except the one cut-short line a crash mid-append leaves
 * (NeDB's own threshold is a ratio, which would refuse one bad line in a small file).
 */
async function loadTolerant(filename: string, logger: Logger): Promise<Datastore<DeliveryDoc>> {
  const strict = Datastore.create({
    filename,
    corruptAlertThreshold: 0,
  }) as unknown as Datastore<DeliveryDoc>;
  try {
    await strict.load();
    return strict;
  } catch (err) {
    const corrupt = (err as CorruptionError | null)?.corruptItems;
    if (typeof corrupt !== "number" || corrupt > 1) throw err;
    logger.warn(
      { file: filename, corruptLines: corrupt },
      "Dropping an unreadable line of the delivery datafile, most likely a write cut short by a crash",
    );
  }
  const lenient = Datastore.create({
    filename,
    corruptAlertThreshold: 1,
  }) as unknown as Datastore<DeliveryDoc>;
  await lenient.load();
  return lenient;
}

function fromDoc(doc: DeliveryDoc): DeliveryJob {
  const data = JSON.parse(doc.data) as { payload: unknown; headers: WebhookHeaders };
  const headers: Record<string, string> = Object.assign(Object.create(null), data.headers);
  const job: DeliveryJob = {
    id: doc._id,
    hookId: doc.hookId,
    roomId: doc.roomId,
    seq: doc.seq,
    receivedAt: doc.receivedAt,
    payload: data.payload,
    headers,
  };
  if (doc.deliveryKey !== undefined) job.deliveryKey = doc.deliveryKey;
  return job;
}

function unknownFailure(doc: DeliveryDoc): DeliveryFailure {
  return { reason: "unknown", attempts: 0, at: doc.receivedAt };
}
