import { type CoreConfig, extendCoreConfigSchema, type JSONSchema } from "@trestle/appservice";

export interface WebhooksConfig extends CoreConfig {
  webhooks: {
    /** Base URL people POST to, as seen from outside (a reverse proxy's address in production). */
    publicUrl: string;
    /**
     * Serve the webhook routes on their own port instead of the appservice port, so the
     * appservice API can stay reachable only by the homeserver. 0 = share the appservice port.
     */
    port: number;
    bindAddress: string;
    /** Largest accepted webhook body (413 above). */
    bodyLimitBytes: number;
    /** Default per-hook rate limit; a hook may set its own. */
    rateLimit: { perMinute: number; burst: number };
    /** How long `?wait=true` waits for the message to reach the room before answering 502. */
    waitTimeoutMs: number;
    /** Localpart prefix of the hooks' ghost users: `@<prefix><hook name>:<domain>`. */
    userPrefix: string;
    /** The bridge bot's localpart (the registration's `sender_localpart`). */
    botLocalpart: string;
    /** Optional server-side pepper mixed into stored secret hashes. */
    secretPepper?: string;
    /** Avatars a payload asks for by http(s) URL (Slack's `icon_url`), fetched and uploaded once. */
    avatars: {
      fetch: boolean;
      timeoutMs: number;
      maxBytes: number;
      /** Fetch from loopback and private networks too; off so senders cannot probe the bridge's network. */
      allowPrivateAddresses: boolean;
    };
  };
  provisioning: {
    enabled: boolean;
    /** Bearer token for the provisioning API; required when enabled (checked at start-up). */
    token?: string;
  };
}

export const webhooksConfigSchema: JSONSchema = extendCoreConfigSchema({
  properties: {
    webhooks: {
      type: "object",
      required: ["publicUrl"],
      additionalProperties: false,
      properties: {
        publicUrl: { type: "string", format: "http-url" },
        port: { type: "integer", minimum: 0, maximum: 65535, default: 0 },
        bindAddress: { type: "string", default: "127.0.0.1" },
        bodyLimitBytes: { type: "integer", minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024 },
        rateLimit: {
          type: "object",
          additionalProperties: false,
          default: {},
          properties: {
            perMinute: { type: "number", exclusiveMinimum: 0, default: 60 },
            burst: { type: "integer", minimum: 1, default: 30 },
          },
        },
        waitTimeoutMs: { type: "integer", minimum: 100, maximum: 600_000, default: 30_000 },
        userPrefix: { type: "string", pattern: "^[a-z0-9._=/-]+$", default: "_webhook_" },
        botLocalpart: { type: "string", pattern: "^[a-z0-9._=/-]+$", default: "webhookbot" },
        secretPepper: { type: "string", minLength: 16 },
        avatars: {
          type: "object",
          additionalProperties: false,
          default: {},
          properties: {
            fetch: { type: "boolean", default: true },
            timeoutMs: { type: "integer", minimum: 100, maximum: 60_000, default: 5_000 },
            maxBytes: { type: "integer", minimum: 1024, maximum: 16 * 1024 * 1024, default: 1024 * 1024 },
            allowPrivateAddresses: { type: "boolean", default: false },
          },
        },
      },
    },
    provisioning: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: "boolean", default: false },
        token: { type: "string", minLength: 16 },
      },
    },
  },
  required: ["webhooks"],
});
