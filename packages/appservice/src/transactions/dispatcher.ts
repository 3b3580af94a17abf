import { performance } from "node:perf_hooks";
import { Registry } from "prom-client";
import { Deadline } from "../lifecycle/deadline.js";
import { type Logger, silentLogger } from "../logging.js";
import type {
  Completion,
  IdClaim,
  PendingTransaction,
  ProcessedEventStore,
  TransactionStore,
} from "../stores/types.js";
import { Fifo } from "./fifo.js";
import { createDispatchMetrics, type DispatchMetrics, LatencyRecorder } from "./metrics.js";

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
   * A handler not settled after this many ms (at most an eighth more) is abandoned, logged and
   * counted as a failure, so its room moves on; it keeps running in the background. Default
   * 60,000; 0 (or Infinity) waits forever.
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

/**
 * Events started before the dispatcher yields to the event loop, when handlers settle at once.
 * While the queue is short, often: the next transaction is read, stored and acknowledged between
 * slices, and the rest of the handling overlaps with the homeserver preparing the one after.
 * With a backlog, rarely: dispatch must keep up, or the queue grows to the back-pressure limit.
 * 16 (~10 µs of no-op handlers) rather than 64: with one transaction in flight the homeserver's
 * next one is read that much sooner, measured as 3–8 % more throughput in the benchmark.
 */
const PUMP_BUDGET = 16;
const PUMP_BUDGET_BACKLOG = 1_000;
/** Queued events above which the dispatcher counts as backlogged. */
const BACKLOG_EVENTS = 2_000;
/**
 * Rooms kept, with their queue and handler slot, while they have nothing queued: a busy room is
 * busy again in the next transaction, and making its objects anew each time was about a third of
 * what the dispatch path allocated. Past this many idle rooms, the idle ones are dropped.
 */
const IDLE_ROOMS_KEPT = 1_000;
/**
 * The watchdog looks at running handlers this many times per handler timeout. It notes the time
 * it first sees each one and abandons it once a whole timeout has passed since: never before its
 * timeout (it started no later than it was first seen), and at most two looks, an eighth, after.
 * Handlers carry no deadline of their own, so starting one reads no clock.
 */
const WATCHDOG_TICKS = 16;
/** The longest delay `setTimeout` takes; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A queued transaction's progress: its events share this object. */
interface TxnProgress {
  seq: number;
  /** Events not yet done. */
  remaining: number;
  /** `performance.now()` at enqueue, for the latency histogram. */
  enqueuedAt: number;
  /** An event of it was handled without a claim: its id is only written at the next flush. */
  unclaimed?: boolean;
}

interface RoomQueue<E> {
  id: string;
  /** Queued events, and at the same positions in `txns` the transaction of each. */
  events: Fifo<E>;
  txns: Fifo<TxnProgress>;
  /** An event of this room is being handled. */
  active: boolean;
  /** Listed in `ready`. */
  ready: boolean;
  /** Nothing queued or running: kept for its next event (see {@link IDLE_ROOMS_KEPT}). */
  idle: boolean;
  /** Where this room's handler promises report back; made on first use, replaced on a timeout. */
  slot: HandlerSlot<E> | undefined;
}

/**
 * The room's handler call awaiting its promise. One per room, reused from event to event, so a
 * handler's `then` costs no closures; a slot whose handler timed out is retired with it.
 */
class HandlerSlot<E> {
  /** The event whose handler is running, its transaction and its id's claim (`claimSync`). */
  event: E | undefined;
  txn: TxnProgress | undefined;
  claim: IdClaim | undefined;
  /** Handlers started in this slot; the watchdog tells a new one from one it saw before. */
  runs = 0;
  /** `runs` when the watchdog last looked, and when it first saw that handler running. */
  seenRuns = 0;
  seenAt = 0;
  /** Its handler timed out; whatever it does later is only logged. */
  abandoned = false;
  readonly fulfilled: () => void;
  readonly rejected: (err: unknown) => void;

  constructor(
    readonly room: RoomQueue<E>,
    settle: (slot: HandlerSlot<E>, failed: boolean, err: unknown) => void,
  ) {
    this.fulfilled = () => settle(this, false, undefined);
    this.rejected = (err) => settle(this, true, err);
  }
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
 *
 * The per-event path allocates no timer, reads no clock and, when the processed store claims ids
 * synchronously (`claimSync`), allocates nothing but the handler's own promise and its reaction:
 * one watchdog timer covers every running handler's timeout, and counters are batched.
 */
export class EventDispatcher<E extends DispatchableEvent> {
  readonly transactions: TransactionStore<E>;
  private readonly processed: ProcessedEventStore;
  private readonly handler: EventHandler<E>;
  private readonly logger: Logger;
  private readonly metrics: DispatchMetrics;
  private readonly latency: LatencyRecorder;
  /** The processed store claims ids itself (`claimSync`): no `unflushed` set, one hash operation an event. */
  private readonly claims: boolean;
  /**
   * The processed store shares its journal with the transaction store (`complete`): handled ids
   * and done transactions go in one record, and the ids of done transactions are left implicit.
   */
  private readonly completes: boolean;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly flushIntervalMs: number;
  private readonly flushBatchSize: number;

  private state: State = "idle";
  private readonly rooms = new Map<string, RoomQueue<E>>();
  /** Rooms in `rooms` with nothing queued or running; see {@link IDLE_ROOMS_KEPT}. */
  private idleRooms = 0;
  /** Rooms with queued events and no event being handled, in turn order. */
  private readonly ready = new Fifo<RoomQueue<E>>();
  /** Rooms with an event being handled. */
  private active = 0;
  private queued = 0;
  private depthWaiters: { limit: number; resolve: () => void }[] = [];
  private idleWaiters: (() => void)[] = [];
  private pumping = false;
  private pumpScheduled = false;
  /** Events started since the last scheduled pump; see {@link PUMP_BUDGET}. */
  private startedThisTurn = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly watchdogTick = () => this.checkRunningHandlers();
  private readonly settleSlot = (slot: HandlerSlot<E>, failed: boolean, err: unknown) =>
    this.settle(slot, failed, err);
  /** See {@link now}. */
  private cachedNow: number | undefined;
  private readonly forgetNow = () => {
    this.cachedNow = undefined;
  };
  /** Counted here and added to the metrics at each flush: a counter increment per event adds up. */
  private dispatchedSinceFlush = 0;

  /** Handled events not yet written to the processed store: de-duplication must see them too. */
  private readonly unflushed = new Set<string>();
  /** Handled ids to record: claimed ones when the store claims (`addClaimed`), else all (`addMany`). */
  private doneIds: string[] = [];
  /** With a store that `complete`s, the transaction of each of `doneIds`, at the same index. */
  private doneTxns: TxnProgress[] = [];
  /** With a claiming store, handled ids it failed to claim (the lookup threw): recorded with `addMany`. */
  private doneLooseIds: string[] = [];
  private doneSeqs: number[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(options: EventDispatcherOptions<E>) {
    this.handler = options.handler;
    this.transactions = options.transactions;
    this.processed = options.processed;
    this.logger = (options.logger ?? silentLogger()).child({ component: "dispatcher" });
    this.metrics = createDispatchMetrics(options.registry ?? new Registry());
    this.latency = new LatencyRecorder(this.metrics.latency);
    const processed = this.processed;
    this.claims = !!(
      processed.claimSync &&
      processed.unclaimSync &&
      processed.commitSync &&
      processed.addClaimed
    );
    this.completes =
      this.claims && !!processed.complete && !!processed.sharesJournalWith?.(options.transactions);
    this.concurrency = Math.max(1, options.roomConcurrency ?? 16);
    const timeoutMs = options.handlerTimeoutMs ?? 60_000;
    // 0, and anything that is not a finite positive number (Infinity), waits forever.
    this.timeoutMs = Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 0;
    this.flushIntervalMs = options.flushIntervalMs ?? 50;
    this.flushBatchSize = Math.max(1, options.flushBatchSize ?? 500);
  }

  /** Rooms whose queue is kept: busy ones, and up to 1,000 idle ones. */
  get roomsHeld(): number {
    return this.rooms.size;
  }

  /** Room events queued or being handled. */
  get depth(): number {
    return this.queued + this.active;
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

  /** Queues a persisted transaction's events. Handlers start from a later macrotask, not inside this call. */
  enqueue(txn: PendingTransaction<E>): void {
    if (this.state !== "running") throw new DispatcherNotRunningError(this.state);
    const events = txn.events;
    if (events.length === 0) {
      this.doneSeqs.push(txn.seq);
      this.scheduleFlush();
      return;
    }
    const progress: TxnProgress = { seq: txn.seq, remaining: events.length, enqueuedAt: performance.now() };
    for (const event of events) {
      let room = this.rooms.get(event.room_id);
      if (!room) {
        room = {
          id: event.room_id,
          events: new Fifo(),
          txns: new Fifo(),
          active: false,
          ready: false,
          idle: false,
          slot: undefined,
        };
        this.rooms.set(event.room_id, room);
      }
      room.events.push(event);
      room.txns.push(progress);
      if (room.idle) {
        room.idle = false;
        this.idleRooms -= 1;
      }
      if (!room.active && !room.ready) {
        room.ready = true;
        this.ready.push(room);
      }
    }
    this.queued += events.length;
    this.metrics.queueDepth.set(this.depth);
    // A macrotask, not a microtask: the acknowledgement that follows an enqueue is written to the
    // socket first, and handling overlaps with the homeserver preparing its next transaction.
    this.schedulePump();
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
    const drained = await new Deadline(timeoutMs).within(this.waitForDepthAtMost(0));
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
    const idle = this.active === 0 || (await new Deadline(timeoutMs).within(this.waitForIdle()));
    if (!idle) {
      this.logger.warn(
        { running: this.active, timeoutMs },
        "Stopping with event handlers still running; their events will be handled again after restart",
      );
    }
    await this.flush();
    this.state = "stopped";
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = undefined;
    this.rooms.clear();
    this.idleRooms = 0;
    while (this.ready.shift()) {}
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

  /**
   * `performance.now()`, read once per run of synchronous code and microtasks (and every 32
   * handlers started in one pump, which only a backlog's budget allows): handlers that settle
   * together (often dozens in a row) share one reading instead of paying ~70 ns each. The latency
   * histogram's first bucket is 1 ms.
   */
  private now(): number {
    if (this.cachedNow === undefined) {
      this.cachedNow = performance.now();
      queueMicrotask(this.forgetNow);
    }
    return this.cachedNow;
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.startedThisTurn = 0;
      this.pump();
    });
  }

  private pump(): void {
    // Re-entered when a handler finishes synchronously; the loop below picks its room up again.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.state === "running" && this.active < this.concurrency) {
        if (this.startedThisTurn >= (this.queued > BACKLOG_EVENTS ? PUMP_BUDGET_BACKLOG : PUMP_BUDGET)) {
          // Handlers that settle at once chain through microtasks, which run before any I/O: without
          // a break, a burst of them would hold back the next transaction and its acknowledgement.
          this.schedulePump();
          break;
        }
        this.startedThisTurn += 1;
        // Synchronous handlers run back to back here: read the clock again now and then, so the
        // shared reading stays a few handlers old at most.
        if ((this.startedThisTurn & 31) === 0) this.cachedNow = undefined;
        const room = this.ready.shift();
        if (!room) break;
        room.ready = false;
        const event = room.events.shift();
        const txn = room.txns.shift();
        if (event === undefined || txn === undefined) continue;
        this.queued -= 1;
        this.active += 1;
        room.active = true;
        this.begin(room, event, txn);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Checks for a duplicate, then runs the handler. */
  private begin(room: RoomQueue<E>, event: E, txn: TxnProgress): void {
    const eventId = event.event_id;
    if (this.claims) {
      // Ids handled after a failed claim (see `lookupFailed`) are only in `unflushed`.
      if (this.unflushed.size > 0 && this.unflushed.has(eventId)) {
        this.skipDuplicate(room, event, txn);
        return;
      }
      let claim: IdClaim | undefined;
      try {
        claim = (this.processed.claimSync as (id: string) => IdClaim | undefined)(eventId);
      } catch (err) {
        this.lookupFailed(err, room, event, txn);
        return;
      }
      if (claim === undefined) this.skipDuplicate(room, event, txn);
      else this.run(room, event, txn, claim);
      return;
    }
    if (this.unflushed.has(eventId)) {
      this.skipDuplicate(room, event, txn);
      return;
    }
    if (!this.processed.hasSync) {
      this.processed.has(eventId).then(
        (handled) => (handled ? this.skipDuplicate(room, event, txn) : this.run(room, event, txn, undefined)),
        (err: unknown) => this.lookupFailed(err, room, event, txn),
      );
      return;
    }
    let handled: boolean;
    try {
      handled = this.processed.hasSync(eventId);
    } catch (err) {
      this.lookupFailed(err, room, event, txn);
      return;
    }
    if (handled) this.skipDuplicate(room, event, txn);
    else this.run(room, event, txn, undefined);
  }

  private lookupFailed(err: unknown, room: RoomQueue<E>, event: E, txn: TxnProgress): void {
    // Handling twice beats dropping: the handler is the lesser risk.
    this.logger.error(
      { err, eventId: event.event_id },
      "Processed-event lookup failed; handling the event anyway",
    );
    this.run(room, event, txn, undefined);
  }

  private skipDuplicate(room: RoomQueue<E>, event: E, txn: TxnProgress): void {
    this.metrics.duplicates.inc();
    this.logger.debug({ eventId: event.event_id, roomId: event.room_id }, "Skipping already handled event");
    this.eventDone(txn, undefined, undefined);
    this.release(room);
  }

  private run(room: RoomQueue<E>, event: E, txn: TxnProgress, claim: IdClaim | undefined): void {
    this.dispatchedSinceFlush += 1;
    let result: unknown;
    try {
      result = this.handler(event);
    } catch (err) {
      this.finish(room, event, txn, claim, true, err);
      return;
    }
    if (!isPromiseLike(result)) {
      this.finish(room, event, txn, claim, false, undefined);
      return;
    }
    room.slot ??= new HandlerSlot(room, this.settleSlot);
    const slot = room.slot;
    slot.event = event;
    slot.txn = txn;
    slot.claim = claim;
    slot.runs += 1;
    if (this.timeoutMs > 0 && !this.watchdog) this.armWatchdog();
    result.then(slot.fulfilled, slot.rejected);
  }

  private settle(slot: HandlerSlot<E>, failed: boolean, err: unknown): void {
    const { event, txn } = slot;
    if (event === undefined || txn === undefined) return;
    if (slot.abandoned) {
      // Timed out earlier; its room has long moved on.
      const eventId = event.event_id;
      if (failed) this.logger.error({ err, eventId }, "Timed-out event handler failed after all");
      else this.logger.info({ eventId }, "Timed-out event handler finished after all");
      return;
    }
    slot.event = undefined;
    slot.txn = undefined;
    this.finish(slot.room, event, txn, slot.claim, failed, err);
  }

  /**
   * One timer for every handler's timeout, instead of one per event: it ticks
   * {@link WATCHDOG_TICKS} times per timeout while handlers run.
   */
  private armWatchdog(): void {
    if (this.state === "stopped" || this.watchdog) return;
    const tick = Math.min(MAX_TIMER_MS, Math.max(1, this.timeoutMs / WATCHDOG_TICKS));
    this.watchdog = setTimeout(this.watchdogTick, tick);
    // It may outlive the handler it was armed for; it must not keep a finished process alive.
    this.watchdog.unref();
  }

  /** Abandons handlers first seen running a whole timeout ago. */
  private checkRunningHandlers(): void {
    this.watchdog = undefined;
    const now = performance.now();
    let running = false;
    // Rooms with a running handler are always listed: only idle rooms are ever dropped.
    for (const room of [...this.rooms.values()]) {
      const slot = room.slot;
      if (!room.active || slot?.event === undefined || slot.txn === undefined) continue;
      if (slot.seenRuns !== slot.runs) {
        // Started since the last tick, maybe during this one (after a handler abandoned above):
        // its time counts from a reading taken now, after it started, so it never gets less than
        // its due, even if a pause (GC) came between `now` and its start.
        slot.seenRuns = slot.runs;
        slot.seenAt = performance.now();
        running = true;
        continue;
      }
      if (now - slot.seenAt < this.timeoutMs) {
        running = true;
        continue;
      }
      slot.abandoned = true;
      room.slot = undefined;
      this.finish(room, slot.event, slot.txn, slot.claim, true, new HandlerTimeoutError(this.timeoutMs));
    }
    // Handlers started by the loop above armed it already.
    if (running) this.armWatchdog();
  }

  private finish(
    room: RoomQueue<E>,
    event: E,
    txn: TxnProgress,
    claim: IdClaim | undefined,
    failed: boolean,
    err: unknown,
  ): void {
    if (failed) {
      const timedOut = err instanceof HandlerTimeoutError;
      this.metrics.failures.inc({ reason: timedOut ? "timeout" : "error" });
      // Ids and type only: content may be private messages.
      const fields = { err, eventId: event.event_id, roomId: event.room_id, eventType: eventTypeOf(event) };
      if (timedOut) this.logger.warn(fields, "Event handler timed out; moving on");
      else this.logger.error(fields, "Event handler failed");
    }
    this.latency.record(Math.max(0, this.now() - txn.enqueuedAt) / 1000);
    // After a stop the store may be closed: leave the event pending, to be redone after restart.
    if (this.state !== "stopped") this.eventDone(txn, event.event_id, claim);
    else if (claim !== undefined) this.processed.unclaimSync?.(event.event_id, claim);
    this.release(room);
  }

  private dropIdleRooms(): void {
    for (const [id, room] of this.rooms) if (room.idle) this.rooms.delete(id);
    this.idleRooms = 0;
  }

  /** The room's event is done: give the room its next turn and start whatever can start. */
  private release(room: RoomQueue<E>): void {
    room.active = false;
    this.active -= 1;
    if (room.events.length > 0) {
      if (this.state === "running") {
        room.ready = true;
        this.ready.push(room);
      }
    } else if (!room.idle) {
      room.idle = true;
      this.idleRooms += 1;
      if (this.idleRooms > IDLE_ROOMS_KEPT) this.dropIdleRooms();
    }
    const depth = this.depth;
    if (depth === 0) this.metrics.queueDepth.set(0);
    if (this.depthWaiters.length > 0) {
      const ready = this.depthWaiters.filter((w) => depth <= w.limit);
      if (ready.length > 0) {
        this.depthWaiters = this.depthWaiters.filter((w) => depth > w.limit);
        for (const waiter of ready) waiter.resolve();
      }
    }
    if (this.active === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
    this.pump();
  }

  private eventDone(txn: TxnProgress, handledId: string | undefined, claim: IdClaim | undefined): void {
    if (handledId !== undefined) {
      if (claim !== undefined) {
        // Handled, so remembered from now on (see `commitSync`); written with the next flush.
        (this.processed.commitSync as (id: string, claim: IdClaim) => void)(handledId, claim);
        this.doneIds.push(handledId);
        if (this.completes) this.doneTxns.push(txn);
      } else {
        // An id not claimed must be seen by de-duplication until it is written.
        this.unflushed.add(handledId);
        txn.unclaimed = true;
        (this.claims ? this.doneLooseIds : this.doneIds).push(handledId);
      }
    }
    txn.remaining -= 1;
    if (txn.remaining === 0) {
      this.doneSeqs.push(txn.seq);
      // Its ids are in the window now: the store need not keep its body until the flush.
      if (this.completes && !txn.unclaimed) this.transactions.releaseHandled?.(txn.seq);
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.doneIds.length + this.doneLooseIds.length + this.doneSeqs.length >= this.flushBatchSize)
      void this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flush(), this.flushIntervalMs);
      this.flushTimer.unref();
    }
  }

  private waitForIdle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Never rejects: a failed write is logged and its completions retried with the next batch. */
  private async writeCompletions(): Promise<void> {
    if (this.dispatchedSinceFlush > 0) {
      this.metrics.dispatched.inc(this.dispatchedSinceFlush);
      this.dispatchedSinceFlush = 0;
    }
    this.latency.fold();
    this.metrics.queueDepth.set(this.depth);
    const ids = this.doneIds;
    const txns = this.doneTxns;
    const loose = this.doneLooseIds;
    const seqs = this.doneSeqs;
    if (ids.length === 0 && loose.length === 0 && seqs.length === 0) return;
    this.doneIds = [];
    this.doneTxns = [];
    this.doneLooseIds = [];
    this.doneSeqs = [];
    if (this.completes) {
      // Split now: a transaction that completes during the awaits below has its seq in the next
      // batch, so its ids in this one must be written, not implied.
      const completion: Completion = { seqs, ids: idsOfUnfinished(ids, txns) };
      try {
        if (loose.length > 0) await this.processed.addMany(loose);
        await this.processed.complete?.(completion);
      } catch (err) {
        this.logger.error(
          { err, events: ids.length + loose.length, transactions: seqs.length },
          "Could not record handled events; will retry",
        );
        this.retryLater(ids, txns, loose, seqs);
        return;
      }
      for (const id of loose) this.unflushed.delete(id);
      return;
    }
    try {
      if (this.claims) {
        const addClaimed = this.processed.addClaimed as NonNullable<ProcessedEventStore["addClaimed"]>;
        if (ids.length > 0) await addClaimed.call(this.processed, ids);
        if (loose.length > 0) await this.processed.addMany(loose);
      } else if (ids.length > 0) await this.processed.addMany(ids);
    } catch (err) {
      this.logger.error(
        { err, events: ids.length + loose.length },
        "Could not record handled events; will retry",
      );
      this.retryLater(ids, txns, loose, seqs);
      return;
    }
    if (this.claims) for (const id of loose) this.unflushed.delete(id);
    else for (const id of ids) this.unflushed.delete(id);
    try {
      if (seqs.length > 0) await this.transactions.remove(seqs);
    } catch (err) {
      this.logger.error({ err, transactions: seqs.length }, "Could not remove done transactions; will retry");
      this.retryLater([], [], [], seqs);
    }
  }

  private retryLater(ids: string[], txns: TxnProgress[], loose: string[], seqs: number[]): void {
    this.doneIds = ids.concat(this.doneIds);
    this.doneTxns = txns.concat(this.doneTxns);
    this.doneLooseIds = loose.concat(this.doneLooseIds);
    this.doneSeqs = seqs.concat(this.doneSeqs);
    if (this.state === "stopped" || this.flushTimer) return;
    this.flushTimer = setTimeout(() => void this.flush(), Math.max(this.flushIntervalMs, 1_000));
    this.flushTimer.unref();
  }
}

/**
 * The handled ids whose transaction is not done yet: a done transaction's ids are implied by its
 * done mark. Its seq is in this batch's `seqs` or an earlier one: an id is queued no later than
 * the seq of its transaction.
 */
function idsOfUnfinished(ids: readonly string[], txns: readonly TxnProgress[]): string[] {
  const unfinished: string[] = [];
  for (let i = 0; i < ids.length; i++)
    if ((txns[i] as TxnProgress).remaining > 0) unfinished.push(ids[i] as string);
  return unfinished;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"
  );
}

function eventTypeOf(event: DispatchableEvent): string | undefined {
  const type = (event as { type?: unknown }).type;
  return typeof type === "string" ? type : undefined;
}
