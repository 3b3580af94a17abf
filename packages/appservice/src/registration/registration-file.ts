import { randomBytes } from "node:crypto";
import { chmod, rename, rm, writeFile } from "node:fs/promises";
import { Document } from "yaml";
import { readTextFile } from "../config/load-config.js";
import { compileSchema, describeErrors, parseYaml, type YamlSource } from "../config/validation.js";
import { ConfigError } from "../errors.js";
import { compileNamespaceRegex } from "./namespace-matcher.js";
import type { Namespaces, Registration } from "./types.js";

const NAMESPACE_KINDS = ["users", "aliases", "rooms"] as const satisfies readonly (keyof Namespaces)[];

const namespaceList = {
  type: "array",
  items: {
    type: "object",
    required: ["exclusive", "regex"],
    properties: { exclusive: { type: "boolean" }, regex: { type: "string" } },
  },
};

const nonEmptyString = { type: "string", minLength: 1 };

/**
 * The registration file's schema: the spec's `registration.yaml` definition tightened to
 * what Synapse actually enforces (`url` present even if null, both namespace-entry keys
 * required, a URL-safe sender_localpart). Unknown keys are allowed and kept.
 */
export const registrationSchema = {
  type: "object",
  required: ["id", "url", "as_token", "hs_token", "sender_localpart", "namespaces"],
  properties: {
    id: nonEmptyString,
    url: { type: ["string", "null"], format: "http-url" },
    as_token: nonEmptyString,
    hs_token: nonEmptyString,
    sender_localpart: { type: "string", format: "matrix-localpart" },
    namespaces: {
      type: "object",
      properties: { users: namespaceList, aliases: namespaceList, rooms: namespaceList },
    },
    rate_limited: { type: "boolean" },
    protocols: { type: "array", items: nonEmptyString },
    receive_ephemeral: { type: "boolean" },
    "de.sorunome.msc2409.push_ephemeral": { type: "boolean" },
    "org.matrix.msc3202": { type: "boolean" },
    "io.element.msc4190": { type: "boolean" },
    ip_range_whitelist: { type: "array", items: { type: "string" } },
  },
};

/** Reads and validates a registration file. Throws ConfigError naming the file, fields and lines. */
export async function loadRegistration(path: string): Promise<Registration> {
  return parseRegistration(await readTextFile(path, "registration"), path);
}

/** As {@link loadRegistration}, for YAML text already in memory; `sourceName` appears in errors. */
export function parseRegistration(yamlText: string, sourceName: string): Registration {
  return checkRegistration(parseYaml(yamlText, sourceName, "registration file"));
}

/** Validates an in-memory registration (for example one a bridge built by hand). */
export function validateRegistration(value: unknown, sourceName = "(in memory)"): Registration {
  return checkRegistration({ value, sourceName, lineOf: () => undefined });
}

function checkRegistration(source: YamlSource): Registration {
  const { value, sourceName } = source;
  const validate = compileSchema(registrationSchema, { useDefaults: false });
  const problems = validate(value) ? [] : describeErrors(validate.errors ?? [], value, source);
  problems.push(...regexProblems(value, source));
  if (problems.length > 0) throw new ConfigError(`Invalid registration ${sourceName}`, problems);

  const raw = value as Registration & { namespaces: Partial<Namespaces> };
  return {
    ...raw,
    namespaces: {
      ...raw.namespaces,
      users: raw.namespaces.users ?? [],
      aliases: raw.namespaces.aliases ?? [],
      rooms: raw.namespaces.rooms ?? [],
    },
  };
}

/** Regexes must compile; checked on every string regex even when other fields are invalid. */
function regexProblems(value: unknown, source: Pick<YamlSource, "lineOf">): string[] {
  const problems: string[] = [];
  const namespaces = (value as { namespaces?: unknown } | null)?.namespaces;
  for (const kind of NAMESPACE_KINDS) {
    const list = (namespaces as Record<string, unknown> | null | undefined)?.[kind];
    if (!Array.isArray(list)) continue;
    list.forEach((entry: unknown, index) => {
      const regex = (entry as { regex?: unknown } | null)?.regex;
      if (typeof regex !== "string") return;
      const compiled = compileNamespaceRegex(kind, index, regex);
      if (compiled.problem === undefined) return;
      const line = source.lineOf(["namespaces", kind, index, "regex"]);
      problems.push(compiled.problem + (line ? ` (line ${line})` : ""));
    });
  }
  return problems;
}

// Known keys first, in the order an operator reads them; extensions after, as given.
const KEY_ORDER = [
  "id",
  "url",
  "as_token",
  "hs_token",
  "sender_localpart",
  "rate_limited",
  "protocols",
  "receive_ephemeral",
  "de.sorunome.msc2409.push_ephemeral",
  "org.matrix.msc3202",
  "io.element.msc4190",
  "namespaces",
];

/** The registration as YAML text, validated first so an invalid one is never written. */
export function stringifyRegistration(reg: Registration): string {
  validateRegistration(structuredClone(reg), "(not written)");
  const ordered: Record<string, unknown> = {};
  for (const key of KEY_ORDER) if (reg[key] !== undefined) ordered[key] = reg[key];
  for (const [key, value] of Object.entries(reg)) if (!(key in ordered)) ordered[key] = value;
  const doc = new Document(ordered);
  doc.commentBefore =
    " Appservice registration. It holds the as_token and hs_token: keep it private.\n" +
    " Give its path to the homeserver (Synapse: app_service_config_files) and restart it.";
  // Quoting every string value keeps PyYAML (YAML 1.1, what Synapse uses) from reading a
  // value such as `on`, `no` or `0777` as a boolean or number.
  return doc.toString({ lineWidth: 0, defaultStringType: "QUOTE_SINGLE", defaultKeyType: "PLAIN" });
}

/**
 * Writes the registration as YAML with mode 0600, since it holds both tokens. The file is
 * written beside the target and renamed into place, so a crash never leaves half a file
 * and an existing file's looser mode is not inherited.
 */
export async function writeRegistration(path: string, reg: Registration): Promise<void> {
  const text = stringifyRegistration(reg);
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(temp, text, { mode: 0o600, flag: "wx" });
    // The mode given to writeFile is filtered by the umask; make sure it is exactly 0600.
    await chmod(temp, 0o600);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`Cannot write the registration file ${path} (${reason})`);
  }
}
