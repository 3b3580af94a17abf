import type { LogLevel } from "../logging.js";
import type { JSONSchema } from "./validation.js";

/** The part of every bridge's config that the framework itself reads. */
export interface CoreConfig {
  homeserver: {
    /** Client-Server API base URL the bridge talks to, e.g. `http://localhost:8008`. */
    url: string;
    /** The homeserver's server name: the part after `:` in user IDs. */
    domain: string;
  };
  appservice: {
    /** Port the homeserver pushes transactions to; `-p` overrides it. */
    port: number;
    bindAddress: string;
    /** Largest request body accepted from the homeserver. */
    maxBodyBytes?: number;
  };
  logging: { level: LogLevel };
  /** Where stores and other state live. */
  dataDir: string;
  metrics: { enabled: boolean };
}

const LOG_LEVELS: LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** Properties of {@link CoreConfig}, to be embedded in a bridge's own config schema. */
export const coreConfigProperties = {
  homeserver: {
    type: "object",
    required: ["url", "domain"],
    properties: {
      url: { type: "string", format: "http-url" },
      domain: { type: "string", format: "matrix-server-name" },
    },
  },
  appservice: {
    type: "object",
    default: {},
    required: ["port"],
    properties: {
      port: { type: "integer", minimum: 1, maximum: 65535 },
      // Loopback by default: exposing the appservice port is a choice, not an accident.
      bindAddress: { type: "string", minLength: 1, default: "127.0.0.1" },
      maxBodyBytes: { type: "integer", minimum: 1 },
    },
  },
  logging: {
    type: "object",
    default: {},
    properties: { level: { enum: LOG_LEVELS, default: "info" } },
  },
  dataDir: { type: "string", minLength: 1, default: "data" },
  metrics: {
    type: "object",
    default: {},
    properties: { enabled: { type: "boolean", default: false } },
  },
} satisfies Record<string, JSONSchema>;

export const coreConfigRequired = ["homeserver"];

/** A schema for {@link CoreConfig} alone; unknown top-level keys are left to the bridge's schema. */
export const coreConfigSchema: JSONSchema = {
  type: "object",
  required: coreConfigRequired,
  properties: coreConfigProperties,
};

/**
 * A bridge's config schema with the core properties embedded: the bridge's own
 * `properties` and `required` are added to the core ones, other keywords kept as given.
 */
export function extendCoreConfigSchema(bridgeSchema: JSONSchema): JSONSchema {
  const { properties, required, ...rest } = bridgeSchema as {
    properties?: Record<string, JSONSchema>;
    required?: string[];
  };
  return {
    type: "object",
    ...rest,
    required: [...new Set([...coreConfigRequired, ...(required ?? [])])],
    properties: { ...coreConfigProperties, ...properties },
  };
}
