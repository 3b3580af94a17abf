import { existsSync } from "node:fs";
import { rename } from "node:fs/promises";
import path from "node:path";
import { TransactionJournal } from "./journal/journal.js";
import type { NedbFileOptions } from "./nedb/file.js";
import { type NedbStoresOptions, nedbFileOptions, openNedbMappingStores } from "./nedb/index.js";
import { NedbProcessedEventStore } from "./nedb/processed.js";
import { NedbTransactionStore } from "./nedb/transactions.js";
import { openTogether } from "./together.js";
import type { PendingTransaction, Stores } from "./types.js";

export interface StoresOptions extends NedbStoresOptions {
  /** See {@link TransactionJournalOptions.compactAfterBytes}. */
  journalCompactAfterBytes?: number;
}

/**
 * Opens the stores a bridge needs under `dataDir`: the transaction queue and the processed event
 * ids in one append-only journal (`transactions.journal`, the hot path of every transaction), the
 * mappings and key/value state in NeDB files. Transactions and ids an earlier version left in
 * `transactions.db` and `processed-events.db` are moved into the journal first.
 */
export async function openStores<E = unknown>(options: StoresOptions): Promise<Stores<E>> {
  const fileOptions = nedbFileOptions(options);
  const legacy = options.dataDir && !options.inMemory ? await readLegacyQueue<E>(fileOptions) : undefined;
  const journal = await TransactionJournal.open<E>({
    dataDir: options.dataDir,
    inMemory: options.inMemory,
    logger: fileOptions.logger,
    processedEventWindow: options.processedEventWindow,
    maxCorruptLines: options.maxCorruptLines,
    compactAfterBytes: options.journalCompactAfterBytes,
    seed: legacy?.work,
  });
  // Only now does the journal hold their content durably. A crash before the rename imports them
  // again next time: the duplicate events are then skipped by event id like any resent event.
  try {
    await legacy?.retire();
  } catch (err) {
    await journal.close().catch(() => {});
    throw err;
  }
  return openTogether<Omit<Stores<E>, "close">>({
    transactions: Promise.resolve(journal),
    processedEvents: Promise.resolve(journal.processedEvents),
    ...openNedbMappingStores(fileOptions),
  });
}

const LEGACY_FILES = ["transactions", "processed-events"] as const;

interface LegacyQueue<E> {
  work: { transactions: PendingTransaction<E>[]; processedEventIds: string[] };
  /** Renames the NeDB files to `<name>.db.imported` so they are not imported again. */
  retire(): Promise<void>;
}

/** What the NeDB transaction and processed-event files of an earlier version hold, if they exist. */
async function readLegacyQueue<E>(
  fileOptions: Omit<NedbFileOptions, "name">,
): Promise<LegacyQueue<E> | undefined> {
  const dataDir = fileOptions.dataDir ?? "";
  // NeDB falls back to the `~` temp file when a crash hit between writing and renaming it.
  const present = (name: string) =>
    existsSync(path.join(dataDir, `${name}.db`)) || existsSync(path.join(dataDir, `${name}.db~`));
  if (!LEGACY_FILES.some(present)) return undefined;
  const options = { ...fileOptions, autocompactionIntervalMs: 0 };
  const work: LegacyQueue<E>["work"] = { transactions: [], processedEventIds: [] };
  if (present("transactions")) {
    const store = await NedbTransactionStore.open<E>(options);
    work.transactions = await store.pending();
    await store.close();
  }
  if (present("processed-events")) {
    const store = await NedbProcessedEventStore.open({ ...options, window: Number.MAX_SAFE_INTEGER });
    work.processedEventIds = store.windowIds();
    await store.close();
  }
  fileOptions.logger.info(
    { transactions: work.transactions.length, processedEventIds: work.processedEventIds.length },
    "Moving the transaction queue from NeDB into the transaction journal",
  );
  return {
    work,
    retire: async () => {
      for (const name of LEGACY_FILES) {
        for (const suffix of [".db", ".db~"]) {
          const file = path.join(dataDir, `${name}${suffix}`);
          if (existsSync(file)) await rename(file, `${file}.imported`);
        }
      }
    },
  };
}
