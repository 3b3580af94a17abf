import path from "node:path";
import { type Logger, NedbFile } from "@trestle/appservice";
import type { WebhookHeaders } from "../rendering/types.js";
import type { DeliveryFailure, DeliveryJob, FailedDelivery } from "./job.js";

/** A job as the NeDB delivery store of earlier versions wrote it to `deliveries.db`. */
interface LegacyDeliveryDoc {
  _id: string;
  hookId: string;
  roomId: string;
  seq: number;
  receivedAt: number;
  deliveryKey?: string;
  /** `{ payload, headers }` as JSON text. */
  data: string;
  state: "pending" | "failed";
  failure?: DeliveryFailure;
}

/**
 * Reads the jobs of an earlier version's `deliveries.db` (or the temp file NeDB left, `.db~`), for
 * the one-time import into the delivery journal. Damage is refused, except the one cut-short line
 * a crash mid-append leaves: the core's {@link NedbFile} loads it as every NeDB store of the core is.
 */
export async function readLegacyNedbJobs(
  filename: string,
  logger: Logger,
): Promise<{ pending: DeliveryJob[]; failed: FailedDelivery[] }> {
  const file = await NedbFile.open({
    dataDir: path.dirname(filename),
    name: path.basename(filename, ".db"),
    logger,
    autocompactionIntervalMs: 0,
  });
  let docs: LegacyDeliveryDoc[];
  try {
    docs = (await file.store.find({})) as unknown as LegacyDeliveryDoc[];
  } finally {
    await file.close();
  }
  const byRoomAndSeq = (a: LegacyDeliveryDoc, b: LegacyDeliveryDoc) =>
    a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : a.seq - b.seq;
  const pending = docs
    .filter((doc) => doc.state !== "failed")
    .sort(byRoomAndSeq)
    .map(fromDoc);
  const failed = docs
    .filter((doc) => doc.state === "failed")
    .sort(byRoomAndSeq)
    .map((doc) => ({
      ...fromDoc(doc),
      failure: doc.failure ?? { reason: "unknown", attempts: 0, at: doc.receivedAt },
    }));
  return { pending, failed };
}

function fromDoc(doc: LegacyDeliveryDoc): DeliveryJob {
  const data = JSON.parse(doc.data) as { payload: unknown; headers: WebhookHeaders };
  const headers: WebhookHeaders = Object.assign(Object.create(null), data.headers);
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
