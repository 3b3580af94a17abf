import { type Intent, isMatrixApiError } from "@trestle/appservice";
import { HOOK_STATE_EVENT } from "../hooks/model.js";

/** What `state_default` is when the power levels don't say (spec: 50 once the event exists). */
export const DEFAULT_STATE_LEVEL = 50;

/** The parts of `m.room.power_levels` content that decide who may send a state event. */
export interface PowerLevelsContent {
  users?: Record<string, unknown>;
  users_default?: unknown;
  events?: Record<string, unknown>;
  state_default?: unknown;
}

export interface PowerCheck {
  allowed: boolean;
  /** The level the state event needs. */
  required: number;
  /** The user's level; `Infinity` for a creator of a room version with privileged creators (v12+). */
  level: number;
}

/**
 * A power level as a number. Room versions before 10 let levels be numeric strings, and
 * Synapse still serves them as stored; anything else counts as absent.
 */
function toLevel(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return undefined;
}

function own(record: Record<string, unknown> | undefined, key: string): unknown {
  return record && typeof record === "object" && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The level needed to send a state event of `eventType`: its `events` entry, else `state_default`. */
export function requiredStateLevel(powerLevels: PowerLevelsContent | undefined, eventType: string): number {
  return (
    toLevel(own(powerLevels?.events, eventType)) ?? toLevel(powerLevels?.state_default) ?? DEFAULT_STATE_LEVEL
  );
}

/** A user's level from the power levels alone: their `users` entry, else `users_default`, else 0. */
export function userPowerLevel(powerLevels: PowerLevelsContent | undefined, userId: string): number {
  return toLevel(own(powerLevels?.users, userId)) ?? toLevel(powerLevels?.users_default) ?? 0;
}

/**
 * Room versions whose creators outrank every power level (MSC4289): 12 and later, and the
 * unstable "hydra" version that preceded 12.
 */
export function hasPrivilegedCreators(roomVersion: unknown): boolean {
  const version = typeof roomVersion === "string" ? roomVersion : "1";
  if (version === "org.matrix.hydra.11") return true;
  return /^\d+$/.test(version) && Number(version) >= 12;
}

interface CreateEvent {
  sender?: unknown;
  content?: { creator?: unknown; room_version?: unknown; additional_creators?: unknown };
}

/**
 * Whether `userId` may send `eventType` state events in the room, read with the bot's
 * intent (the bot is in every room it takes commands from). Without a power-levels event,
 * every level is its default and only the creator has 100.
 *
 * The create event is read only when the power levels alone refuse: creators of v12+ rooms
 * are not listed in `users`, yet may do anything.
 */
export async function checkStatePower(
  bot: Intent,
  roomId: string,
  userId: string,
  eventType: string = HOOK_STATE_EVENT,
): Promise<PowerCheck> {
  let powerLevels: PowerLevelsContent | undefined;
  try {
    powerLevels = await bot.getState<PowerLevelsContent>(roomId, "m.room.power_levels", "");
  } catch (err) {
    if (!isMatrixApiError(err, "M_NOT_FOUND")) throw err;
  }
  const required = requiredStateLevel(powerLevels, eventType);
  const level = userPowerLevel(powerLevels, userId);
  if (level >= required) return { allowed: true, required, level };

  const create = await readCreateEvent(bot, roomId);
  const content = create?.content ?? {};
  const creators = new Set<unknown>([create?.sender, content.creator]);
  const privileged = hasPrivilegedCreators(content.room_version);
  if (privileged && Array.isArray(content.additional_creators)) {
    for (const extra of content.additional_creators) creators.add(extra);
  }
  if (creators.has(userId)) {
    if (privileged) return { allowed: true, required, level: Number.POSITIVE_INFINITY };
    // Without a power-levels event the creator has 100 (spec, "m.room.power_levels").
    if (!powerLevels && 100 >= required) return { allowed: true, required, level: 100 };
  }
  return { allowed: false, required, level };
}

/**
 * The whole create event (its sender is the creator in v11+ rooms, where the content no longer
 * names one). `format=event` is Matrix v1.16; an older server answers with the content only,
 * which still carries `creator` up to room version 10.
 */
async function readCreateEvent(bot: Intent, roomId: string): Promise<CreateEvent | undefined> {
  try {
    const answer = await bot.request<Record<string, unknown>>(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.create/`,
      { query: { format: "event" } },
    );
    if (answer.content && typeof answer.content === "object") return answer as CreateEvent;
    return { content: answer as CreateEvent["content"] };
  } catch (err) {
    if (isMatrixApiError(err, "M_NOT_FOUND")) return undefined;
    throw err;
  }
}
