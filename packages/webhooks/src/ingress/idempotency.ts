import path from "node:path";
import { type Logger, nedbLineSafeSerialization, silentLogger } from "@trestle/appservice";
import Datastore from "nedb-promises";
import { type HeaderBag, readHeader } from "./headers.js";

/** Headers that name a delivery, highest precedence first. Retries of one delivery repeat them. */
export const DELIVERY_KEY_HEADERS = [
  "X-GitHub-Delivery",
  "X-Gitea-Delivery",
  "X-Forgejo-Delivery",
  "X-Gitlab-Event-UUID",
  "Idempotency-Key",
] as const;

export const MAX_DELIVERY_KEY_LENGTH = 200;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

export interface IgnoredDeliveryKey {
  header: string;
  /** Why the value was not used; never contains the value. */
  reason: string;
}

export interface DeliveryKey {
  /** `${hookId}:${value}`: the same delivery id sent to two hooks is two deliveries. */
  key: string | undefined;
  /** The header the key came from. */
  header: string | undefined;
  /** Headers that were present but unusable, for a debug log line. */
  ignored: IgnoredDeliveryKey[];
}

/**
 * The delivery key of a request: the first usable header of DELIVERY_KEY_HEADERS, scoped to the
 * hook. A header that is present but unusable (empty, longer than 200 characters, not printable
 * ASCII, or repeated with different values) is skipped with a reason and the next one is tried;
 * without any usable header there is no key and the request cannot be deduplicated.
 */
export function deriveDeliveryKey(hookId: string, headers: HeaderBag): DeliveryKey {
  const ignored: IgnoredDeliveryKey[] = [];
  for (const header of DELIVERY_KEY_HEADERS) {
    const read = readHeader(headers, header);
    if (read.state === "absent") continue;
    if (read.state === "ambiguous") {
      ignored.push({ header, reason: "sent more than once with different values" });
      continue;
    }
    const value = read.value.trim();
    const reason = invalidity(value);
    if (reason) {
      ignored.push({ header, reason });
      continue;
    }
    return { key: `${hookId}:${value}`, header, ignored };
  }
  return { key: undefined, header: undefined, ignored };
}

function invalidity(value: string): string | undefined {
  if (value === "") return "empty";
  if (value.length > MAX_DELIVERY_KEY_LENGTH) return `longer than ${MAX_DELIVERY_KEY_LENGTH} characters`;
  if (!PRINTABLE_ASCII.test(value)) return "contains characters other than printable ASCII";
  return undefined;
}

/** Remembers which delivery keys were handled. */
export interface DeliveryKeyStore {
  has(key: string): Promise<boolean>;
  /**
   * Records `key`. Resolves `true` when it was new and `false` when it was already there, so a
   * caller can claim a delivery in one step instead of racing between `has` and `add`.
   */
  add(key: string): Promise<boolean>;
}

export const DEFAULT_DELIVERY_KEY_MAX_ENTRIES = 50_000;
export const DEFAULT_DELIVERY_KEY_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export interface NedbDeliveryKeyStoreOptions {
  /** Directory of the datafile `<dataDir>/<name>.db`; required unless `inMemory`. */
  dataDir?: string;
  /** Datafile name without extension; defaults to `delivery-keys`. */
  name?: string;
  /** Keep nothing on disk (tests). */
  inMemory?: boolean;
  /** Keep at most the newest this many keys. */
  maxEntries?: number;
  /** Forget a key this long after it was added; `Infinity` keeps keys until `maxEntries` pushes them out. */
  ttlMs?: number;
  /** Milliseconds clock; tests pass a fake one. */
  now?: () => number;
  logger?: Logger;
}

interface KeyDoc {
  _id: string;
  /** When the key was added (ms). */
  at: number;
  /** Insertion order, which the clock might not give. */
  seq: number;
}

/** What the nedb-promises proxy forwards to @seald-io/nedb but does not declare. */
interface CompactableDatastore {
  compactDatafileAsync(): Promise<void>;
}

/**
 * A DeliveryKeyStore in one NeDB datafile, bounded by count and by age.
 *
 * The keys also live in a Map in insertion order (NeDB holds every document in memory anyway), so
 * `has` and `add` answer without waiting for the disk, and the oldest keys are at the front for
 * eviction. `add` claims a key in memory before its write, so a concurrent duplicate is refused
 * while the first write is in flight; a failed write releases the claim again.
 *
 * NeDB's datafile is append-only: every add and eviction appends a line. The file is compacted
 * once as many lines were appended as the store holds keys (at most ~3× its live size), on open
 * and on close. It is a cache: a line cut short by a crash is dropped on load rather than stopping
 * the bridge. One process per datafile.
 */
export class NedbDeliveryKeyStore implements DeliveryKeyStore {
  private readonly keys = new Map<string, number>();
  private seq = 0;
  private appendedSinceCompaction = 0;
  private compacting: Promise<void> | undefined;
  private closed = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  private constructor(
    private readonly db: Datastore<KeyDoc>,
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {}

  static async open(options: NedbDeliveryKeyStoreOptions): Promise<NedbDeliveryKeyStore> {
    const maxEntries = options.maxEntries ?? DEFAULT_DELIVERY_KEY_MAX_ENTRIES;
    const ttlMs = options.ttlMs ?? DEFAULT_DELIVERY_KEY_TTL_MS;
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError("maxEntries must be a positive integer");
    if (!(ttlMs > 0)) throw new RangeError("ttlMs must be positive");
    let db: Datastore<KeyDoc>;
    if (options.inMemory) {
      db = Datastore.create({ inMemoryOnly: true }) as unknown as Datastore<KeyDoc>;
    } else {
      if (!options.dataDir) throw new RangeError("NedbDeliveryKeyStore needs a dataDir or inMemory");
      const filename = path.join(options.dataDir, `${options.name ?? "delivery-keys"}.db`);
      // 1 = tolerate any share of unreadable lines: losing some keys only risks a duplicate message.
      db = Datastore.create({
        filename,
        corruptAlertThreshold: 1,
        // A delivery id comes from a request header, which may carry U+0085.
        ...nedbLineSafeSerialization,
      }) as unknown as Datastore<KeyDoc>;
    }
    await db.load();
    const logger = options.logger ?? silentLogger();
    const store = new NedbDeliveryKeyStore(db, maxEntries, ttlMs, options.now ?? Date.now, logger);
    for (const doc of await db.find<KeyDoc>({}).sort({ seq: 1 })) {
      store.keys.set(doc._id, doc.at);
      store.seq = doc.seq;
    }
    // The bounds may have shrunk since the last run, and keys expired while it was down.
    await store.evict();
    return store;
  }

  async has(key: string): Promise<boolean> {
    this.assertOpen();
    return this.holds(key);
  }

  async add(key: string): Promise<boolean> {
    this.assertOpen();
    // Checked and claimed before the first await: a concurrent add of the same key sees the claim.
    if (this.holds(key)) return false;
    const at = this.now();
    this.seq += 1;
    const doc: KeyDoc = { _id: key, at, seq: this.seq };
    // Re-inserting moves an expired key to the back, where the eviction order expects new keys.
    this.keys.delete(key);
    this.keys.set(key, at);
    return this.track(this.write(doc));
  }

  private async write(doc: KeyDoc): Promise<boolean> {
    try {
      await this.db.update({ _id: doc._id }, doc, { upsert: true });
    } catch (err) {
      if (this.keys.get(doc._id) === doc.at) this.keys.delete(doc._id);
      throw err;
    }
    this.appendedSinceCompaction += 1;
    await this.evict();
    return true;
  }

  /** Keys currently remembered, expired or not yet evicted ones included. */
  get size(): number {
    return this.keys.size;
  }

  /** Waits for pending writes, compacts the datafile and refuses further use. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.inFlight);
    await this.compacting;
    await this.compact();
  }

  private holds(key: string): boolean {
    const at = this.keys.get(key);
    return at !== undefined && !this.expired(at);
  }

  private expired(at: number): boolean {
    return this.now() - at >= this.ttlMs;
  }

  private track<T>(operation: Promise<T>): Promise<T> {
    this.inFlight.add(operation);
    const done = () => this.inFlight.delete(operation);
    operation.then(done, done);
    return operation;
  }

  /** Drops the oldest keys beyond `maxEntries` and the expired ones at the front. */
  private async evict(): Promise<void> {
    const victims: string[] = [];
    let excess = this.keys.size - this.maxEntries;
    for (const [key, at] of this.keys) {
      if (excess <= 0 && !this.expired(at)) break;
      victims.push(key);
      excess -= 1;
    }
    if (victims.length === 0) return;
    for (const key of victims) this.keys.delete(key);
    await this.db.remove({ _id: { $in: victims } }, { multi: true });
    this.appendedSinceCompaction += victims.length;
    if (this.appendedSinceCompaction >= Math.max(1000, this.maxEntries) && !this.compacting) {
      void this.compact();
    }
  }

  private compact(): Promise<void> {
    this.compacting ??= (this.db as unknown as CompactableDatastore)
      .compactDatafileAsync()
      .then(() => {
        this.appendedSinceCompaction = 0;
      })
      .catch((err: unknown) => this.logger.error({ err }, "Delivery key datafile compaction failed"))
      .finally(() => {
        this.compacting = undefined;
      });
    return this.compacting;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("The delivery key store is closed");
  }
}
