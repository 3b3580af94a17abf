import type { PendingTransaction, TransactionStore } from "../types.js";
import { NedbBackedStore, NedbFile, type NedbFileOptions } from "./file.js";

interface TransactionDoc {
  _id: string;
  seq: number;
  txnId: string;
  receivedAt: number;
  eventCount: number;
  /**
   * The events as JSON text. NeDB rejects field names containing `.` and Matrix content is full of
   * them (`m.relates_to`); a string also makes NeDB's deep copy and key checks trivially cheap.
   */
  events: string;
}

export interface NedbTransactionStoreOptions extends Omit<NedbFileOptions, "name"> {
  /**
   * Compact once this many bytes were appended since the last compaction. Every transaction is
   * appended once and its removal once, so at 1,000 events/s the file grows by roughly 1 MB/s
   * while holding little live data; compacting it is cheap.
   */
  compactAfterBytes?: number;
}

const DEFAULT_COMPACT_AFTER_BYTES = 64 * 1024 * 1024;

/**
 * One document per transaction, written with one append, so a transaction is stored whole or
 * (if the process dies mid-write) as a truncated last line that is dropped on load, and then the
 * homeserver never got its 200 and resends it.
 */
export class NedbTransactionStore<E = unknown> extends NedbBackedStore implements TransactionStore<E> {
  private constructor(
    file: NedbFile,
    private lastSeq: number,
    private readonly compactAfterBytes: number,
  ) {
    super(file);
  }

  static async open<E = unknown>(options: NedbTransactionStoreOptions): Promise<NedbTransactionStore<E>> {
    const file = await NedbFile.open({ ...options, name: "transactions" });
    const newest = await file.store.findOne<TransactionDoc>({}).sort({ seq: -1 });
    // Only the order among pending transactions matters, so restarting after the newest is enough.
    return new NedbTransactionStore<E>(
      file,
      newest?.seq ?? 0,
      options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES,
    );
  }

  async append(txnId: string, events: readonly E[]): Promise<PendingTransaction<E>> {
    const store = this.file.store;
    // Taken synchronously: NeDB runs writes in call order, so seq order is file order.
    this.lastSeq += 1;
    const seq = this.lastSeq;
    const doc: TransactionDoc = {
      _id: String(seq),
      seq,
      txnId,
      receivedAt: Date.now(),
      eventCount: events.length,
      events: JSON.stringify(events),
    };
    await store.insert(doc);
    this.file.noteAppended(doc.events.length, this.compactAfterBytes);
    return { seq, txnId, events: [...events], receivedAt: doc.receivedAt };
  }

  async pending(): Promise<PendingTransaction<E>[]> {
    const docs = await this.file.store.find<TransactionDoc>({}).sort({ seq: 1 });
    return docs.map((doc) => ({
      seq: doc.seq,
      txnId: doc.txnId,
      events: JSON.parse(doc.events) as E[],
      receivedAt: doc.receivedAt,
    }));
  }

  async remove(seqs: readonly number[]): Promise<void> {
    if (seqs.length === 0) return;
    // `_id` is indexed, so `$in` on it avoids scanning every pending document.
    await this.file.store.remove({ _id: { $in: seqs.map(String) } }, { multi: true });
  }

  count(): Promise<number> {
    return this.file.store.count({});
  }
}
