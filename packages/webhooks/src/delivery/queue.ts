import { backoffDelayMs, type Logger, type RetryPolicy, resolveRetryPolicy } from "@trestle/appservice";
import type { Registry } from "prom-client";
import type { HookStore } from "../hooks/hook-store.js";
import type { HookRecord } from "../hooks/model.js";
import type { TemplateError } from "../rendering/errors.js";
import type { Renderer } from "../rendering/renderer.js";
import type { WebhookHeaders } from "../rendering/types.js";
import { detectBuiltinTemplate } from "../templates/registry.js";
import { DeliveryUnavailableError } from "./errors.js";
import { type ClassifiedFailure, classifyDeliveryError } from "./failures.js";
import {
  type DeliveryJob,
  type DeliveryOutcome,
  type DeliveryRequest,
  type FailedDelivery,
  JobIdSource,
  templateHeaders,
} from "./job.js";
import { DeliveryJournal } from "./journal.js";
import { createDeliveryMetrics, type DeliveryMetrics } from "./metrics.js";
import { TemplateErrorNotices, templateErrorNotice } from "./notices.js";
import type { HookPoster } from "./poster.js";

export interface DeliveryRetryPolicy {
  /** Wait before the first retry (default 1 s); doubles with every further failure, with jitter. */
  baseDelayMs: number;
  /** Longest wait between two attempts (default 60 s). */
  maxDelayMs: number;
  /** Longest wait a 429 may ask for and get (default 5 minutes). */
  maxRetryAfterMs: number;
  /** Attempts ending in a permanent failure before the job is dead-lettered (default 5). */
  maxPermanentAttempts: number;
}

export const DEFAULT_DELIVERY_RETRY: Readonly<DeliveryRetryPolicy> = Object.freeze({
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  maxRetryAfterMs: 5 * 60_000,
  maxPermanentAttempts: 5,
});

/** Timer functions; tests may pass fakes. */
export interface DeliveryTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface DeliveryQueueOptions {
  /** Directory of `deliveries.journal`; required unless `inMemory`. */
  dataDir?: string;
  /** Keep the queue in memory only (tests): nothing survives a restart. */
  inMemory?: boolean;
  /** Where each job's hook is looked up when it is sent (it may have changed or gone meanwhile). */
  hooks: Pick<HookStore, "get">;
  renderer: Renderer;
  poster: HookPoster;
  logger: Logger;
  /** The process's registry (`appservice.metrics`). */
  metrics: Registry;
  /** Rooms sent to at the same time (default 8). */
  roomConcurrency?: number;
  /** Jobs held at most; beyond, `enqueue` refuses with 503 (default 10,000). */
  maxDepth?: number;
  /**
   * Dead letters kept per room (default 1,000). Past it the one that failed longest ago is
   * discarded, logged and counted: a room whose webhooks keep failing must not grow the store
   * without bound.
   */
  maxDeadLettersPerRoom?: number;
  retry?: Partial<DeliveryRetryPolicy>;
  /** One template-error notice per hook and error in this window (default 10 minutes). */
  noticeIntervalMs?: number;
  /** How long `stop()` waits for sends in progress (default 10 s). */
  stopTimeoutMs?: number;
  /** Milliseconds clock (default Date.now). */
  now?: () => number;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  timers?: DeliveryTimers;
}

/** What `enqueue` answers once the job is persisted. */
export interface EnqueuedDelivery {
  jobId: string;
  /** Settles when the job is delivered, skipped, given up on, or the queue stops. Never rejects. */
  done: Promise<DeliveryOutcome>;
}

/** A queued job as `describe` reports it. */
export interface DeliveryStatus {
  roomId: string;
  /** `sending`: an attempt is in progress; `retrying`: waiting after a failure; else `queued`. */
  state: "queued" | "sending" | "retrying";
  /** Failed attempts so far. */
  attempts: number;
  /** Why the last attempt failed. */
  lastError?: string;
}

interface QueuedJob {
  job: DeliveryJob;
  attempts: number;
  permanentFailures: number;
  lastError?: string;
  settle: (outcome: DeliveryOutcome) => void;
  settled: boolean;
}

interface Lane {
  /** By seq; the head is the only job being worked on. */
  jobs: QueuedJob[];
  busy: boolean;
  retryTimer?: unknown;
}

type Result = { kind: "done"; outcome: DeliveryOutcome } | { kind: "retry"; failure: ClassifiedFailure };

type State = "idle" | "starting" | "running" | "stopping" | "stopped";

const REAL_TIMERS: DeliveryTimers = {
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    // The HTTP server keeps a running bridge alive; a retry timer must not keep a stopped one.
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * The durable webhook delivery queue.
 *
 * `enqueue` resolves only once the job is in `deliveries.journal`, which is what makes answering the
 * sender 202 safe. Jobs are sent in order within a room (by seq) and rooms in parallel, at most
 * `roomConcurrency` at a time, taking turns. A failing job blocks its own room only:
 *
 * - transient failures (homeserver down, 5xx, 429) are retried with exponential backoff and
 *   jitter, capped at `maxDelayMs`, for as long as it takes;
 * - permanent failures (4xx: the bot was kicked…) are retried up to `maxPermanentAttempts`
 *   times, then the job is dead-lettered: kept in the store as failed, with the reason, logged
 *   at error and counted. Nothing is dropped silently.
 *
 * Delivery is at least once: a job sent just before a crash (and not yet removed) is sent again
 * after restart, with the same transaction id, which the homeserver deduplicates.
 */
export class DeliveryQueue {
  private readonly options: DeliveryQueueOptions;
  private readonly logger: Logger;
  private readonly metrics: DeliveryMetrics;
  private readonly retry: DeliveryRetryPolicy;
  private readonly backoff: RetryPolicy;
  private readonly notices: TemplateErrorNotices;
  private readonly concurrency: number;
  private readonly maxDepth: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly timers: DeliveryTimers;

  private state: State = "idle";
  private store: DeliveryJournal | undefined;
  private readonly lanes = new Map<string, Lane>();
  /** Rooms whose head job may be attempted now, in turn order. */
  private readonly ready = new Set<string>();
  private readonly jobs = new Map<string, QueuedJob>();
  private readonly lastSeq = new Map<string, number>();
  private readonly jobIds = new JobIdSource();
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(options: DeliveryQueueOptions) {
    if (!options.inMemory && !options.dataDir) {
      throw new RangeError("DeliveryQueue needs a dataDir, or inMemory: true");
    }
    this.options = options;
    this.logger = options.logger.child({ component: "delivery" });
    this.metrics = createDeliveryMetrics(options.metrics);
    this.retry = { ...DEFAULT_DELIVERY_RETRY, ...definedOnly(options.retry ?? {}) };
    this.backoff = resolveRetryPolicy({
      baseDelayMs: this.retry.baseDelayMs,
      maxDelayMs: this.retry.maxDelayMs,
    });
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.timers = options.timers ?? REAL_TIMERS;
    this.notices = new TemplateErrorNotices({ intervalMs: options.noticeIntervalMs, now: this.now });
    this.concurrency = Math.max(1, options.roomConcurrency ?? 8);
    this.maxDepth = Math.max(1, options.maxDepth ?? 10_000);
  }

  /** Jobs accepted and not finished: queued, being sent, or waiting to retry. */
  get depth(): number {
    return this.jobs.size;
  }

  get running(): boolean {
    return this.state === "running";
  }

  /**
   * Opens the store and queues the jobs a previous run left, in their rooms' order, ahead of
   * anything new. Resolves to how many were resumed.
   */
  async start(): Promise<number> {
    if (this.state !== "idle") throw new Error(`DeliveryQueue cannot start: it is ${this.state}`);
    this.state = "starting";
    let pending: DeliveryJob[];
    try {
      this.store = await DeliveryJournal.open({
        dataDir: this.options.dataDir,
        inMemory: this.options.inMemory,
        logger: this.logger,
      });
      for (const [roomId, seq] of this.store.lastSeqs()) this.lastSeq.set(roomId, seq);
      pending = this.store.pending();
      const failed = this.store.failed().length;
      if (failed > 0) this.logger.warn({ failed }, "the delivery store holds dead-lettered webhooks");
    } catch (err) {
      this.state = "idle";
      await this.store?.close().catch(() => {});
      this.store = undefined;
      throw err;
    }
    this.state = "running";
    for (const job of pending) this.queue(job);
    if (pending.length > 0) this.logger.info({ jobs: pending.length }, "resuming webhook deliveries");
    this.updateDepth();
    this.pump();
    return pending.length;
  }

  /**
   * Persists a webhook and queues it behind its room's earlier ones. Resolves once it is on disk;
   * throws DeliveryUnavailableError (503) when it could not be accepted.
   */
  async enqueue(request: DeliveryRequest): Promise<EnqueuedDelivery> {
    const store = this.store;
    if (this.state !== "running" || !store) {
      throw new DeliveryUnavailableError("The bridge is not accepting webhooks right now; retry later");
    }
    if (this.depth >= this.maxDepth) {
      this.logger.warn(
        { hook: request.hookId, depth: this.depth },
        "delivery queue full; refusing a webhook",
      );
      throw new DeliveryUnavailableError("Too many webhooks are waiting to be delivered; retry later");
    }
    // Numbered before the write, so the room's order is the order of the calls.
    const seq = (this.lastSeq.get(request.roomId) ?? 0) + 1;
    this.lastSeq.set(request.roomId, seq);
    const job: DeliveryJob = {
      id: this.jobIds.next(),
      hookId: request.hookId,
      roomId: request.roomId,
      seq,
      receivedAt: request.receivedAt ?? this.now(),
      payload: request.payload,
      headers: templateHeaders(request.headers),
    };
    if (request.deliveryKey !== undefined) job.deliveryKey = request.deliveryKey;
    try {
      store.insert(job);
    } catch (err) {
      this.logger.error({ err, hook: job.hookId }, "could not persist a webhook");
      throw new DeliveryUnavailableError("The webhook could not be stored; retry later");
    }
    this.metrics.accepted.inc();
    const done = this.queue(job);
    this.updateDepth();
    this.pump();
    return { jobId: job.id, done };
  }

  /** Where a queued job stands; undefined once it is finished (or unknown). */
  describe(jobId: string): DeliveryStatus | undefined {
    const queued = this.jobs.get(jobId);
    if (!queued) return undefined;
    const lane = this.lanes.get(queued.job.roomId);
    const isHead = lane?.jobs[0] === queued;
    const state = isHead && lane?.busy ? "sending" : isHead && lane?.retryTimer ? "retrying" : "queued";
    const status: DeliveryStatus = { roomId: queued.job.roomId, state, attempts: queued.attempts };
    if (queued.lastError !== undefined) status.lastError = queued.lastError;
    return status;
  }

  /** Dead-lettered jobs, oldest first. */
  async listFailed(): Promise<FailedDelivery[]> {
    return this.requireStore().failed();
  }

  /** Queues a dead-lettered job again, behind its room's current jobs. False if there is none. */
  async retryFailed(jobId: string): Promise<boolean> {
    const store = this.requireStore();
    const failed = store.getFailed(jobId);
    if (!failed || this.state !== "running") return false;
    const seq = (this.lastSeq.get(failed.roomId) ?? 0) + 1;
    this.lastSeq.set(failed.roomId, seq);
    if (!store.markPending(jobId, seq)) return false;
    const { failure: _failure, ...job } = failed;
    void this.queue({ ...job, seq });
    this.updateDepth();
    this.pump();
    return true;
  }

  /** Gives a dead-lettered job up for good: it leaves the store. False if there is none. */
  async discardFailed(jobId: string): Promise<boolean> {
    const store = this.requireStore();
    if (!store.getFailed(jobId)) return false;
    store.remove(jobId);
    this.logger.info({ jobId }, "dead-lettered webhook discarded");
    return true;
  }

  /**
   * Stops starting sends, waits up to `timeoutMs` for those in progress, and closes the store.
   * Jobs not sent stay on disk for the next `start()`; their `done` settles as `pending`.
   */
  async stop(timeoutMs = this.options.stopTimeoutMs ?? 10_000): Promise<void> {
    if (this.state === "stopping" || this.state === "stopped") return;
    if (this.state !== "running") {
      this.state = "stopped";
      return;
    }
    this.state = "stopping";
    for (const lane of this.lanes.values()) {
      if (lane.retryTimer !== undefined) this.timers.clearTimeout(lane.retryTimer);
      lane.retryTimer = undefined;
    }
    this.ready.clear();
    if (!(await this.waitForIdle(timeoutMs))) {
      this.logger.warn(
        { sending: this.active, timeoutMs },
        "stopping with webhook sends in progress; they are sent again after restart",
      );
    }
    this.state = "stopped";
    for (const queued of this.jobs.values()) {
      this.finish(queued, {
        status: "pending",
        error: "The bridge is shutting down; the message stays queued",
      });
    }
    this.jobs.clear();
    this.lanes.clear();
    this.updateDepth();
    await this.store?.close();
  }

  // ---- scheduling ------------------------------------------------------------------------------

  private queue(job: DeliveryJob): Promise<DeliveryOutcome> {
    let settle!: (outcome: DeliveryOutcome) => void;
    const done = new Promise<DeliveryOutcome>((resolve) => {
      settle = resolve;
    });
    const queued: QueuedJob = { job, attempts: 0, permanentFailures: 0, settle, settled: false };
    this.jobs.set(job.id, queued);
    let lane = this.lanes.get(job.roomId);
    if (!lane) {
      lane = { jobs: [], busy: false };
      this.lanes.set(job.roomId, lane);
    }
    // Seqs only grow (numbered and written in one synchronous step), so appending keeps the order.
    lane.jobs.push(queued);
    if (!lane.busy && lane.retryTimer === undefined) this.ready.add(job.roomId);
    return done;
  }

  private pump(): void {
    while (this.state === "running" && this.active < this.concurrency && this.ready.size > 0) {
      const roomId = this.ready.values().next().value as string;
      this.ready.delete(roomId);
      const lane = this.lanes.get(roomId);
      const head = lane?.jobs[0];
      if (!lane || !head) continue;
      lane.busy = true;
      this.active += 1;
      void this.work(roomId, lane, head);
    }
  }

  private async work(roomId: string, lane: Lane, head: QueuedJob): Promise<void> {
    try {
      let result: Result;
      try {
        result = await this.attempt(head);
      } catch (err) {
        // attempt() handles every failure it expects; this is a bug, which must not wedge the room.
        result = { kind: "retry", failure: classifyDeliveryError(err) };
      }
      if (result.kind === "done") {
        // The lane stays busy until the head is gone, so nothing can pick it up twice.
        this.complete(head, result.outcome);
        lane.jobs.shift();
      } else {
        this.scheduleRetry(roomId, lane, head, result.failure);
      }
    } finally {
      lane.busy = false;
      this.active -= 1;
      if (lane.jobs.length === 0 && lane.retryTimer === undefined) this.lanes.delete(roomId);
      else if (lane.retryTimer === undefined && this.state === "running") this.ready.add(roomId);
      this.updateDepth();
      if (this.active === 0 && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
      this.pump();
    }
  }

  private scheduleRetry(roomId: string, lane: Lane, head: QueuedJob, failure: ClassifiedFailure): void {
    head.attempts += 1;
    head.lastError = failure.reason;
    const { job } = head;
    const fields = { hook: job.hookId, roomId, job: job.id, attempts: head.attempts, reason: failure.reason };
    if (failure.kind === "permanent") {
      head.permanentFailures += 1;
      if (head.permanentFailures >= this.retry.maxPermanentAttempts) {
        this.deadLetter(head, failure.reason);
        lane.jobs.shift();
        return;
      }
    }
    if (this.state !== "running") return;
    const delayMs = this.retryDelay(head.attempts, failure);
    this.metrics.retries.inc({ kind: failure.kind });
    this.logger.warn({ ...fields, kind: failure.kind, delayMs }, "webhook delivery failed; retrying");
    lane.retryTimer = this.timers.setTimeout(() => {
      lane.retryTimer = undefined;
      if (this.state !== "running" || this.lanes.get(roomId) !== lane) return;
      this.ready.add(roomId);
      this.pump();
    }, delayMs);
  }

  private retryDelay(attempts: number, failure: ClassifiedFailure): number {
    if (failure.retryAfterMs !== undefined) {
      // The homeserver said how long; our client already waited its share before giving up.
      return Math.min(this.retry.maxRetryAfterMs, Math.max(failure.retryAfterMs, this.retry.baseDelayMs));
    }
    return backoffDelayMs(this.backoff, attempts, this.random);
  }

  private waitForIdle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  // ---- one attempt -----------------------------------------------------------------------------

  private async attempt(queued: QueuedJob): Promise<Result> {
    const { job } = queued;
    let hook: HookRecord | undefined;
    try {
      hook = await this.options.hooks.get(job.hookId);
    } catch (err) {
      return {
        kind: "retry",
        failure: { kind: "transient", reason: `the hook store failed: ${String(err)}` },
      };
    }
    if (!hook) {
      this.metrics.skipped.inc({ reason: "hook_removed" });
      this.logger.info(
        { hook: job.hookId, job: job.id },
        "dropping a webhook: its hook was removed meanwhile",
      );
      return {
        kind: "done",
        outcome: { status: "failed", error: "The webhook was removed before its message could be sent" },
      };
    }
    const rendered = this.options.renderer.renderWithFallback(
      templateFor(hook, job.headers, job.payload),
      job.payload,
      { headers: job.headers, msgtype: hook.msgtype, hook: { name: hook.name } },
    );
    if (rendered.content.empty) {
      this.metrics.skipped.inc({ reason: "empty" });
      this.logger.debug({ hook: hook.id, job: job.id }, "template rendered nothing; not sending");
      return {
        kind: "done",
        outcome: { status: "skipped", reason: "The template rendered nothing for this payload" },
      };
    }
    let eventId: string;
    try {
      eventId = await this.options.poster.post({
        hook,
        message: rendered.content,
        txnId: `trestle-webhook-${job.id}`,
        ts: job.receivedAt,
      });
    } catch (err) {
      return { kind: "retry", failure: classifyDeliveryError(err) };
    }
    if (rendered.error) await this.reportTemplateError(hook, rendered.error);
    this.metrics.delivered.inc();
    this.metrics.latency.observe(Math.max(0, this.now() - job.receivedAt) / 1000);
    this.logger.debug({ hook: hook.id, job: job.id, eventId }, "webhook delivered");
    return { kind: "done", outcome: { status: "delivered", eventId } };
  }

  private async reportTemplateError(hook: HookRecord, error: TemplateError): Promise<void> {
    this.metrics.templateErrors.inc();
    if (!this.notices.claim(hook.id, error)) return;
    try {
      await this.options.poster.notice(hook.roomId, templateErrorNotice(hook, error));
    } catch (err) {
      this.logger.warn(
        { hook: hook.id, err: String(err) },
        "could not tell the room about its template error",
      );
    }
  }

  // ---- endings ---------------------------------------------------------------------------------

  private complete(queued: QueuedJob, outcome: DeliveryOutcome): void {
    try {
      this.requireStore().remove(queued.job.id);
    } catch (err) {
      // The message went out; after a restart it is resent with the same txn id, which dedupes.
      this.logger.error({ err, job: queued.job.id }, "could not remove a finished webhook from the store");
    }
    this.finish(queued, outcome);
  }

  private deadLetter(queued: QueuedJob, reason: string): void {
    const { job } = queued;
    this.metrics.failed.inc();
    this.logger.error(
      { hook: job.hookId, roomId: job.roomId, job: job.id, attempts: queued.attempts, reason },
      "giving up on a webhook after repeated permanent failures; it is kept in the store as failed",
    );
    this.finish(queued, { status: "failed", error: reason });
    try {
      this.requireStore().markFailed(job.id, { reason, attempts: queued.attempts, at: this.now() });
    } catch (err) {
      this.logger.error({ err, job: job.id }, "could not mark a webhook failed; it is retried after restart");
      return;
    }
    try {
      this.discardExcessDeadLetters(job.roomId);
    } catch (err) {
      this.logger.error(
        { err, roomId: job.roomId },
        "could not discard a room's oldest dead letters past its cap; they stay until the next one",
      );
    }
  }

  /**
   * Keeps the room's `maxDeadLettersPerRoom` most recently failed dead letters; see that option.
   * Runs on every new dead letter, so it reads ids and failures only, never the stored messages.
   */
  private discardExcessDeadLetters(roomId: string): void {
    const store = this.requireStore();
    const letters = store.failedInRoom(roomId);
    const excess = letters.length - Math.max(1, this.options.maxDeadLettersPerRoom ?? 1_000);
    for (const letter of letters.slice(0, Math.max(0, excess))) {
      store.remove(letter.id);
      this.metrics.deadLettersDiscarded.inc();
      this.logger.warn(
        { roomId, hook: letter.hookId, job: letter.id, failedAt: new Date(letter.failure.at).toISOString() },
        "too many undelivered webhooks kept for this room; discarding the one that failed longest ago",
      );
    }
  }

  private finish(queued: QueuedJob, outcome: DeliveryOutcome): void {
    this.jobs.delete(queued.job.id);
    if (queued.settled) return;
    queued.settled = true;
    queued.settle(outcome);
  }

  private updateDepth(): void {
    this.metrics.depth.set(this.depth);
  }

  private requireStore(): DeliveryJournal {
    if (!this.store) throw new DeliveryUnavailableError("The delivery queue is not running");
    return this.store;
  }
}

/**
 * The hook's template, except that the default (`generic`) gives way to the built-in that fits
 * the request (`X-GitHub-Event` → github…): a hook nobody configured still renders well.
 */
function templateFor(hook: HookRecord, headers: WebhookHeaders, payload: unknown): string {
  return hook.template === "generic" ? detectBuiltinTemplate(headers, payload) : hook.template;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
