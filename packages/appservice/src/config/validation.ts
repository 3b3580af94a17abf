import { Ajv2020, type ErrorObject, type SchemaObject } from "ajv/dist/2020.js";
import { type Document, LineCounter, parseDocument } from "yaml";
import { ConfigError } from "../errors.js";

/** A JSON Schema (draft 2020-12, which also accepts the draft-07 keywords bridges commonly use). */
export type JSONSchema = SchemaObject;

/** A parsed YAML file plus what is needed to point an error at a line. */
export interface YamlSource {
  value: unknown;
  sourceName: string;
  /** 1-based line of the node at `path`, if that node came from the file (not from a default). */
  lineOf(path: readonly (string | number)[]): number | undefined;
}

// Matrix server-name grammar (spec appendix "Server Name"): IP literal or DNS name, optional port.
const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?$/;
// Localparts Synapse accepts for sender_localpart: the user-ID grammar minus what Python's
// urllib.parse.quote would encode ("=" and "+"), since Synapse rejects those.
const SENDER_LOCALPART = /^[a-z0-9._/-]+$/;

/**
 * Formats we implement ourselves (ajv-formats is not a dependency). Each carries the
 * phrase used in error messages, because `must match format "http-url"` alone does not
 * tell an operator what to write.
 */
const FORMATS: Record<string, { validate: (value: string) => boolean; hint: string }> = {
  uri: { validate: (v) => URL.canParse(v), hint: "an absolute URI" },
  "http-url": {
    validate: (v) => /^https?:\/\/[^\s]+$/i.test(v) && URL.canParse(v),
    hint: "an http:// or https:// URL",
  },
  "matrix-server-name": {
    validate: (v) => SERVER_NAME.test(v),
    hint: 'a Matrix server name such as "example.org" or "example.org:8448"',
  },
  "matrix-localpart": {
    validate: (v) => SENDER_LOCALPART.test(v),
    hint: "a user localpart made of a-z, 0-9, '.', '_', '-' or '/'",
  },
};

export function isHttpUrl(value: string): boolean {
  return FORMATS["http-url"]!.validate(value);
}

export function isServerName(value: string): boolean {
  return SERVER_NAME.test(value);
}

export function isSenderLocalpart(value: string): boolean {
  return SENDER_LOCALPART.test(value);
}

/**
 * A fresh validator per schema: no shared ajv instance, so callers never see each other's
 * compiled schemas or formats.
 */
export function compileSchema(schema: JSONSchema, options: { useDefaults: boolean }) {
  const ajv = new Ajv2020({
    allErrors: true,
    useDefaults: options.useDefaults,
    verbose: true,
    // Unknown keywords are schema typos; fail loudly. Type-applicability checks would
    // reject ordinary bridge schemas that put `properties` under `allOf`, so they stay off.
    strictSchema: true,
    strictTypes: false,
    strictTuples: false,
    allowUnionTypes: true,
  });
  for (const [name, format] of Object.entries(FORMATS)) {
    ajv.addFormat(name, { type: "string", validate: format.validate });
  }
  return ajv.compile(schema);
}

/** Parses YAML, turning syntax errors (including duplicate keys) into a ConfigError with lines. */
export function parseYaml(text: string, sourceName: string, what: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      `Cannot parse ${what} ${sourceName} as YAML`,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return `line ${pos.line}, column ${pos.col}: ${e.message.split("\n")[0] ?? e.message}`;
      }),
    );
  }
  return {
    value: doc.toJS(),
    sourceName,
    lineOf: (path) => lineOfNode(doc, lineCounter, path),
  };
}

function lineOfNode(
  doc: Document.Parsed,
  lineCounter: LineCounter,
  path: readonly (string | number)[],
): number | undefined {
  const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range ? lineCounter.linePos(range[0]).line : undefined;
}

/** Turns ajv's JSON-pointer path into segments, numeric where the data is an array. */
function pointerToSegments(pointer: string, data: unknown): (string | number)[] {
  if (pointer === "") return [];
  const segments: (string | number)[] = [];
  let current = data;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const segment = Array.isArray(current) ? Number(key) : key;
    segments.push(segment);
    current = current !== null && typeof current === "object" ? Reflect.get(current, segment) : undefined;
  }
  return segments;
}

/** `namespaces.users[0].regex`; odd keys are quoted so the path stays unambiguous. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z0-9_.$-]+$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out || "(top level)";
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  integer: "an integer",
  boolean: "a boolean",
  object: "an object",
  array: "an array",
  null: "null",
};

// YAML 1.1 booleans that PyYAML (and so Synapse) accepts but YAML 1.2 reads as strings.
const YAML11_BOOLEANS = /^(?:y|n|yes|no|on|off)$/i;

function describeError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "type": {
      const types = ([] as unknown[]).concat(params.type).map((t) => TYPE_NAMES[String(t)] ?? String(t));
      const hint =
        types.includes("a boolean") && typeof error.data === "string" && YAML11_BOOLEANS.test(error.data)
          ? " (write true or false)"
          : "";
      return `must be ${types.join(" or ")}${hint}`;
    }
    case "required":
      return "is required";
    case "additionalProperties":
      return "is not a recognised key";
    case "enum":
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "minLength":
      return params.limit === 1 ? "must not be empty" : (error.message ?? "is too short");
    case "format": {
      const format = FORMATS[String(params.format)];
      return format ? `must be ${format.hint}` : (error.message ?? "has the wrong format");
    }
    default:
      return error.message ?? "is invalid";
  }
}

/**
 * One line per ajv error, naming the field path and, when the value came from the file,
 * its line. `required` and `additionalProperties` errors name the offending child key.
 */
export function describeErrors(
  errors: readonly ErrorObject[],
  data: unknown,
  source?: Pick<YamlSource, "lineOf">,
): string[] {
  const problems = new Set<string>();
  for (const error of errors) {
    const parent = pointerToSegments(error.instancePath, data);
    const params = error.params as Record<string, unknown>;
    const child =
      error.keyword === "required"
        ? params.missingProperty
        : error.keyword === "additionalProperties"
          ? params.additionalProperty
          : undefined;
    const segments = typeof child === "string" ? [...parent, child] : parent;
    // A missing top-level key has no better line than 1, which would only mislead.
    const line =
      source && segments.length > 0
        ? (source.lineOf(segments) ?? (parent.length > 0 ? source.lineOf(parent) : undefined))
        : undefined;
    problems.add(`${formatPath(segments)}: ${describeError(error)}${line ? ` (line ${line})` : ""}`);
  }
  return [...problems];
}
