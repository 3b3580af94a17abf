import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { silentLogger } from "@trestle/appservice";
import { Renderer, type RendererOptions } from "../../src/rendering/index.js";

export function renderer(options: Partial<RendererOptions> = {}): Renderer {
  return new Renderer({ logger: silentLogger(), ...options });
}

/** A payload written for these tests, from test/fixtures/payloads/<name>.json. */
export function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../fixtures/payloads/${name}.json`, import.meta.url), "utf8"));
}

// GitHub payloads are deep and vary per event; tests read and adjust them freely.
// biome-ignore lint/suspicious/noExplicitAny: example payloads are untyped JSON
type Payload = Record<string, any>;

interface WebhookDefinition {
  name: string;
  examples: Payload[];
}

let definitions: WebhookDefinition[] | undefined;

/**
 * A real GitHub payload from @octokit/webhooks-examples: the first example of `event` that
 * `pick` accepts. Returns a deep copy, so a test may adjust it.
 */
export function githubExample(event: string, pick: (example: Payload) => boolean = () => true): Payload {
  if (!definitions) {
    const path = createRequire(import.meta.url).resolve("@octokit/webhooks-examples");
    definitions = JSON.parse(readFileSync(path, "utf8")) as WebhookDefinition[];
  }
  const example = definitions.find((d) => d.name === event)?.examples.find(pick);
  if (!example) throw new Error(`@octokit/webhooks-examples has no matching ${event} example`);
  return structuredClone(example);
}

/** Bytes the event content takes as JSON, the way the homeserver measures it. */
export function eventBytes(content: unknown): number {
  return Buffer.byteLength(JSON.stringify(content), "utf8");
}
