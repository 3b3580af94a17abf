import type { KeyValueStore } from "../types.js";
import { compositeId, NedbBackedStore, NedbFile, type NedbFileOptions, toJson } from "./file.js";

interface KeyValueDoc {
  _id: string;
  namespace: string;
  key: string;
  /** JSON text: NeDB rejects field names containing `.`, and values are arbitrary JSON. */
  value: string;
}

export class NedbKeyValueStore extends NedbBackedStore implements KeyValueStore {
  static async open(options: Omit<NedbFileOptions, "name">): Promise<NedbKeyValueStore> {
    const file = await NedbFile.open({ ...options, name: "key-value" });
    await file.store.ensureIndex({ fieldName: "namespace" });
    return new NedbKeyValueStore(file);
  }

  async get<T>(namespace: string, key: string): Promise<T | undefined> {
    const doc = await this.file.store.findOne<KeyValueDoc>({ _id: compositeId(namespace, key) });
    return doc ? (JSON.parse(doc.value) as T) : undefined;
  }

  async set<T>(namespace: string, key: string, value: T): Promise<void> {
    const doc: KeyValueDoc = {
      _id: compositeId(namespace, key),
      namespace,
      key,
      value: toJson(value, `value of ${namespace}/${key}`),
    };
    await this.file.store.update({ _id: doc._id }, doc, { upsert: true });
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    return (await this.file.store.remove({ _id: compositeId(namespace, key) }, {})) > 0;
  }

  async keys(namespace: string): Promise<string[]> {
    const docs = await this.file.store.find<KeyValueDoc>({ namespace }).sort({ key: 1 });
    return docs.map((doc) => doc.key);
  }
}
