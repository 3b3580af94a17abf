import { type Logger, MatrixApiError, MatrixConnectionError, silentLogger } from "@trestle/appservice";
import { Registry } from "prom-client";
import type { HookPoster, PostRequest } from "../../src/delivery/poster.js";
import { DeliveryQueue, type DeliveryQueueOptions } from "../../src/delivery/queue.js";
import { NedbHookStore } from "../../src/hooks/hook-store.js";
import { defaultHookSettings, type HookRecord } from "../../src/hooks/model.js";
import { hashSecret } from "../../src/hooks/secrets.js";
import { Renderer } from "../../src/rendering/renderer.js";

export const ROOM_A = "!a:example.org";
export const ROOM_B = "!b:example.org";
export const SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret-x";

let hookCounter = 0;

/** A hook record as the store holds it; the secret is SECRET unless said otherwise. */
export function makeHook(overrides: Partial<HookRecord> = {}): HookRecord {
  hookCounter += 1;
  return {
    ...defaultHookSettings(),
    id: `hook${hookCounter}`,
    name: `ci${hookCounter}`,
    createdBy: "@admin:example.org",
    createdAt: 1_700_000_000_000,
    roomId: ROOM_A,
    secretHash: hashSecret(SECRET),
    updatedAt: 1_700_000_000_000,
    ...overrides,
  };
}

export async function hookStore(...hooks: HookRecord[]): Promise<NedbHookStore> {
  const store = await NedbHookStore.open({ inMemory: true, logger: silentLogger() });
  for (const hook of hooks) await store.put(hook);
  return store;
}

export type PostHandler = (request: PostRequest, call: number) => string | Promise<string>;

/** Records what would reach Matrix; `handler` decides each post's fate (default: an event id). */
export class FakePoster implements HookPoster {
  readonly posts: PostRequest[] = [];
  readonly notices: { roomId: string; body: string }[] = [];
  /** Posts currently in progress, and the most at once. */
  inFlight = 0;
  maxInFlight = 0;
  private calls = 0;

  constructor(public handler: PostHandler = (request) => `$event-${request.txnId}`) {}

  async post(request: PostRequest): Promise<string> {
    this.calls += 1;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const eventId = await this.handler(request, this.calls);
      this.posts.push(request);
      return eventId;
    } finally {
      this.inFlight -= 1;
    }
  }

  async notice(roomId: string, body: string): Promise<void> {
    this.notices.push({ roomId, body });
  }

  /** Bodies of the successful posts, optionally of one room. */
  bodies(roomId?: string): string[] {
    return this.posts.filter((p) => !roomId || p.hook.roomId === roomId).map((p) => p.message.body);
  }
}

export const forbidden = () =>
  new MatrixApiError(403, "M_FORBIDDEN", "You are not in this room", { method: "PUT", path: "/send" });
export const unavailable = () =>
  new MatrixApiError(503, "M_UNKNOWN", "Service unavailable", { method: "PUT", path: "/send" });
export const refused = () =>
  new MatrixConnectionError("ECONNREFUSED", "connect ECONNREFUSED", { method: "PUT", path: "/send" });

export interface TestQueue {
  queue: DeliveryQueue;
  poster: FakePoster;
  registry: Registry;
}

/** An in-memory queue over a real Renderer, with quick retries, started. */
export async function startQueue(
  hooks: Pick<NedbHookStore, "get">,
  options: Partial<DeliveryQueueOptions> & { poster?: FakePoster; logger?: Logger } = {},
): Promise<TestQueue> {
  const poster = options.poster ?? new FakePoster();
  const registry = new Registry();
  const queue = new DeliveryQueue({
    inMemory: !options.dataDir,
    hooks,
    renderer: new Renderer({ logger: silentLogger() }),
    logger: silentLogger(),
    metrics: registry,
    ...options,
    retry: { baseDelayMs: 2, maxDelayMs: 10, ...options.retry },
    poster,
  });
  await queue.start();
  return { queue, poster, registry };
}

/** The value of a counter or gauge without labels (or of one label set). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const match = values.find((v) =>
    Object.entries(labels).every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value),
  );
  return match?.value ?? 0;
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it is true (or throws after `timeoutMs`). */
export async function eventually(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await delay(2);
  }
}
