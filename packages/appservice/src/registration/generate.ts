import { randomBytes } from "node:crypto";
import { isHttpUrl, isSenderLocalpart, isServerName } from "../config/validation.js";
import { ConfigError } from "../errors.js";
import type { Registration } from "./types.js";

export interface GenerateRegistrationOptions {
  /** Defaults to `senderLocalpart`, which the homeserver already requires to be unique. */
  id?: string;
  /** Where the homeserver reaches the bridge; `null` for a bridge that receives no traffic. */
  url: string | null;
  senderLocalpart: string;
  /** Localpart prefix of the bridge's ghost users, e.g. `_irc_`. */
  userPrefix: string;
  /** Alias localpart prefix, e.g. `_irc_`; without it the registration claims no aliases. */
  aliasPrefix?: string;
  /** The homeserver's server name, e.g. `example.org`. */
  serverName: string;
  protocols?: string[];
  /** Receive typing, receipts, presence and to-device messages (MSC2409, stable and unstable keys). */
  ephemeral?: boolean;
  /** Receive device lists and one-time-key counts in transactions (MSC3202). */
  msc3202?: boolean;
  /** Manage devices without /login (MSC4190). */
  msc4190?: boolean;
}

/** 256 bits from the CSPRNG, hex-encoded (64 characters) like matrix-appservice's tokens. */
export function generateToken(): string {
  return randomBytes(32).toString("hex");
}

/** Escapes every character with a meaning in Python or JavaScript regex syntax. */
export function escapeRegex(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Localpart characters of the user-ID grammar; alias localparts may hold anything but ':'.
const USER_PREFIX = /^[a-z0-9._=/+-]+$/;
const ALIAS_PREFIX = /^[^:\s]+$/;

/**
 * Builds a new registration with fresh tokens and exclusive namespaces. The regexes are
 * anchored at both ends (`^@_irc_.*:example\.org$`): Synapse's `re.match` anchors only the
 * start, so without `$` a remote user on `example.org.evil.net` would be in the namespace,
 * and homeservers that search rather than match (Dendrite, Conduit) would also accept
 * anything merely containing the pattern.
 */
export function generateRegistration(options: GenerateRegistrationOptions): Registration {
  const problems = optionProblems(options);
  if (problems.length > 0) throw new ConfigError("Cannot generate a registration", problems);

  const server = escapeRegex(options.serverName);
  const reg: Registration = {
    id: options.id ?? options.senderLocalpart,
    url: options.url,
    as_token: generateToken(),
    hs_token: generateToken(),
    sender_localpart: options.senderLocalpart,
    rate_limited: false,
    namespaces: {
      users: [{ exclusive: true, regex: `^@${escapeRegex(options.userPrefix)}.*:${server}$` }],
      aliases:
        options.aliasPrefix === undefined
          ? []
          : [{ exclusive: true, regex: `^#${escapeRegex(options.aliasPrefix)}.*:${server}$` }],
      rooms: [],
    },
  };
  if (options.protocols?.length) reg.protocols = [...options.protocols];
  if (options.ephemeral) {
    reg.receive_ephemeral = true;
    // Synapse still reads only the unstable key for to-device delivery, so send both.
    reg["de.sorunome.msc2409.push_ephemeral"] = true;
  }
  if (options.msc3202) reg["org.matrix.msc3202"] = true;
  if (options.msc4190) reg["io.element.msc4190"] = true;
  return reg;
}

function optionProblems(options: GenerateRegistrationOptions): string[] {
  const problems: string[] = [];
  if (options.url !== null && !isHttpUrl(options.url)) {
    problems.push(`url: must be an http:// or https:// URL, got ${JSON.stringify(options.url)}`);
  }
  if (!isSenderLocalpart(options.senderLocalpart)) {
    problems.push("senderLocalpart: must be made of a-z, 0-9, '.', '_', '-' or '/'");
  }
  if (!USER_PREFIX.test(options.userPrefix)) {
    problems.push("userPrefix: must be a non-empty user localpart prefix (a-z, 0-9, . _ = - / +)");
  }
  if (options.aliasPrefix !== undefined && !ALIAS_PREFIX.test(options.aliasPrefix)) {
    problems.push("aliasPrefix: must be non-empty and contain no ':' or whitespace");
  }
  if (!isServerName(options.serverName)) {
    problems.push(`serverName: must be a Matrix server name, got ${JSON.stringify(options.serverName)}`);
  }
  if (options.id !== undefined && options.id.length === 0) problems.push("id: must not be empty");
  return problems;
}
