import type { RoomLink, RoomLinkStore } from "../types.js";
import { compositeId, NedbBackedStore, NedbFile, type NedbFileOptions, toJson } from "./file.js";

interface RoomLinkDoc {
  _id: string;
  roomId: string;
  remoteId: string;
  /** JSON text: NeDB rejects field names containing `.`, which bridge data may well have. */
  data: string;
}

function toLink<D>(doc: RoomLinkDoc): RoomLink<D> {
  return { roomId: doc.roomId, remoteId: doc.remoteId, data: JSON.parse(doc.data) as D };
}

export class NedbRoomLinkStore extends NedbBackedStore implements RoomLinkStore {
  static async open(options: Omit<NedbFileOptions, "name">): Promise<NedbRoomLinkStore> {
    const file = await NedbFile.open({ ...options, name: "room-links" });
    await file.store.ensureIndex({ fieldName: "roomId" });
    await file.store.ensureIndex({ fieldName: "remoteId" });
    return new NedbRoomLinkStore(file);
  }

  async link<D>(roomId: string, remoteId: string, data?: D): Promise<RoomLink<D>> {
    const value = (data ?? {}) as D;
    const doc: RoomLinkDoc = {
      _id: compositeId(roomId, remoteId),
      roomId,
      remoteId,
      data: toJson(value, "data"),
    };
    await this.file.store.update({ _id: doc._id }, doc, { upsert: true });
    return { roomId, remoteId, data: value };
  }

  async unlink(roomId: string, remoteId: string): Promise<boolean> {
    return (await this.file.store.remove({ _id: compositeId(roomId, remoteId) }, {})) > 0;
  }

  async get<D = Record<string, unknown>>(roomId: string, remoteId: string): Promise<RoomLink<D> | null> {
    const doc = await this.file.store.findOne<RoomLinkDoc>({ _id: compositeId(roomId, remoteId) });
    return doc ? toLink<D>(doc) : null;
  }

  async getByRoom<D = Record<string, unknown>>(roomId: string): Promise<RoomLink<D>[]> {
    const docs = await this.file.store.find<RoomLinkDoc>({ roomId }).sort({ remoteId: 1 });
    return docs.map((doc) => toLink<D>(doc));
  }

  async getByRemote<D = Record<string, unknown>>(remoteId: string): Promise<RoomLink<D>[]> {
    const docs = await this.file.store.find<RoomLinkDoc>({ remoteId }).sort({ roomId: 1 });
    return docs.map((doc) => toLink<D>(doc));
  }
}
