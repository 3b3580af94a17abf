import { readFile } from "node:fs/promises";
import { ConfigError } from "../errors.js";
import { compileSchema, describeErrors, type JSONSchema, parseYaml } from "./validation.js";

export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

export interface LoadConfigOptions<T> {
  /** Values used where the file says nothing; merged under the file, objects key by key, arrays whole. */
  defaults?: DeepPartial<T>;
}

/**
 * Reads a YAML config file and validates it against `schema`, filling in schema defaults.
 * Throws ConfigError naming the file and every offending field path.
 */
export async function loadConfig<T>(
  path: string,
  schema: JSONSchema,
  options: LoadConfigOptions<T> = {},
): Promise<T> {
  return parseConfig<T>(await readTextFile(path, "config"), path, schema, options);
}

/** As {@link loadConfig}, for YAML text already in memory; `sourceName` appears in errors. */
export function parseConfig<T>(
  yamlText: string,
  sourceName: string,
  schema: JSONSchema,
  options: LoadConfigOptions<T> = {},
): T {
  const source = parseYaml(yamlText, sourceName, "config file");
  // An empty file is an empty config: defaults may still make it valid.
  const fromFile = source.value ?? {};
  const value = options.defaults === undefined ? fromFile : mergeDefaults(options.defaults, fromFile);
  const validate = compileSchema(schema, { useDefaults: true });
  if (!validate(value)) {
    throw new ConfigError(
      `Invalid config file ${sourceName}`,
      describeErrors(validate.errors ?? [], value, source),
    );
  }
  return value as T;
}

/** Reads a file as UTF-8, turning the usual failures into a ConfigError an operator can act on. */
export async function readTextFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ConfigError(`The ${what} file ${path} does not exist`);
    if (code === "EACCES")
      throw new ConfigError(`The ${what} file ${path} is not readable (permission denied)`);
    if (code === "EISDIR") throw new ConfigError(`The ${what} path ${path} is a directory, not a file`);
    throw new ConfigError(`Cannot read the ${what} file ${path}: ${(err as Error).message}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The file wins; defaults fill gaps. Nothing is shared with `defaults`, so it can be reused. */
export function mergeDefaults(defaults: unknown, value: unknown): unknown {
  if (value === undefined) return structuredClone(defaults);
  if (!isPlainObject(defaults) || !isPlainObject(value)) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [key, def] of Object.entries(defaults)) {
    if (def !== undefined) out[key] = mergeDefaults(def, value[key]);
  }
  return out;
}
