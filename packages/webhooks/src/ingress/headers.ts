/**
 * Request headers as Node (and koa's `ctx.headers`) present them: lower-case names, a string per
 * header, an array only for the few headers Node does not join.
 */
export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

export type HeaderRead = { state: "absent" } | { state: "ambiguous" } | { state: "present"; value: string };

/**
 * One header's single value. A header given several times with different values is `ambiguous`:
 * callers that authenticate or deduplicate with it must not pick one.
 */
export function readHeader(headers: HeaderBag, name: string): HeaderRead {
  const raw = headers[name.toLowerCase()];
  if (raw === undefined) return { state: "absent" };
  if (typeof raw === "string") return { state: "present", value: raw };
  const distinct = new Set(raw);
  const [only] = distinct;
  if (distinct.size === 1 && only !== undefined) return { state: "present", value: only };
  return distinct.size === 0 ? { state: "absent" } : { state: "ambiguous" };
}
