import { type Logger, NedbFile } from "@trestle/appservice";
import type Datastore from "nedb-promises";
import type { HookRecord } from "./model.js";

/** Where hooks live between restarts; the interface lets another engine slot in. */
export interface HookStore {
  get(id: string): Promise<HookRecord | undefined>;
  getByName(roomId: string, name: string): Promise<HookRecord | undefined>;
  listByRoom(roomId: string): Promise<HookRecord[]>;
  put(record: HookRecord): Promise<void>;
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}

interface HookDoc extends HookRecord {
  _id: string;
}

function fromDoc(doc: HookDoc | null): HookRecord | undefined {
  if (!doc) return undefined;
  const { _id, ...record } = doc;
  return record;
}

/**
 * NeDB on disk, with every hook also held in a Map: the request path looks a hook up on every
 * webhook, and NeDB runs reads in the same serial queue as its file appends, so a lookup
 * would wait behind unrelated writes. Hooks are few and small.
 *
 * The datafile (`hooks.db`) is opened as the core opens its own NeDB stores ({@link NedbFile}): a
 * line cut short by a crash mid-append is dropped with a warning instead of stopping the bridge
 * (NeDB's own check refuses one bad line in ten, which a small file reaches at once), more damage
 * is refused naming the lines, and the file is compacted now and then and on close.
 */
export class NedbHookStore implements HookStore {
  private readonly byId = new Map<string, HookRecord>();

  private constructor(
    private readonly file: NedbFile,
    private readonly db: Datastore<HookDoc>,
  ) {}

  static async open(options: {
    dataDir?: string;
    inMemory?: boolean;
    logger: Logger;
  }): Promise<NedbHookStore> {
    const file = await NedbFile.open({
      dataDir: options.dataDir,
      name: "hooks",
      inMemory: options.inMemory ?? false,
      logger: options.logger,
    });
    const db = file.store as unknown as Datastore<HookDoc>;
    await db.ensureIndex({ fieldName: "roomId" });
    await db.ensureIndex({ fieldName: "id", unique: true });
    const store = new NedbHookStore(file, db);
    for (const doc of await db.find({})) {
      const record = fromDoc(doc);
      if (record) store.byId.set(record.id, record);
    }
    options.logger.debug({ hooks: store.byId.size }, "hook store loaded");
    return store;
  }

  async get(id: string): Promise<HookRecord | undefined> {
    return this.byId.get(id);
  }

  async getByName(roomId: string, name: string): Promise<HookRecord | undefined> {
    for (const record of this.byId.values()) {
      if (record.roomId === roomId && record.name === name) return record;
    }
    return undefined;
  }

  async listByRoom(roomId: string): Promise<HookRecord[]> {
    return [...this.byId.values()]
      .filter((r) => r.roomId === roomId)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  async put(record: HookRecord): Promise<void> {
    await this.db.updateOne({ id: record.id }, { _id: record.id, ...record }, { upsert: true });
    this.byId.set(record.id, record);
  }

  async remove(id: string): Promise<boolean> {
    const removed = (await this.db.deleteOne({ id }, {})) > 0;
    this.byId.delete(id);
    return removed;
  }

  /** Every write was appended before its promise resolved: closing compacts the file. */
  close(): Promise<void> {
    return this.file.close();
  }
}
