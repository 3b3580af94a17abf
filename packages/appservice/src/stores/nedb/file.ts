import { createReadStream, existsSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import path from "node:path";
import Datastore from "nedb-promises";
import type { Logger } from "../../logging.js";
import { StoreClosedError, StoreCorruptError, StoreValueError } from "../errors.js";
import type { Closable } from "../types.js";

export interface NedbFileOptions {
  /** Directory of the datafiles; required unless `inMemory`. */
  dataDir?: string;
  /** Store name; the datafile is `<dataDir>/<name>.db`. */
  name: string;
  logger: Logger;
  /** Keep everything in memory only (tests). */
  inMemory?: boolean;
  /**
   * How often the append-only datafile is rewritten to drop superseded lines. 0 disables the timer
   * (the file is still compacted on open and on close).
   */
  autocompactionIntervalMs?: number;
  /**
   * Unreadable lines tolerated on load. A crash can cut short only the last append, so 1 covers
   * crashes; more points at damage that an operator should look at.
   */
  maxCorruptLines?: number;
}

export const DEFAULT_AUTOCOMPACTION_INTERVAL_MS = 10 * 60_000;

/** What the nedb-promises proxy forwards to @seald-io/nedb but does not declare. */
interface CompactableDatastore {
  compactDatafileAsync(): Promise<void>;
}

/**
 * One NeDB datafile: load with a crash-tolerant corruption check, periodic compaction, and a
 * close that compacts and stops the timer. Store classes wrap one each.
 *
 * Persistence facts this relies on (@seald-io/nedb 4): every insert/update/remove appends its
 * lines with a single `fs.appendFile` and the operation's promise resolves only after that write
 * completed, so the data is in the kernel's page cache and survives the process being killed.
 * There is no fsync on appends: a power loss or kernel crash can lose the last few seconds of
 * writes. Compaction writes a temp file, fsyncs it and renames it over the datafile, so it can
 * never leave a half-written datafile behind.
 */
export class NedbFile {
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private bytesSinceCompaction = 0;
  private compacting: Promise<void> | undefined;

  private constructor(
    private readonly db: Datastore<{ _id: string }>,
    readonly name: string,
    readonly filename: string | undefined,
    private readonly logger: Logger,
  ) {}

  static async open(options: NedbFileOptions): Promise<NedbFile> {
    const logger = options.logger.child({ store: options.name });
    let filename: string | undefined;
    let corruptAlertThreshold = 0;
    if (!options.inMemory) {
      if (!options.dataDir) throw new StoreValueError(`Store "${options.name}" needs a dataDir or inMemory`);
      filename = path.join(options.dataDir, `${options.name}.db`);
      const maxCorrupt = options.maxCorruptLines ?? 1;
      // NeDB loads the `~` temp file when a crash hit between writing it and renaming it.
      const file = existsSync(filename) ? filename : `${filename}~`;
      let scan = await scanDatafile(file);
      if (scan.unescapedSeparators) {
        await escapeLineSeparators(file, logger);
        scan = await scanDatafile(file);
      }
      if (scan.corruptLines.length > maxCorrupt) {
        throw new StoreCorruptError(scan.file, scan.corruptLines, scan.totalLines, maxCorrupt);
      }
      if (scan.corruptLines.length > 0) {
        // NeDB's own check is a ratio, which refuses one bad line in a small file; we counted already.
        corruptAlertThreshold = 1;
        logger.warn(
          { file: scan.file, corruptLines: scan.corruptLines, totalLines: scan.totalLines },
          "Dropping unreadable datafile lines, most likely a write cut short by a crash",
        );
      }
    }
    const db = Datastore.create(
      filename ? { filename, corruptAlertThreshold, ...nedbLineSafeSerialization } : { inMemoryOnly: true },
    ) as Datastore<{ _id: string }>;
    await db.load();
    const file = new NedbFile(db, options.name, filename, logger);
    const interval = options.autocompactionIntervalMs ?? DEFAULT_AUTOCOMPACTION_INTERVAL_MS;
    if (filename && interval > 0) {
      file.timer = setInterval(() => void file.compact(), interval);
      // A compaction timer must not keep an otherwise finished process alive.
      file.timer.unref();
    }
    return file;
  }

  /** The datastore, or a StoreClosedError once closed. */
  get store(): Datastore<{ _id: string }> {
    this.assertOpen();
    return this.db;
  }

  assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.name);
  }

  /**
   * Lets a store that appends large documents ask for an early compaction once the file has grown
   * by `limit` bytes since the last one, instead of waiting for the timer.
   */
  noteAppended(bytes: number, limit: number): void {
    this.bytesSinceCompaction += bytes;
    if (this.bytesSinceCompaction >= limit && !this.compacting) void this.compact();
  }

  /** Rewrites the datafile; errors are logged, not thrown, as a failed compaction loses nothing. */
  compact(): Promise<void> {
    if (!this.filename || this.closed) return Promise.resolve();
    this.compacting ??= (this.db as unknown as CompactableDatastore)
      .compactDatafileAsync()
      .then(() => {
        this.bytesSinceCompaction = 0;
      })
      .catch((err: unknown) => this.logger.error({ err }, "Datafile compaction failed"))
      .finally(() => {
        this.compacting = undefined;
      });
    return this.compacting;
  }

  /** Waits for queued writes (NeDB runs them in order), compacts, and refuses further use. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // A compaction already running may predate the last writes; queue a fresh one behind them.
    await this.compacting;
    await this.compact();
    this.closed = true;
  }
}

/** A store class backed by one datafile; it closes with the file. */
export abstract class NedbBackedStore implements Closable {
  protected constructor(protected readonly file: NedbFile) {}

  close(): Promise<void> {
    return this.file.close();
  }
}

/** Where NeDB (its `byline`) splits a datafile into documents: at every line break Unicode has. */
const NEDB_LINE_BREAK = /\r\n|[\n\v\f\r\x85\u2028\u2029]/;
/** The ones of those that `JSON.stringify` leaves unescaped inside strings. */
const UNESCAPED_SEPARATOR = /[\x85\u2028\u2029]/;
const UNESCAPED_SEPARATORS = /[\x85\u2028\u2029]/g;

function escapeSeparators(text: string): string {
  return UNESCAPED_SEPARATOR.test(text)
    ? text.replace(UNESCAPED_SEPARATORS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    : text;
}

/**
 * NeDB serialisation hooks that keep one document on one line. NeDB cuts its datafile at U+0085,
 * U+2028 and U+2029 as well as at newlines, and `JSON.stringify` leaves those three as they are:
 * a display name or template holding one would split its document in two, and the next load
 * would find two corrupt lines and refuse the file. They are written as `\u2028` escapes, which
 * JSON reads back as the same character, so reading needs no hook of its own.
 */
export const nedbLineSafeSerialization = {
  afterSerialization: escapeSeparators,
  beforeDeserialization: (line: string): string => line,
};

/**
 * Rewrites a datafile that an earlier version wrote with unescaped separators inside strings,
 * escaping them: the same documents, each on one line again. Outside a JSON string they cannot
 * occur, so escaping changes no value. Temp file, fsync, rename.
 */
async function escapeLineSeparators(file: string, logger: Logger): Promise<void> {
  const temp = `${file}.escaping`;
  const out = await open(temp, "w");
  try {
    for await (const chunk of createReadStream(file, "utf8"))
      await out.write(escapeSeparators(chunk as string));
    await out.sync();
  } finally {
    await out.close();
  }
  await rename(temp, file);
  logger.info({ file }, "Escaped line separators an earlier version wrote unescaped into the datafile");
}

interface DatafileScan {
  file: string;
  corruptLines: number[];
  totalLines: number;
  /** Separators inside strings that NeDB would cut at (see {@link nedbLineSafeSerialization}). */
  unescapedSeparators: boolean;
}

/**
 * Counts the lines NeDB would fail to parse, cutting lines where NeDB does. NeDB drops them
 * silently when below its threshold, and we want both a strict absolute limit and a log line
 * naming them.
 */
async function scanDatafile(file: string): Promise<DatafileScan> {
  const result: DatafileScan = { file, corruptLines: [], totalLines: 0, unescapedSeparators: false };
  if (!existsSync(file)) return result;
  let lineNo = 0;
  const check = (line: string) => {
    lineNo += 1;
    if (line === "") return;
    result.totalLines += 1;
    try {
      JSON.parse(line);
    } catch {
      result.corruptLines.push(lineNo);
    }
  };
  let carry = "";
  for await (const chunk of createReadStream(file, "utf8")) {
    if (UNESCAPED_SEPARATOR.test(chunk as string)) result.unescapedSeparators = true;
    const lines = (carry + (chunk as string)).split(NEDB_LINE_BREAK);
    carry = lines.pop() ?? "";
    for (const line of lines) check(line);
  }
  check(carry);
  return result;
}

/** JSON text for a stored value, refusing what JSON cannot carry instead of storing `undefined`. */
export function toJson(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new StoreValueError(`${what} is not JSON-serialisable`, { cause });
  }
  if (text === undefined) throw new StoreValueError(`${what} is not JSON-serialisable`);
  return text;
}

/** A deterministic `_id` from several strings, so upserts need no extra unique index. */
export function compositeId(...parts: string[]): string {
  return JSON.stringify(parts);
}
