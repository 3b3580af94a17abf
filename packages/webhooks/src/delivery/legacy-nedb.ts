import type { Logger } from "@trestle/appservice";
import Datastore from "nedb-promises";
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

/** What @seald-io/nedb attaches to the error of a load refused for corrupt lines. */
interface CorruptionError {
  corruptItems?: unknown;
}

/**
 * Reads the jobs of an earlier version's `deliveries.db`, for the one-time import into the
 * delivery journal. Damage is refused, except the one cut-short line a crash mid-append leaves.
 */
export async function readLegacyNedbJobs(
  filename: string,
  logger: Logger,
): Promise<{ pending: DeliveryJob[]; failed: FailedDelivery[] }> {
  const db = await loadTolerant(filename, logger);
  const docs = await db.find({});
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

async function loadTolerant(filename: string, logger: Logger): Promise<Datastore<LegacyDeliveryDoc>> {
  const strict = Datastore.create({
    filename,
    corruptAlertThreshold: 0,
  }) as unknown as Datastore<LegacyDeliveryDoc>;
  try {
    await strict.load();
    return strict;
  } catch (err) {
    const corrupt = (err as CorruptionError | null)?.corruptItems;
    if (typeof corrupt !== "number" || corrupt > 1) throw err;
    logger.warn(
      { file: filename, corruptLines: corrupt },
      "Dropping an unreadable line of the old delivery datafile, most likely a write cut short by a crash",
    );
  }
  const lenient = Datastore.create({
    filename,
    corruptAlertThreshold: 1,
  }) as unknown as Datastore<LegacyDeliveryDoc>;
  await lenient.load();
  return lenient;
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
