/**
 * Storage interfaces. They are small and engine-neutral on purpose: an append-only journal backs
 * the transaction queue and processed ids, NeDB the rest, and another engine (SQLite, Postgres)
 * only has to implement these to slot in.
 *
 * Values called "data" or "value" are stored as JSON: they must survive `JSON.stringify`.
 * Their type parameters are a convenience for the caller and are not checked when reading back.
 */

/** Anything a store hands out is closed through this, so shutdown can flush and stop timers. */
export interface Closable {
  close(): Promise<void>;
}

/** One transaction's events as they wait, durably, to be dispatched. */
export interface PendingTransaction<E> {
  /** Monotonically increasing among pending transactions; dispatch order. */
  seq: number;
  txnId: string;
  events: E[];
  /** Milliseconds since the epoch at which it was persisted. */
  receivedAt: number;
}

export interface AppendOptions {
  /**
   * The JSON the events were parsed from, as text or UTF-8 bytes: an object whose `events` member
   * parses to exactly `events` (the homeserver's transaction body, when parsing changed and dropped
   * nothing). A store may persist this instead of serialising `events` again; it must not be
   * anything else.
   */
  body?: string | Uint8Array;
}

/** The durable queue between acknowledging a transaction and handling its events. */
export interface TransactionStore<E = unknown> extends Closable {
  /**
   * Persists a whole transaction as one unit. When the promise resolves the transaction survives
   * the process being killed (see the implementation for the exact guarantee).
   */
  append(txnId: string, events: readonly E[], options?: AppendOptions): Promise<PendingTransaction<E>>;
  /** Every transaction not yet removed, oldest first. */
  pending(): Promise<PendingTransaction<E>[]>;
  /**
   * Marks transactions done: all their events handled (the journal's replay puts their ids in
   * the de-duplication window). Unknown sequence numbers are ignored.
   */
  remove(seqs: readonly number[]): Promise<void>;
  count(): Promise<number>;
  /**
   * Optional, for a store that is also the processed-event store (`sharesJournalWith`): every
   * event of the transaction was handled and its id committed (`commitSync`), and its done-mark
   * will follow in a later `complete`. The store may free the transaction's content now instead of
   * holding it until then, and leave it out of a compaction: its events were handled, and the
   * window written with it names them (unless they were evicted since). `pending()` still lists it,
   * without events, until its done-mark.
   */
  releaseHandled?(seq: number): void;
}

/**
 * Handled events and done transactions, recorded together by `ProcessedEventStore.complete`. The
 * ids of a done transaction need not be written: replaying its removal puts its events' ids in the
 * window (the ids of the whole transaction, as every event of it was handled or skipped).
 *
 * An event skipped because its id was claimed (another copy still running) counts as handled
 * here. That holds because an event id belongs to one room, whose events run one at a time: the
 * copy that claimed it finished before the skipped one was reached.
 */
export interface Completion {
  /** Transactions all of whose events were handled; unknown ones are ignored. */
  seqs: readonly number[];
  /** Committed ids (`commitSync`) handled in transactions not all done yet: written. */
  ids: readonly string[];
}

/** What `ProcessedEventStore.claimSync` returns for an id it reserved: handed back with the id. */
export type IdClaim = number;

/**
 * The event ids already handled, newest `window` of them. This is the real de-duplication:
 * homeservers may resend events under a new transaction id, for instance after a restart.
 */
export interface ProcessedEventStore extends Closable {
  has(eventId: string): Promise<boolean>;
  /**
   * `has` without the promise, for stores that keep the window in memory; the dispatcher prefers
   * it, saving a promise per event. Same answer as `has`, and the same errors, thrown.
   */
  hasSync?(eventId: string): boolean;
  /**
   * Optional, with `unclaimSync`, `commitSync` and `addClaimed`, for stores that keep the window
   * in memory: checks and reserves an id being handled in one step. Returns the claim, or
   * undefined when the id was handled (in the window) or is already claimed. While claimed, `has`
   * answers true, but the id is not persisted: a crash forgets it, and its event is handled again.
   * The dispatcher then needs no set of its own for handled, unwritten ids.
   */
  claimSync?(eventId: string): IdClaim | undefined;
  /** Gives back a claim whose event will not be recorded as handled (its handler never finished). */
  unclaimSync?(eventId: string, claim: IdClaim): void;
  /**
   * Marks a claimed id handled, in memory, when its handler has finished: from then on it is
   * persisted with the window (a compaction may write it before `addClaimed` or `complete` does,
   * which is right, as its event was handled). One write into the claim's slot, no lookup.
   */
  commitSync?(eventId: string, claim: IdClaim): void;
  /** Persists ids already marked handled with `commitSync`. */
  addClaimed?(eventIds: readonly string[]): Promise<void>;
  /**
   * Optional, with `complete`: whether this store keeps its ids in the same journal as
   * `transactions`, so that one write can record handled ids and remove done transactions.
   */
  sharesJournalWith?(transactions: TransactionStore<unknown>): boolean;
  /** `addClaimed` and `transactions.remove` in one write; see {@link Completion}. */
  complete?(completion: Completion): Promise<void>;
  add(eventId: string): Promise<void>;
  /** One write for many ids; what the dispatcher uses. */
  addMany(eventIds: readonly string[]): Promise<void>;
  /** How many ids are remembered (at least `window` once that many were added). */
  size(): Promise<number>;
}

export interface RoomLink<D = Record<string, unknown>> {
  roomId: string;
  remoteId: string;
  data: D;
}

/** Matrix room id ↔ remote room/channel id. Many-to-many: one room may bridge several remotes. */
export interface RoomLinkStore extends Closable {
  /** Creates the link or replaces its data. */
  link<D>(roomId: string, remoteId: string, data?: D): Promise<RoomLink<D>>;
  /** Whether a link existed. */
  unlink(roomId: string, remoteId: string): Promise<boolean>;
  get<D = Record<string, unknown>>(roomId: string, remoteId: string): Promise<RoomLink<D> | null>;
  getByRoom<D = Record<string, unknown>>(roomId: string): Promise<RoomLink<D>[]>;
  getByRemote<D = Record<string, unknown>>(remoteId: string): Promise<RoomLink<D>[]>;
}

export interface UserMapping<D = Record<string, unknown>> {
  matrixId: string;
  remoteId: string;
  data: D;
}

/** Matrix user id ↔ remote user id, one to one. */
export interface UserMappingStore extends Closable {
  /**
   * Maps the pair, replacing its data. Any other mapping of either id is removed first, so each
   * side stays unique.
   */
  set<D>(matrixId: string, remoteId: string, data?: D): Promise<UserMapping<D>>;
  getByMatrixId<D = Record<string, unknown>>(matrixId: string): Promise<UserMapping<D> | null>;
  getByRemoteId<D = Record<string, unknown>>(remoteId: string): Promise<UserMapping<D> | null>;
  /** Whether a mapping existed. */
  removeByMatrixId(matrixId: string): Promise<boolean>;
}

export interface EventMapping<D = Record<string, unknown>> {
  roomId: string;
  eventId: string;
  remoteRoomId: string;
  remoteMessageId: string;
  data: D;
  /** Milliseconds since the epoch at which the mapping was added; used for pruning. */
  createdAt: number;
}

/**
 * Matrix event id ↔ remote message id, for replies, edits and redactions. Many-to-many: a long
 * Matrix message may become several remote lines, a remote message with files several events.
 */
export interface EventMappingStore extends Closable {
  /** Adds the mapping, or replaces the data of the identical one. */
  add<D>(
    mapping: Omit<EventMapping<D>, "createdAt" | "data"> & { data?: D; createdAt?: number },
  ): Promise<void>;
  getByEvent<D = Record<string, unknown>>(roomId: string, eventId: string): Promise<EventMapping<D>[]>;
  getByRemote<D = Record<string, unknown>>(
    remoteRoomId: string,
    remoteMessageId: string,
  ): Promise<EventMapping<D>[]>;
  /** How many mappings were removed. */
  removeByEvent(roomId: string, eventId: string): Promise<number>;
  /** Forgets mappings added before `cutoff` (ms since the epoch); returns how many. */
  removeOlderThan(cutoff: number): Promise<number>;
}

/** Per-bridge state under a namespace, so bridges and components sharing a store don't collide. */
export interface KeyValueStore extends Closable {
  get<T>(namespace: string, key: string): Promise<T | undefined>;
  set<T>(namespace: string, key: string, value: T): Promise<void>;
  /** Whether the key existed. */
  delete(namespace: string, key: string): Promise<boolean>;
  keys(namespace: string): Promise<string[]>;
}

/** Every store a bridge needs, opened together and closed together. */
export interface Stores<E = unknown> extends Closable {
  transactions: TransactionStore<E>;
  processedEvents: ProcessedEventStore;
  roomLinks: RoomLinkStore;
  userMappings: UserMappingStore;
  eventMappings: EventMappingStore;
  keyValue: KeyValueStore;
}
