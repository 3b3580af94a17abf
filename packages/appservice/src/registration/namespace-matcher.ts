import { ConfigError } from "../errors.js";
import { compilePythonRegex, matchesAtStart, RegexTranslationError } from "./python-regex.js";
import type { NamespaceEntry, Registration } from "./types.js";

interface CompiledEntry {
  exclusive: boolean;
  re: RegExp;
}

/** Compiles the regex of `namespaces.<kind>[index]`, or describes why it cannot be compiled. */
export function compileNamespaceRegex(
  kind: string,
  index: number,
  regex: string,
): { re: RegExp; problem?: undefined } | { problem: string } {
  try {
    return { re: compilePythonRegex(regex) };
  } catch (err) {
    if (!(err instanceof RegexTranslationError)) throw err;
    return {
      problem: `namespaces.${kind}[${index}].regex: invalid regex ${JSON.stringify(regex)}: ${err.message}`,
    };
  }
}

function compileList(kind: string, entries: readonly NamespaceEntry[]): CompiledEntry[] {
  return entries.map((entry, index) => {
    const compiled = compileNamespaceRegex(kind, index, entry.regex);
    if (compiled.problem !== undefined) throw new ConfigError("Invalid namespace regex", [compiled.problem]);
    return { exclusive: entry.exclusive, re: compiled.re };
  });
}

function matches(entries: readonly CompiledEntry[], value: string, exclusiveOnly: boolean): boolean {
  return entries.some((e) => (!exclusiveOnly || e.exclusive) && matchesAtStart(e.re, value));
}

/**
 * Answers "is this ID ours?" the way Synapse does: each namespace regex is applied with
 * Python's `re.match`, i.e. anchored at the start of the ID but not at its end.
 */
export class NamespaceMatcher {
  /** The bridge bot's own user ID: `@<sender_localpart>:<serverName>`. */
  readonly botUserId: string;
  private readonly users: CompiledEntry[];
  private readonly aliases: CompiledEntry[];
  private readonly rooms: CompiledEntry[];

  constructor(registration: Registration, serverName: string) {
    this.botUserId = `@${registration.sender_localpart}:${serverName}`;
    this.users = compileList("users", registration.namespaces.users);
    this.aliases = compileList("aliases", registration.namespaces.aliases);
    this.rooms = compileList("rooms", registration.namespaces.rooms);
  }

  isUserInNamespace(userId: string): boolean {
    return matches(this.users, userId, false);
  }

  isUserInExclusiveNamespace(userId: string): boolean {
    return matches(this.users, userId, true);
  }

  isAliasInNamespace(alias: string): boolean {
    return matches(this.aliases, alias, false);
  }

  isAliasInExclusiveNamespace(alias: string): boolean {
    return matches(this.aliases, alias, true);
  }

  isRoomInNamespace(roomId: string): boolean {
    return matches(this.rooms, roomId, false);
  }

  isRoomInExclusiveNamespace(roomId: string): boolean {
    return matches(this.rooms, roomId, true);
  }

  /** The bot is the appservice's sender; it need not match any namespace. */
  isBot(userId: string): boolean {
    return userId === this.botUserId;
  }
}
