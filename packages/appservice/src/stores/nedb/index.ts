import type { Logger } from "../../logging.js";
import { StoreValueError } from "../errors.js";
import type { Closable, Stores } from "../types.js";
import { NedbEventMappingStore } from "./events.js";
import type { NedbFileOptions } from "./file.js";
import { NedbKeyValueStore } from "./kv.js";
import { NedbProcessedEventStore } from "./processed.js";
import { NedbRoomLinkStore } from "./rooms.js";
import { NedbTransactionStore } from "./transactions.js";
import { NedbUserMappingStore } from "./users.js";

export interface NedbStoresOptions {
  /** Directory holding one `<store>.db` file per store; created if missing. */
  dataDir?: string;
  logger: Logger;
  /** Nothing touches the disk: for tests. */
  inMemory?: boolean;
  /** See {@link NedbFileOptions.autocompactionIntervalMs}; 0 disables the timer. */
  autocompactionIntervalMs?: number;
  /** Unreadable datafile lines tolerated per file on open (default 1, what a crash can leave). */
  maxCorruptLines?: number;
  /**
   * How many handled event ids are remembered for de-duplication (default 10,000). Keep it above
   * the ingest's `maxPendingEvents`: ids of a transaction still pending must outlive it, or a
   * restart handles them again.
   */
  processedEventWindow?: number;
}

/**
 * Opens every store under `dataDir`. If one fails to open, those already open are closed before
 * the error is rethrown, so no compaction timer is left behind.
 */
export async function openNedbStores<E = unknown>(options: NedbStoresOptions): Promise<Stores<E>> {
  if (!options.inMemory && !options.dataDir) {
    throw new StoreValueError("openNedbStores needs a dataDir, or inMemory: true");
  }
  const fileOptions: Omit<NedbFileOptions, "name"> = {
    logger: options.logger.child({ component: "stores" }),
    dataDir: options.dataDir,
    inMemory: options.inMemory,
    autocompactionIntervalMs: options.autocompactionIntervalMs,
    maxCorruptLines: options.maxCorruptLines,
  };
  const opening = [
    NedbTransactionStore.open<E>(fileOptions),
    NedbProcessedEventStore.open({ ...fileOptions, window: options.processedEventWindow }),
    NedbRoomLinkStore.open(fileOptions),
    NedbUserMappingStore.open(fileOptions),
    NedbEventMappingStore.open(fileOptions),
    NedbKeyValueStore.open(fileOptions),
  ] as const;
  const results = await Promise.allSettled(opening);
  const opened = results.flatMap((r) => (r.status === "fulfilled" ? [r.value as Closable] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await closeAll(opened).catch(() => {});
    throw failed.reason;
  }
  const [transactions, processedEvents, roomLinks, userMappings, eventMappings, keyValue] =
    await Promise.all(opening);
  return {
    transactions,
    processedEvents,
    roomLinks,
    userMappings,
    eventMappings,
    keyValue,
    close: () => closeAll(opened),
  };
}

async function closeAll(stores: Closable[]): Promise<void> {
  const results = await Promise.allSettled(stores.map((store) => store.close()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

export { NedbEventMappingStore } from "./events.js";
export type { NedbFileOptions } from "./file.js";
export { NedbKeyValueStore } from "./kv.js";
export { DEFAULT_PROCESSED_WINDOW, NedbProcessedEventStore } from "./processed.js";
export { NedbRoomLinkStore } from "./rooms.js";
export { NedbTransactionStore } from "./transactions.js";
export { NedbUserMappingStore } from "./users.js";
