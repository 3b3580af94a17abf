import type { ProcessedEventStore } from "../types.js";
import { NedbBackedStore, NedbFile, type NedbFileOptions } from "./file.js";

/** Ids added by one write. Chunks keep the document count (and so compaction time) low. */
interface ChunkDoc {
  _id: string;
  seq: number;
  ids: string[];
}

export interface NedbProcessedEventStoreOptions extends Omit<NedbFileOptions, "name"> {
  /** How many of the newest ids to remember. */
  window?: number;
}

export const DEFAULT_PROCESSED_WINDOW = 10_000;

/**
 * The window lives in memory as a Set (NeDB keeps every document in memory anyway), so `has` costs
 * nothing; each `addMany` appends one chunk document. Pruning drops whole chunks, oldest first,
 * while at least `window` ids remain, so between `window` and `window` + one chunk are kept.
 */
export class NedbProcessedEventStore extends NedbBackedStore implements ProcessedEventStore {
  private readonly ids = new Set<string>();
  private readonly chunks: ChunkDoc[] = [];
  private lastSeq = 0;
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    file: NedbFile,
    private readonly window: number,
  ) {
    super(file);
  }

  static async open(options: NedbProcessedEventStoreOptions): Promise<NedbProcessedEventStore> {
    const file = await NedbFile.open({ ...options, name: "processed-events" });
    const store = new NedbProcessedEventStore(file, Math.max(1, options.window ?? DEFAULT_PROCESSED_WINDOW));
    const docs = await file.store.find<ChunkDoc>({}).sort({ seq: 1 });
    for (const doc of docs) {
      store.chunks.push(doc);
      for (const id of doc.ids) store.ids.add(id);
      store.lastSeq = doc.seq;
    }
    // The window may have shrunk since the last run.
    await store.prune();
    return store;
  }

  async has(eventId: string): Promise<boolean> {
    return this.hasSync(eventId);
  }

  hasSync(eventId: string): boolean {
    this.file.assertOpen();
    return this.ids.has(eventId);
  }

  /** The remembered ids, oldest first. */
  windowIds(): string[] {
    this.file.assertOpen();
    return this.chunks.flatMap((chunk) => chunk.ids);
  }

  add(eventId: string): Promise<void> {
    return this.addMany([eventId]);
  }

  async addMany(eventIds: readonly string[]): Promise<void> {
    this.file.assertOpen();
    // Serialised: concurrent calls would each see the other's ids as fresh and store them twice.
    const run = this.writes.then(() => this.write(eventIds));
    this.writes = run.catch(() => {});
    return run;
  }

  private async write(eventIds: readonly string[]): Promise<void> {
    const store = this.file.store;
    const fresh = [...new Set(eventIds)].filter((id) => !this.ids.has(id));
    if (fresh.length === 0) return;
    this.lastSeq += 1;
    const chunk: ChunkDoc = { _id: String(this.lastSeq), seq: this.lastSeq, ids: fresh };
    await store.insert(chunk);
    // Only after the write: `has` must never claim what a crash could forget.
    this.chunks.push(chunk);
    for (const id of fresh) this.ids.add(id);
    await this.prune();
  }

  async size(): Promise<number> {
    this.file.assertOpen();
    return this.ids.size;
  }

  private async prune(): Promise<void> {
    const dropped: ChunkDoc[] = [];
    let remaining = this.ids.size;
    for (const chunk of this.chunks) {
      if (remaining - chunk.ids.length < this.window) break;
      remaining -= chunk.ids.length;
      dropped.push(chunk);
    }
    if (dropped.length === 0) return;
    this.chunks.splice(0, dropped.length);
    for (const chunk of dropped) for (const id of chunk.ids) this.ids.delete(id);
    await this.file.store.remove({ _id: { $in: dropped.map((c) => c._id) } }, { multi: true });
  }
}
