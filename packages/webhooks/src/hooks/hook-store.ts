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

export class NedbHookStore implements HookStore {
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
    options.logger.debug({ hooks: await db.count({}) }, "hook store loaded");
    return new NedbHookStore(db);
  }

  async get(id: string): Promise<HookRecord | undefined> {
    return fromDoc(await this.db.findOne({ id }));
  }

  async getByName(roomId: string, name: string): Promise<HookRecord | undefined> {
    return fromDoc(await this.db.findOne({ roomId, name }));
  }

  async listByRoom(roomId: string): Promise<HookRecord[]> {
    const docs = await this.db.find({ roomId }).sort({ createdAt: 1 });
    return docs.map((d) => fromDoc(d)).filter((r): r is HookRecord => r !== undefined);
  }

  async put(record: HookRecord): Promise<void> {
    await this.db.updateOne({ id: record.id }, { _id: record.id, ...record }, { upsert: true });
  }

  async remove(id: string): Promise<boolean> {
    return (await this.db.deleteOne({ id }, {})) > 0;
  }

  /** Nothing to flush: every write is appended before its promise resolves. */
  async close(): Promise<void> {}
}
