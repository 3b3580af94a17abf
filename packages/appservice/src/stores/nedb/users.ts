import type { UserMapping, UserMappingStore } from "../types.js";
import { NedbBackedStore, NedbFile, type NedbFileOptions, toJson } from "./file.js";

interface UserMappingDoc {
  /** The Matrix user id: unique by construction, and the cheapest lookup. */
  _id: string;
  remoteId: string;
  /** JSON text: NeDB rejects field names containing `.`. */
  data: string;
}

function toMapping<D>(doc: UserMappingDoc): UserMapping<D> {
  return { matrixId: doc._id, remoteId: doc.remoteId, data: JSON.parse(doc.data) as D };
}

export class NedbUserMappingStore extends NedbBackedStore implements UserMappingStore {
  static async open(options: Omit<NedbFileOptions, "name">): Promise<NedbUserMappingStore> {
    const file = await NedbFile.open({ ...options, name: "user-mappings" });
    await file.store.ensureIndex({ fieldName: "remoteId", unique: true });
    return new NedbUserMappingStore(file);
  }

  async set<D>(matrixId: string, remoteId: string, data?: D): Promise<UserMapping<D>> {
    const value = (data ?? {}) as D;
    const doc: UserMappingDoc = { _id: matrixId, remoteId, data: toJson(value, "data") };
    const store = this.file.store;
    // Free the remote id from any other Matrix user first, or the unique index rejects the upsert.
    await store.remove({ remoteId, _id: { $ne: matrixId } }, { multi: true });
    await store.update({ _id: matrixId }, doc, { upsert: true });
    return { matrixId, remoteId, data: value };
  }

  async getByMatrixId<D = Record<string, unknown>>(matrixId: string): Promise<UserMapping<D> | null> {
    const doc = await this.file.store.findOne<UserMappingDoc>({ _id: matrixId });
    return doc ? toMapping<D>(doc) : null;
  }

  async getByRemoteId<D = Record<string, unknown>>(remoteId: string): Promise<UserMapping<D> | null> {
    const doc = await this.file.store.findOne<UserMappingDoc>({ remoteId });
    return doc ? toMapping<D>(doc) : null;
  }

  async removeByMatrixId(matrixId: string): Promise<boolean> {
    return (await this.file.store.remove({ _id: matrixId }, {})) > 0;
  }
}
