import path from "node:path";
import type { Logger } from "@trestle/appservice";
import Datastore from "nedb-promises";
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
 */
export class NedbHookStore implements HookStore {
  private readonly byId = new Map<string, HookRecord>();

  private constructor(private readonly db: Datastore<HookDoc>) {}

  static async open(options: {
    dataDir?: string;
    inMemory?: boolean;
    logger: Logger;
  }): Promise<NedbHookStore> {
    const db = Datastore.create({
      filename: options.inMemory ? undefined : path.join(options.dataDir ?? ".", "hooks.db"),
      inMemoryOnly: options.inMemory ?? false,
      timestampData: false,
    }) as Datastore<HookDoc>;
    await db.load();
    await db.ensureIndex({ fieldName: "roomId" });
    await db.ensureIndex({ fieldName: "id", unique: true });
    const store = new NedbHookStore(db);
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

  /** Nothing to flush: every write is appended before its promise resolves. */
  async close(): Promise<void> {}
}
