import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../src/logging.js";

/** A fresh directory under the OS temp dir; `cleanup` removes it. */
export async function tempDir(
  prefix = "trestle-stores-",
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A logger whose JSON lines are kept in `records`, to assert on what was logged. */
export function capturingLogger(level: "debug" | "info" | "warn" = "warn"): {
  logger: Logger;
  records: Record<string, unknown>[];
} {
  const records: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: createLogger({ level, destination }), records };
}

/** The least a stored event needs in these tests. */
export interface TestEvent {
  event_id: string;
  room_id: string;
  content: Record<string, unknown>;
}

export const ev = (id: string, content: Record<string, unknown> = {}): TestEvent => ({
  event_id: id,
  room_id: "!r:hs",
  content,
});
