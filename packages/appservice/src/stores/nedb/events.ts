import type { EventMapping, EventMappingStore } from "../types.js";
import { compositeId, NedbBackedStore, NedbFile, type NedbFileOptions, toJson } from "./file.js";

interface EventMappingDoc {
  _id: string;
  roomId: string;
  eventId: string;
  remoteRoomId: string;
  remoteMessageId: string;
  /** JSON text: NeDB rejects field names containing `.`. */
  data: string;
  createdAt: number;
}

function toMapping<D>(doc: EventMappingDoc): EventMapping<D> {
  return {
    roomId: doc.roomId,
    eventId: doc.eventId,
    remoteRoomId: doc.remoteRoomId,
    remoteMessageId: doc.remoteMessageId,
    data: JSON.parse(doc.data) as D,
    createdAt: doc.createdAt,
  };
}

export class NedbEventMappingStore extends NedbBackedStore implements EventMappingStore {
  static async open(options: Omit<NedbFileOptions, "name">): Promise<NedbEventMappingStore> {
    const file = await NedbFile.open({ ...options, name: "event-mappings" });
    // Event ids and remote message ids are nearly unique, so these indexes narrow lookups to ~1 doc.
    await file.store.ensureIndex({ fieldName: "eventId" });
    await file.store.ensureIndex({ fieldName: "remoteMessageId" });
    await file.store.ensureIndex({ fieldName: "createdAt" });
    return new NedbEventMappingStore(file);
  }

  async add<D>(
    mapping: Omit<EventMapping<D>, "createdAt" | "data"> & { data?: D; createdAt?: number },
  ): Promise<void> {
    const { roomId, eventId, remoteRoomId, remoteMessageId } = mapping;
    const doc: EventMappingDoc = {
      _id: compositeId(roomId, eventId, remoteRoomId, remoteMessageId),
      roomId,
      eventId,
      remoteRoomId,
      remoteMessageId,
      data: toJson(mapping.data ?? {}, "data"),
      createdAt: mapping.createdAt ?? Date.now(),
    };
    await this.file.store.update({ _id: doc._id }, doc, { upsert: true });
  }

  async getByEvent<D = Record<string, unknown>>(roomId: string, eventId: string): Promise<EventMapping<D>[]> {
    const docs = await this.file.store.find<EventMappingDoc>({ eventId, roomId }).sort({ createdAt: 1 });
    return docs.map((doc) => toMapping<D>(doc));
  }

  async getByRemote<D = Record<string, unknown>>(
    remoteRoomId: string,
    remoteMessageId: string,
  ): Promise<EventMapping<D>[]> {
    const docs = await this.file.store
      .find<EventMappingDoc>({ remoteMessageId, remoteRoomId })
      .sort({ createdAt: 1 });
    return docs.map((doc) => toMapping<D>(doc));
  }

  removeByEvent(roomId: string, eventId: string): Promise<number> {
    return this.file.store.remove({ eventId, roomId }, { multi: true });
  }

  removeOlderThan(cutoff: number): Promise<number> {
    return this.file.store.remove({ createdAt: { $lt: cutoff } }, { multi: true });
  }
}
