import { performance } from "node:perf_hooks";
import { Registry } from "prom-client";
import { type Logger, silentLogger } from "../logging.js";
import type { PendingTransaction, ProcessedEventStore, TransactionStore } from "../stores/types.js";
import { Fifo } from "./fifo.js";
import { createDispatchMetrics, type DispatchMetrics } from "./metrics.js";

/** The least the dispatcher needs of an event: an identity and a room to order it in. */
export interface DispatchableEvent {
  event_id: string;
  room_id: string;
}

export type EventHandler<E> = (event: E) => Promise<void> | void;

export interface EventDispatcherOptions<E extends DispatchableEvent> {
  handler: EventHandler<E>;
  /** Where accepted transactions wait; transactions are removed once all their events are done. */
  transactions: TransactionStore<E>;
  /** Event ids already handled; checked before and written after each event. */
  processed: ProcessedEventStore;
  logger?: Logger;
  /** Metrics go here; a private registry when omitted. */
  registry?: Registry;
  /** Rooms whose events are handled at the same time (default 16). */
  roomConcurrency?: number;
  /**
   * A handler not settled after this many ms is abandoned (logged, counted as a failure) so its
   * room moves on; it keeps running in the background. Default 60,000; 0 waits forever.
   */
  handlerTimeoutMs?: number;
  /** Done-marks are written in batches at most this many ms after an event completes (default 50). */
  flushIntervalMs?: number;
  /** ...or as soon as this many events completed (default 500). */
  flushBatchSize?: number;
}

/** A handler ran past `handlerTimeoutMs`. */
export class HandlerTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`Event handler did not settle within ${timeoutMs} ms`);
    this.name = "HandlerTimeoutError";
  }
}

/** Work was handed to a dispatcher that is not running. */
export class DispatcherNotRunningError extends Error {
  constructor(state: string) {
    super(`Event dispatcher is ${state}`);
    this.name = "DispatcherNotRunningError";
  }
}

interface QueuedEvent<E> {
  event: E;
  seq: number;
  enqueuedAt: number;
}

type State = "idle" | "starting" | "running" | "stopping" | "stopped";

/**
 * Hands room events to the handler in order within each room, with up to `roomConcurrency` rooms
 * in parallel, taking turns so a busy room does not starve the others.
 *
 * Delivery is at least once: an event whose handler was running (or whose completion was not yet
 * written) when the process died is handled again after restart. Completions are written in
 * batches, the processed event ids before the removal of their transactions, so a crash between
 * the two writes only leaves transactions whose events are then skipped as duplicates.
 */
export class EventDispatcher<E extends DispatchableEvent> {
  readonly transactions: TransactionStore<E>;
  private readonly processed: ProcessedEventStore;
  private readonly handler: EventHandler<E>;
  private readonly logger: Logger;
  private readonly metrics: DispatchMetrics;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly flushIntervalMs: number;
  private readonly flushBatchSize: number;

  private state: State = "idle";
  private readonly rooms = new Map<string, Fifo<QueuedEvent<E>>>();
  /** Rooms with queued events and no event being handled, in turn order. */
  private readonly readyRooms = new Set<string>();
  private readonly activeRooms = new Set<string>();
  private queued = 0;
  /** Events of each pending transaction not yet done, by transaction seq. */
  private readonly remaining = new Map<number, number>();
  private depthWaiters: { limit: number; resolve: () => void }[] = [];
  private idleWaiters: (() => void)[] = [];

  /** Handled events not yet written to the processed store: de-duplication must see them too. */
  private readonly unflushed = new Set<string>();
  private doneIds: string[] = [];
  private doneSeqs: number[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(options: EventDispatcherOptions<E>) {
    this.handler = options.handler;
    this.transactions = options.transactions;
    this.processed = options.processed;
    this.logger = (options.logger ?? silentLogger()).child({ component: "dispatcher" });
    this.metrics = createDispatchMetrics(options.registry ?? new Registry());
    this.concurrency = Math.max(1, options.roomConcurrency ?? 16);
    this.timeoutMs = options.handlerTimeoutMs ?? 60_000;
    this.flushIntervalMs = options.flushIntervalMs ?? 50;
    this.flushBatchSize = Math.max(1, options.flushBatchSize ?? 500);
  }

  /** Room events queued or being handled. */
  get depth(): number {
    return this.queued + this.activeRooms.size;
  }

  /**
   * Loads the transactions left pending by a previous run and queues their events ahead of
   * anything new; events already handled are skipped as duplicates. Returns how many were queued.
   */
  async start(): Promise<number> {
    if (this.state !== "idle") throw new DispatcherNotRunningError(this.state);
    this.state = "starting";
    let recovered: PendingTransaction<E>[];
    try {
      recovered = await this.transactions.pending();
    } catch (err) {
      this.state = "idle";
      throw err;
    }
    this.state = "running";
    let events = 0;
    for (const txn of recovered) {
      this.enqueue(txn);
      events += txn.events.length;
    }
    if (recovered.length > 0) {
      this.logger.info({ transactions: recovered.length, events }, "Recovered pending transactions");
    }
    return events;
  }

  /** Queues a persisted transaction's events. */
  enqueue(txn: PendingTransaction<E>): void {
    if (this.state !== "running") throw new DispatcherNotRunningError(this.state);
    if (txn.events.length === 0) {
      this.markTransactionDone(txn.seq);
      return;
    }
    this.remaining.set(txn.seq, txn.events.length);
    const enqueuedAt = performance.now();
    for (const event of txn.events) {
      let queue = this.rooms.get(event.room_id);
      if (!queue) {
        queue = new Fifo();
        this.rooms.set(event.room_id, queue);
      }
      queue.push({ event, seq: txn.seq, enqueuedAt });
      if (!this.activeRooms.has(event.room_id)) this.readyRooms.add(event.room_id);
    }
    this.queued += txn.events.length;
    this.metrics.queueDepth.set(this.depth);
    this.pump();
  }

  /** Resolves once at most `limit` events are queued or being handled, or the dispatcher stops. */
  waitForDepthAtMost(limit: number): Promise<void> {
    if (this.depth <= limit || this.state === "stopped") return Promise.resolve();
    return new Promise((resolve) => this.depthWaiters.push({ limit, resolve }));
  }

  /**
   * Waits until every queued event is handled and its completion written. False if `timeoutMs`
   * ran out first (the rest stays queued, and pending in the store).
   */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    const drained = await withTimeout(this.waitForDepthAtMost(0), timeoutMs);
    await this.flush();
    return drained && this.depth === 0;
  }

  /**
   * Stops starting events, waits up to `timeoutMs` for handlers already running, and writes the
   * completions. Events not yet started stay pending in the store for the next `start()`.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.state === "stopped" || this.state === "stopping") return;
    this.state = "stopping";
    const idle = this.activeRooms.size === 0 || (await withTimeout(this.waitForIdle(), timeoutMs));
    if (!idle) {
      this.logger.warn(
        { running: this.activeRooms.size, timeoutMs },
        "Stopping with event handlers still running; their events will be handled again after restart",
      );
    }
    await this.flush();
    this.state = "stopped";
    this.rooms.clear();
    this.readyRooms.clear();
    this.queued = 0;
    this.metrics.queueDepth.set(0);
    for (const waiter of this.depthWaiters) waiter.resolve();
    this.depthWaiters = [];
  }

  /** Writes completed events now instead of waiting for the batch timer. */
  flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const run = this.flushing.then(() => this.writeCompletions());
    this.flushing = run;
    return run;
  }

  private pump(): void {
    while (this.state === "running" && this.activeRooms.size < this.concurrency && this.readyRooms.size > 0) {
      const roomId = this.readyRooms.values().next().value as string;
      this.readyRooms.delete(roomId);
      const item = this.rooms.get(roomId)?.shift();
      if (!item) continue;
      this.queued -= 1;
      this.activeRooms.add(roomId);
      void this.process(roomId, item);
    }
  }

  private async process(roomId: string, item: QueuedEvent<E>): Promise<void> {
    try {
      await this.handle(item);
    } catch (err) {
      // handle() catches handler errors; anything here is a dispatcher bug, which must not wedge the room.
      this.logger.error({ err, eventId: item.event.event_id, roomId }, "Event dispatch failed");
    } finally {
      this.activeRooms.delete(roomId);
      const queue = this.rooms.get(roomId);
      if (queue && queue.length > 0) {
        if (this.state === "running") this.readyRooms.add(roomId);
      } else {
        this.rooms.delete(roomId);
      }
      this.afterCompletion();
    }
  }

  private async handle(item: QueuedEvent<E>): Promise<void> {
    const { event } = item;
    const eventId = event.event_id;
    if (await this.alreadyHandled(eventId)) {
      this.metrics.duplicates.inc();
      this.logger.debug({ eventId, roomId: event.room_id }, "Skipping already handled event");
      this.eventDone(item.seq, undefined);
      return;
    }
    this.metrics.dispatched.inc();
    try {
      await this.runHandler(event);
    } catch (err) {
      const timedOut = err instanceof HandlerTimeoutError;
      this.metrics.failures.inc({ reason: timedOut ? "timeout" : "error" });
      // Ids and type only: content may be private messages.
      const fields = { err, eventId, roomId: event.room_id, eventType: eventTypeOf(event) };
      if (timedOut) this.logger.warn(fields, "Event handler timed out; moving on");
      else this.logger.error(fields, "Event handler failed");
    }
    this.metrics.latency.observe((performance.now() - item.enqueuedAt) / 1000);
    // After a stop the store may be closed: leave the event pending, to be redone after restart.
    if (this.state !== "stopped") this.eventDone(item.seq, eventId);
  }

  private async alreadyHandled(eventId: string): Promise<boolean> {
    if (this.unflushed.has(eventId)) return true;
    try {
      return await this.processed.has(eventId);
    } catch (err) {
      // Handling twice beats dropping: the handler is the lesser risk.
      this.logger.error({ err, eventId }, "Processed-event lookup failed; handling the event anyway");
      return false;
    }
  }

  private runHandler(event: E): Promise<void> {
    // `then` turns a synchronous throw into a rejection.
    const run = Promise.resolve().then(() => this.handler(event));
    if (this.timeoutMs <= 0) return run;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new HandlerTimeoutError(this.timeoutMs));
        run.then(
          () => this.logger.info({ eventId: event.event_id }, "Timed-out event handler finished after all"),
          (err: unknown) =>
            this.logger.error({ err, eventId: event.event_id }, "Timed-out event handler failed after all"),
        );
      }, this.timeoutMs);
    });
    return Promise.race([run, timeout]).finally(() => clearTimeout(timer));
  }

  private eventDone(seq: number, handledId: string | undefined): void {
    if (handledId !== undefined) {
      this.unflushed.add(handledId);
      this.doneIds.push(handledId);
    }
    const left = (this.remaining.get(seq) ?? 1) - 1;
    if (left > 0) {
      this.remaining.set(seq, left);
    } else {
      this.remaining.delete(seq);
      this.markTransactionDone(seq);
    }
    if (this.doneIds.length + this.doneSeqs.length >= this.flushBatchSize) void this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flush(), this.flushIntervalMs);
      this.flushTimer.unref();
    }
  }

  private markTransactionDone(seq: number): void {
    this.doneSeqs.push(seq);
  }

  private afterCompletion(): void {
    this.metrics.queueDepth.set(this.depth);
    const depth = this.depth;
    if (this.depthWaiters.length > 0) {
      const ready = this.depthWaiters.filter((w) => depth <= w.limit);
      this.depthWaiters = this.depthWaiters.filter((w) => depth > w.limit);
      for (const waiter of ready) waiter.resolve();
    }
    if (this.activeRooms.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
    this.pump();
  }

  private waitForIdle(): Promise<void> {
    if (this.activeRooms.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Never rejects: a failed write is logged and its completions retried with the next batch. */
  private async writeCompletions(): Promise<void> {
    const ids = this.doneIds;
    const seqs = this.doneSeqs;
    if (ids.length === 0 && seqs.length === 0) return;
    this.doneIds = [];
    this.doneSeqs = [];
    try {
      if (ids.length > 0) await this.processed.addMany(ids);
    } catch (err) {
      this.logger.error({ err, events: ids.length }, "Could not record handled events; will retry");
      this.retryLater(ids, seqs);
      return;
    }
    for (const id of ids) this.unflushed.delete(id);
    try {
      if (seqs.length > 0) await this.transactions.remove(seqs);
    } catch (err) {
      this.logger.error({ err, transactions: seqs.length }, "Could not remove done transactions; will retry");
      this.retryLater([], seqs);
    }
  }

  private retryLater(ids: string[], seqs: number[]): void {
    this.doneIds = ids.concat(this.doneIds);
    this.doneSeqs = seqs.concat(this.doneSeqs);
    if (this.state === "stopped" || this.flushTimer) return;
    this.flushTimer = setTimeout(() => void this.flush(), Math.max(this.flushIntervalMs, 1_000));
    this.flushTimer.unref();
  }
}

function eventTypeOf(event: DispatchableEvent): string | undefined {
  const type = (event as { type?: unknown }).type;
  return typeof type === "string" ? type : undefined;
}

/** Whether `promise` settled within `ms`. */
async function withTimeout(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
