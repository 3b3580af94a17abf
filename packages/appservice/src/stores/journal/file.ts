import {
  close,
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
  writevSync,
} from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../../logging.js";
import { StoreClosedError, StoreError } from "../errors.js";

/**
 * What is written: text, or pieces written one after the other. Bytes go to the file as they are,
 * so a record can carry a request body without decoding and encoding it again.
 */
export type Content = string | readonly (string | Uint8Array)[];

/** When and to what an {@link AppendFile} rewrites itself. */
export interface CompactionPolicy {
  /** Compact once the file has grown this much since it was opened or last compacted. */
  afterBytes: number;
  /** The live state, as the file's new content. */
  snapshot: () => Content;
}

/**
 * An append-only file of newline-terminated records, kept open for the life of the process.
 *
 * - `append` writes synchronously (one `write(2)` into the page cache, on the event loop): when it
 *   returns the record survives the process being killed. There is no fsync per record, exactly
 *   as with NeDB before: a power loss or kernel crash can lose the last seconds of writes.
 * - A write that fails part-way is cut off again (`ftruncate` to the previous size), so a failed
 *   append never leaves half a record in front of the next one. If even that fails the file
 *   refuses further appends until it is reopened, and the half record stays last, where readers
 *   drop it as torn.
 * - `replace` swaps in a new content (compaction): it is written to a temp file and fsynced off the
 *   event loop while appends go on; those appends are copied after it, and it is renamed over the
 *   file. A crash at any point leaves either the old file or the new one, both complete.
 * - An append that takes the file past its {@link CompactionPolicy} starts a compaction.
 */
export class AppendFile {
  private fd: number;
  private size: number;
  private broken: Error | undefined;
  private closed = false;
  /** Records appended while a replacement is being written, to copy onto it before the rename. */
  private tail: (string | Uint8Array)[] | undefined;
  /** Size right after the last replacement (or opening): what compaction thresholds count from. */
  private compactedSize: number;
  private compaction: Promise<void> | undefined;

  private constructor(
    readonly filename: string,
    fd: number,
    private readonly logger: Logger,
    private readonly policy: CompactionPolicy,
  ) {
    this.fd = fd;
    this.size = fstatSync(fd).size;
    this.compactedSize = this.size;
  }

  /**
   * Writes `policy.snapshot()` as the whole file (temp file, fsync, rename) and opens it for
   * appending.
   */
  static async create(filename: string, policy: CompactionPolicy, logger: Logger): Promise<AppendFile> {
    await mkdir(path.dirname(filename), { recursive: true });
    await writeDurably(`${filename}.tmp`, policy.snapshot());
    renameSync(`${filename}.tmp`, filename);
    await fsyncDirectory(path.dirname(filename));
    return new AppendFile(filename, openSync(filename, "a"), logger, {
      afterBytes: Math.max(1, policy.afterBytes),
      snapshot: policy.snapshot,
    });
  }

  get bytes(): number {
    return this.size;
  }

  /** Bytes appended since the file was opened or last compacted. */
  get grownBytes(): number {
    return this.size - this.compactedSize;
  }

  get compacting(): boolean {
    return this.compaction !== undefined;
  }

  /**
   * Starts replacing the content with the policy's snapshot (see {@link replace}), unless a
   * replacement is already running. A failure is logged, not thrown: the old file is still whole.
   */
  private startCompaction(): void {
    if (this.closed || this.broken || this.compaction) return;
    const { snapshot } = this.policy;
    // `snapshot` is taken on the next microtask, not now: the caller is usually inside a write
    // whose in-memory effect (the record just appended) it has not applied yet, and a snapshot
    // taken before that would leave the record out of the new file.
    this.compaction = Promise.resolve()
      .then(() => this.replace(snapshot()))
      .then(
        () => {
          this.compactedSize = this.size;
        },
        (err: unknown) => {
          // Not retried on the next append: a lasting fault (disk full) would redo the snapshot
          // and its fsync for every write. The next try comes after as much growth again.
          this.compactedSize = this.size;
          this.logger.error({ err, file: this.filename }, "Compaction failed");
        },
      )
      .finally(() => {
        this.compaction = undefined;
      });
  }

  /** Compacts now, after any compaction already running, which may predate the last appends. */
  async compact(): Promise<void> {
    await this.compaction;
    this.startCompaction();
    await this.compaction;
  }

  /**
   * Appends one record; `record` must end with "\n" and contain no other newline. Call it before
   * applying the record in memory: a compaction it sets off snapshots on the next microtask.
   */
  append(record: Content): void {
    if (this.closed) throw new StoreClosedError(path.basename(this.filename));
    if (this.broken)
      throw new StoreError(`${this.filename} is unusable after a failed write`, { cause: this.broken });
    let written: number;
    try {
      written = writeFully(this.fd, record);
    } catch (cause) {
      this.cutOff(cause);
      throw new StoreError(`Could not append to ${this.filename}`, { cause });
    }
    this.size += written;
    if (this.tail) {
      if (typeof record === "string") this.tail.push(record);
      else for (const piece of record) this.tail.push(piece);
    }
    if (this.grownBytes >= this.policy.afterBytes) this.startCompaction();
  }

  /**
   * Replaces the file's content with `snapshot` plus whatever is appended until the swap. Only one
   * replacement runs at a time; the caller serialises them.
   */
  async replace(snapshot: Content): Promise<void> {
    if (this.closed || this.broken) return;
    const temp = `${this.filename}.tmp`;
    this.tail = [];
    try {
      await writeDurably(temp, snapshot);
      if (this.closed || this.broken) throw new StoreError("closed while compacting");
      // From here to the swap nothing yields, so no append can slip between the copy and the rename.
      const fd = openSync(temp, "a");
      try {
        writeFully(fd, this.tail);
        renameSync(temp, this.filename);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      const replaced = this.fd;
      this.fd = fd;
      // Closing the replaced file frees its page cache, tens of megabytes: ~10 ms of kernel time
      // that would stall every request if spent on the event loop.
      close(replaced, (err) => {
        if (err) this.logger.warn({ err, file: this.filename }, "Could not close the replaced journal file");
      });
      this.size = fstatSync(fd).size;
    } catch (err) {
      await rm(temp, { force: true }).catch(() => {});
      throw err;
    } finally {
      this.tail = undefined;
    }
    // The rename itself is durable once the directory is; not needed to survive a process kill.
    await fsyncDirectory(path.dirname(this.filename));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private cutOff(cause: unknown): void {
    try {
      ftruncateSync(this.fd, this.size);
    } catch (err) {
      this.broken = cause instanceof Error ? cause : new Error(String(cause));
      this.logger.error(
        { err, file: this.filename },
        "Could not cut off a failed append; refusing further writes",
      );
    }
  }
}

/**
 * Writes all of `content` at the end of `fd` (opened for appending); returns the byte count. The
 * common case is one `write(2)` (`writev(2)` for pieces); a short write (disk full, file size
 * limit) is finished from the encoded bytes, or fails.
 */
function writeFully(fd: number, content: Content): number {
  if (typeof content === "string") {
    if (content === "") return 0;
    const expected = Buffer.byteLength(content, "utf8");
    const written = writeSync(fd, content);
    return written < expected ? finishShortWrite(fd, Buffer.from(content, "utf8"), written) : written;
  }
  if (content.length === 0) return 0;
  // A record is a few pieces; the appends copied after a compaction can be thousands, more than
  // one writev(2) takes.
  if (content.length > MAX_WRITEV_PIECES) return writeFully(fd, [Buffer.concat(content.map(toBytes))]);
  const buffers = content.map(toBytes);
  let expected = 0;
  for (const buffer of buffers) expected += buffer.byteLength;
  const written = writevSync(fd, buffers);
  return written < expected ? finishShortWrite(fd, Buffer.concat(buffers), written) : written;
}

const MAX_WRITEV_PIECES = 64;

function finishShortWrite(fd: number, bytes: Uint8Array, written: number): number {
  let done = written;
  while (done < bytes.byteLength) {
    const n = writeSync(fd, bytes, done);
    if (n <= 0) throw new StoreError("Short write");
    done += n;
  }
  return done;
}

function toBytes(piece: string | Uint8Array): Uint8Array {
  return typeof piece === "string" ? Buffer.from(piece, "utf8") : piece;
}

/** Writes a whole file and fsyncs it, off the event loop. */
async function writeDurably(filename: string, content: Content): Promise<void> {
  const handle = await open(filename, "w");
  try {
    await handle.writeFile(typeof content === "string" ? content : Buffer.concat(content.map(toBytes)));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Best effort: not every platform lets a directory be fsynced. */
async function fsyncDirectory(dir: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Nothing to do: the rename is still atomic, only its durability across power loss is weaker.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface ReadLinesResult {
  /** Lines read, including empty ones (so line numbers match an editor's). */
  lines: number;
  /** Bytes after the last newline: a record whose write was cut short. */
  tornTail: boolean;
}

/**
 * Calls `onLine` for each newline-terminated line of `filename`, streaming in chunks so the file
 * may be larger than the largest string. A missing file reads as empty. Text after the last
 * newline is reported as a torn tail and not passed on: every record is written with its newline
 * in the same write, so a record without one was never acknowledged.
 */
export async function readLines(
  filename: string,
  onLine: (line: string, lineNo: number) => void,
): Promise<ReadLinesResult> {
  const result: ReadLinesResult = { lines: 0, tornTail: false };
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(filename, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return result;
    throw err;
  }
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let carry: Buffer[] = [];
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      const data = chunk.subarray(0, bytesRead);
      let start = 0;
      for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
        let line: string;
        if (carry.length > 0) {
          carry.push(data.subarray(start, nl));
          line = Buffer.concat(carry).toString("utf8");
          carry = [];
        } else {
          line = data.toString("utf8", start, nl);
        }
        result.lines += 1;
        onLine(line, result.lines);
        start = nl + 1;
      }
      // Copied: `chunk` is reused by the next read.
      if (start < bytesRead) carry.push(Buffer.from(data.subarray(start)));
    }
    result.tornTail = carry.some((piece) => piece.length > 0);
  } finally {
    await handle.close();
  }
  return result;
}

/** A journal line as a JSON object; undefined when it is not one (a torn or foreign line). */
export function parseRecordLine(line: string): Record<string, unknown> | undefined {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return undefined;
  }
  return typeof record === "object" && record !== null && !Array.isArray(record)
    ? (record as Record<string, unknown>)
    : undefined;
}

/** Removes a file if it exists. */
export function removeIfExists(filename: string): boolean {
  try {
    unlinkSync(filename);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}
