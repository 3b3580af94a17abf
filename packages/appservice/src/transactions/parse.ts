import { BadJsonError } from "../errors.js";
import { isJsonObject, type JsonObject } from "../json.js";
import type { Logger } from "../logging.js";
import type { DeviceLists, EphemeralEvent, MatrixEvent, ParsedTransaction, ToDeviceEvent } from "./types.js";

/** `unsigned` is optional on the wire; parsing fills it in. */
type WireRoomEvent = Omit<MatrixEvent, "unsigned"> & { unsigned?: Record<string, unknown> };

/** `?` marks an optional field; an optional field that is present must still have the right type. */
type FieldRule = "string" | "string?" | "object" | "object?" | "number";

/** Rules as a flat list, compiled once: checking 100 events must not re-read the rule strings. */
interface CompiledRule {
  field: string;
  kind: "string" | "object" | "number";
  optional: boolean;
}
type FieldRules = readonly CompiledRule[];

function compile(rules: Record<string, FieldRule>): FieldRules {
  return Object.entries(rules).map(([field, rule]) => ({
    field,
    kind: rule.replace("?", "") as CompiledRule["kind"],
    optional: rule.endsWith("?"),
  }));
}

const ROOM_EVENT_RULES = compile({
  type: "string",
  event_id: "string",
  room_id: "string",
  sender: "string",
  state_key: "string?",
  content: "object",
  origin_server_ts: "number",
  unsigned: "object?",
});

const EPHEMERAL_RULES = compile({
  type: "string",
  content: "object",
  room_id: "string?",
  sender: "string?",
});

const TO_DEVICE_RULES = compile({
  type: "string",
  sender: "string",
  content: "object",
  to_user_id: "string",
  to_device_id: "string",
});

/** Body keys in order of preference: the stable name first, then the unstable ones Synapse still sends. */
const KEYS = {
  ephemeral: ["ephemeral", "de.sorunome.msc2409.ephemeral"],
  toDevice: ["to_device", "de.sorunome.msc2409.to_device"],
  deviceLists: ["device_lists", "org.matrix.msc3202.device_lists"],
  otkCount: [
    "device_one_time_keys_count",
    "org.matrix.msc3202.device_one_time_keys_count",
    // Older MSC3202 spelling; Synapse still sends it alongside the one above.
    "org.matrix.msc3202.device_one_time_key_counts",
  ],
  fallbackKeys: ["device_unused_fallback_key_types", "org.matrix.msc3202.device_unused_fallback_key_types"],
} as const;

interface ParseState {
  log: Logger | undefined;
  logFields: Record<string, unknown> | undefined;
  dropped: number;
}

/**
 * Turns the JSON body of an appservice transaction into typed values.
 *
 * Only a body that is not an object, or whose `events` is not an array, is rejected
 * (`BadJsonError`). Anything smaller that is malformed is dropped with a warning: a 4xx
 * makes Synapse resend the same transaction forever and stalls everything queued behind it.
 */
export function parseTransaction(body: unknown, log?: Logger): ParsedTransaction {
  return parseTransactionDetailed(body, log).txn;
}

export interface DetailedParse {
  txn: ParsedTransaction;
  /**
   * Every room event of the body was kept as it is (none dropped, none given a missing
   * `unsigned`): the body's `events`, parsed again, are exactly `txn.events`.
   */
  eventsAsSent: boolean;
}

/** {@link parseTransaction}, also telling whether the room events are the body's own. */
/**
 * `logFields` go on every warning (the transaction id, say): cheaper than a child logger per
 * transaction, which the hot path would pay for even when nothing is wrong.
 */
export function parseTransactionDetailed(
  body: unknown,
  log?: Logger,
  logFields?: Record<string, unknown>,
): DetailedParse {
  if (!isJsonObject(body)) throw new BadJsonError("Transaction body must be a JSON object");
  if (body.events !== undefined && !Array.isArray(body.events)) {
    throw new BadJsonError("Transaction field 'events' must be an array");
  }
  const state: ParseState = { log, logFields, dropped: 0 };
  const wire = parseEvents<WireRoomEvent>(
    body.events,
    "events",
    ROOM_EVENT_RULES,
    state,
    isWellFormedRoomEvent,
  );
  let eventsAsSent = state.dropped === 0;
  const events = wire as MatrixEvent[];
  for (let i = 0; i < wire.length; i++) {
    const event = wire[i] as WireRoomEvent;
    if (event.unsigned === undefined) {
      // A copy: the caller's object stays as it was sent.
      events[i] = { ...event, unsigned: {} };
      eventsAsSent = false;
    }
  }
  const ephemeral = pickFirst(body, KEYS.ephemeral);
  const toDevice = pickFirst(body, KEYS.toDevice);
  // The verbatim body may be stored; to-device messages (keys) must never reach the disk, even
  // dropped as malformed or under the name not picked.
  if (KEYS.toDevice.some((key) => body[key] !== undefined)) eventsAsSent = false;
  const txn: ParsedTransaction = {
    events,
    ephemeral: parseEvents<EphemeralEvent>(ephemeral.value, ephemeral.key, EPHEMERAL_RULES, state),
    toDevice: parseEvents<ToDeviceEvent>(toDevice.value, toDevice.key, TO_DEVICE_RULES, state),
    deviceLists: parseDeviceLists(pickFirst(body, KEYS.deviceLists), state),
    deviceOneTimeKeysCount: parseTopRecord(pickFirst(body, KEYS.otkCount), otkCountsLeaf, state),
    deviceUnusedFallbackKeyTypes: parseTopRecord(pickFirst(body, KEYS.fallbackKeys), fallbackLeaf, state),
    // Last, so every section above has been parsed and counted.
    dropped: state.dropped,
  };
  return { txn, eventsAsSent };
}

function pickFirst(body: JsonObject, keys: readonly string[]): { key: string; value: unknown } {
  for (const key of keys) {
    if (body[key] !== undefined) return { key, value: body[key] };
  }
  return { key: keys[0] ?? "", value: undefined };
}

/** Names the first problem with `value`, or returns undefined when it satisfies `rules`. */
function findProblem(value: unknown, rules: FieldRules): string | undefined {
  if (!isJsonObject(value)) return "not a JSON object";
  for (const { field, kind, optional } of rules) {
    const fieldValue = value[field];
    if (fieldValue === undefined) {
      if (optional) continue;
      return `missing '${field}'`;
    }
    const ok = kind === "object" ? isJsonObject(fieldValue) : typeof fieldValue === kind;
    if (!ok) return `'${field}' is not a ${kind === "object" ? "JSON object" : kind}`;
  }
  return undefined;
}

/**
 * {@link ROOM_EVENT_RULES} written out, so each field is a named property load: a hundred events
 * from one `JSON.parse` share a shape, and these loads stay monomorphic where the rule loop's
 * `value[field]` does not. Only says yes or no; {@link findProblem} names the problem.
 */
function isWellFormedRoomEvent(value: unknown): boolean {
  if (!isJsonObject(value)) return false;
  const { state_key: stateKey, content, unsigned } = value;
  return (
    typeof value.type === "string" &&
    typeof value.event_id === "string" &&
    typeof value.room_id === "string" &&
    typeof value.sender === "string" &&
    (stateKey === undefined || typeof stateKey === "string") &&
    isJsonObject(content) &&
    typeof value.origin_server_ts === "number" &&
    (unsigned === undefined || isJsonObject(unsigned))
  );
}

/**
 * The entries of `raw` that satisfy `rules`; the others are dropped, counted and logged.
 * `wellFormed`, when given, answers the common case first without naming a problem.
 */
function parseEvents<T>(
  raw: unknown,
  section: string,
  rules: FieldRules,
  state: ParseState,
  wellFormed?: (value: unknown) => boolean,
): T[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    state.log?.warn(
      { ...state.logFields, field: section },
      "Ignoring transaction field that is not an array",
    );
    return [];
  }
  const valid: T[] = [];
  for (let index = 0; index < raw.length; index++) {
    const item: unknown = raw[index];
    if (wellFormed?.(item)) {
      valid.push(item as T);
      continue;
    }
    const problem = findProblem(item, rules);
    if (problem === undefined) {
      valid.push(item as T);
      continue;
    }
    state.dropped++;
    // Identify the event without logging its content.
    const ids = isJsonObject(item) ? { event_id: item.event_id, type: item.type, room_id: item.room_id } : {};
    state.log?.warn(
      { ...state.logFields, field: section, index, problem, ...ids },
      "Dropping malformed event from transaction",
    );
  }
  return valid;
}

function warnField(state: ParseState, path: string, problem: string): void {
  state.log?.warn({ ...state.logFields, field: path, problem }, "Ignoring malformed transaction field");
}

/** Strings in `raw`, dropping any other entries; undefined when `raw` is not an array. */
function stringList(raw: unknown, path: string, state: ParseState): string[] | undefined {
  if (!Array.isArray(raw)) return undefined;
  const strings = raw.filter((entry): entry is string => typeof entry === "string");
  if (strings.length !== raw.length) warnField(state, path, "dropped entries that are not strings");
  return strings;
}

function parseDeviceLists(picked: { key: string; value: unknown }, state: ParseState): DeviceLists {
  const { key, value } = picked;
  if (value === undefined) return { changed: [], left: [] };
  if (!isJsonObject(value)) {
    warnField(state, key, "not a JSON object");
    return { changed: [], left: [] };
  }
  const list = (name: "changed" | "left"): string[] => {
    if (value[name] === undefined) return [];
    const strings = stringList(value[name], `${key}.${name}`, state);
    if (strings === undefined) warnField(state, `${key}.${name}`, "not an array");
    return strings ?? [];
  };
  return { changed: list("changed"), left: list("left") };
}

/** Parses one value of a nested record; undefined drops that entry. */
type Leaf<T> = (value: unknown, path: string, state: ParseState) => T | undefined;

function recordOf<T>(leaf: Leaf<T>): Leaf<Record<string, T>> {
  return (value, path, state) => {
    if (!isJsonObject(value)) return undefined;
    const entries: [string, T][] = [];
    for (const [key, entry] of Object.entries(value)) {
      const parsed = leaf(entry, `${path}.${key}`, state);
      if (parsed === undefined) warnField(state, `${path}.${key}`, "wrong type");
      else entries.push([key, parsed]);
    }
    // fromEntries defines own properties, so a "__proto__" key cannot reach a prototype.
    return Object.fromEntries(entries);
  };
}

const keyCount: Leaf<number> = (value) =>
  typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : undefined;

const otkCountsLeaf = recordOf(recordOf(recordOf(keyCount)));
const fallbackLeaf = recordOf(recordOf(stringList));

function parseTopRecord<T>(
  picked: { key: string; value: unknown },
  leaf: Leaf<Record<string, T>>,
  state: ParseState,
): Record<string, T> {
  if (picked.value === undefined) return {};
  const parsed = leaf(picked.value, picked.key, state);
  if (parsed === undefined) warnField(state, picked.key, "not a JSON object");
  return parsed ?? {};
}
