import type { Closable } from "./types.js";

/**
 * Waits for stores being opened together. If one fails, those that did open are closed before the
 * error is rethrown, so no file handle or compaction timer is left behind. The result closes them
 * all; a store listed twice (two faces of one file) is closed once.
 */
export async function openTogether<T extends { [K in keyof T]: Closable }>(
  opening: {
    [K in keyof T]: Promise<T[K]>;
  },
): Promise<T & Closable> {
  const keys = Object.keys(opening) as (keyof T & string)[];
  const results = await Promise.allSettled(keys.map((key) => opening[key]));
  const opened = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await closeAll(opened).catch(() => {});
    throw failed.reason;
  }
  const stores = Object.fromEntries(keys.map((key, i) => [key, opened[i]])) as unknown as T;
  return { ...stores, close: () => closeAll(opened) };
}

async function closeAll(stores: Closable[]): Promise<void> {
  const results = await Promise.allSettled(stores.map((store) => store.close()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}
