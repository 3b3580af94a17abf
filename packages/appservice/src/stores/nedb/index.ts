import type { Logger } from "../../logging.js";
import { StoreValueError } from "../errors.js";
import { openTogether } from "../together.js";
import type { Stores } from "../types.js";
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
 * Opens every store under `dataDir`, all of them NeDB. If one fails to open, those already open
 * are closed before the error is rethrown, so no compaction timer is left behind. `openStores`
 * (what `Appservice` uses) puts the transaction queue and processed ids in a journal instead.
 */
export async function openNedbStores<E = unknown>(options: NedbStoresOptions): Promise<Stores<E>> {
  const fileOptions = nedbFileOptions(options);
  return openTogether<Omit<Stores<E>, "close">>({
    transactions: NedbTransactionStore.open<E>(fileOptions),
    processedEvents: NedbProcessedEventStore.open({ ...fileOptions, window: options.processedEventWindow }),
    ...openNedbMappingStores(fileOptions),
  });
}

/** The per-file options shared by every NeDB store; throws without a dataDir unless in memory. */
export function nedbFileOptions(options: NedbStoresOptions): Omit<NedbFileOptions, "name"> {
  if (!options.inMemory && !options.dataDir) {
    throw new StoreValueError("Opening the stores needs a dataDir, or inMemory: true");
  }
  return {
    logger: options.logger.child({ component: "stores" }),
    dataDir: options.dataDir,
    inMemory: options.inMemory,
    autocompactionIntervalMs: options.autocompactionIntervalMs,
    maxCorruptLines: options.maxCorruptLines,
  };
}

/** Starts opening the room link, user mapping, event mapping and key/value stores. */
export function openNedbMappingStores(fileOptions: Omit<NedbFileOptions, "name">): {
  [K in "roomLinks" | "userMappings" | "eventMappings" | "keyValue"]: Promise<Stores[K]>;
} {
  return {
    roomLinks: NedbRoomLinkStore.open(fileOptions),
    userMappings: NedbUserMappingStore.open(fileOptions),
    eventMappings: NedbEventMappingStore.open(fileOptions),
    keyValue: NedbKeyValueStore.open(fileOptions),
  };
}

export { NedbEventMappingStore } from "./events.js";
export { NedbFile, type NedbFileOptions, nedbLineSafeSerialization } from "./file.js";
export { NedbKeyValueStore } from "./kv.js";
export { DEFAULT_PROCESSED_WINDOW, NedbProcessedEventStore } from "./processed.js";
export { NedbRoomLinkStore } from "./rooms.js";
export { NedbTransactionStore } from "./transactions.js";
export { NedbUserMappingStore } from "./users.js";
