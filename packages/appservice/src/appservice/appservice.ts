import { collectDefaultMetrics, Registry } from "prom-client";
import { HomeserverClient, type HomeserverClientOptions } from "../client/client.js";
import { diagnosePingFailure } from "../client/ping.js";
import { IntentFactory } from "../intents/factory.js";
import type { Intent, IntentCreateRoomOptions } from "../intents/intent.js";
import { Deadline } from "../lifecycle/deadline.js";
import { type Logger, silentLogger } from "../logging.js";
import { NamespaceMatcher } from "../registration/namespace-matcher.js";
import type { Registration } from "../registration/types.js";
import { openStores } from "../stores/open.js";
import type { Stores } from "../stores/types.js";
import { EventDispatcher } from "../transactions/dispatcher.js";
import { TransactionIngest, type TransactionSink } from "../transactions/ingest.js";
import type { MatrixEvent, ParsedTransaction } from "../transactions/types.js";
import { type AppserviceHttp, createAppserviceHttp, type ListeningServer } from "../transport/app.js";
import type { AppserviceHttpHandlers } from "../transport/handlers.js";

/** `Appservice.stop`'s budget: inside the CLI's 10 s (`DEFAULT_SHUTDOWN_TIMEOUT_MS`). */
export const DEFAULT_STOP_TIMEOUT_MS = 8_000;
/** Kept back from draining for closing the stores (a journal compaction, NeDB flushes). */
const STORE_CLOSE_RESERVE_MS = 1_000;

/** What a bridge plugs into the core. Only `onEvent` is required. */
export interface BridgeHooks extends Partial<Pick<AppserviceHttpHandlers, ThirdPartyHandlerNames>> {
  /**
   * Called once per room event, in order within a room, rooms in parallel. A throw (or a
   * rejection) is logged and counted; it never blocks the room or fails the homeserver's
   * transaction. It may return nothing when it finishes at once (an event it ignores, say): the
   * room's next event then starts without waiting for a promise.
   */
  onEvent(event: MatrixEvent): Promise<void> | void;
  /**
   * A user in our namespace was queried (someone invited or messaged a ghost that doesn't
   * exist yet). Return a profile to create the ghost, or null to say it doesn't exist.
   */
  onUserQuery?(userId: string): Promise<GhostProfile | null>;
  /**
   * An alias in our namespace was queried. Return how to create the room (the alias is set
   * by the core), or null to say it doesn't exist.
   */
  onAliasQuery?(alias: string): Promise<IntentCreateRoomOptions | null>;
  /** Ephemeral, to-device and device-list data, for bridges and the crypto layer. */
  sink?: TransactionSink<ParsedTransaction>;
}

type ThirdPartyHandlerNames =
  | "getProtocol"
  | "getLocations"
  | "getUsers"
  | "getLocationsByAlias"
  | "getUsersByUserId";

export interface GhostProfile {
  displayName?: string;
  avatarUrl?: string;
}

export interface AppserviceOptions {
  registration: Registration;
  homeserver: { url: string; domain: string };
  hooks: BridgeHooks;
  /** Where the stores keep their files; ignored when `stores` is given. */
  dataDir?: string;
  /** Stores opened by the caller (tests use in-memory stores); the appservice then doesn't close them. */
  stores?: Stores<MatrixEvent>;
  logger?: Logger;
  /** One registry per process; `/metrics` serves it. */
  metrics?: Registry;
  http?: { port: number; bindAddress?: string; maxBodyBytes?: number };
  client?: Partial<Omit<HomeserverClientOptions, "homeserverUrl" | "asToken" | "logger" | "metrics">>;
  maxIntents?: number;
  maxPendingEvents?: number;
  roomConcurrency?: number;
  handlerTimeoutMs?: number;
  /** Also export Node.js process metrics (heap, event loop lag, …) on `/metrics` (default true). */
  processMetrics?: boolean;
  /** Ping the homeserver on start so it flushes its backlog (default true). */
  pingOnStart?: boolean;
}

/**
 * The composition root of a bridge: the HTTP API, durable transaction ingest and ordered
 * dispatch, the homeserver client and intents, and the stores, built from one registration.
 * Everything is constructed here and handed down; nothing is global.
 */
export class Appservice {
  readonly registration: Registration;
  readonly serverName: string;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly client: HomeserverClient;
  readonly intents: IntentFactory;
  readonly namespaces: NamespaceMatcher;
  readonly http: AppserviceHttp;
  private storesValue?: Stores<MatrixEvent>;
  private ingest?: TransactionIngest<ParsedTransaction>;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private dispatcher?: EventDispatcher<MatrixEvent>;
  private listening?: ListeningServer;
  private readonly ownsStores: boolean;

  constructor(private readonly options: AppserviceOptions) {
    this.registration = options.registration;
    this.serverName = options.homeserver.domain;
    this.logger = options.logger ?? silentLogger();
    this.metrics = options.metrics ?? new Registry();
    this.namespaces = new NamespaceMatcher(options.registration, this.serverName);
    this.client = new HomeserverClient({
      ...options.client,
      homeserverUrl: options.homeserver.url,
      asToken: options.registration.as_token,
      logger: this.logger.child({ component: "client" }),
      metrics: this.metrics,
    });
    this.intents = new IntentFactory({
      client: this.client,
      serverName: this.serverName,
      botLocalpart: options.registration.sender_localpart,
      logger: this.logger.child({ component: "intents" }),
      maxIntents: options.maxIntents,
    });
    this.storesValue = options.stores;
    this.ownsStores = !options.stores;
    this.http = createAppserviceHttp({
      hsToken: options.registration.hs_token,
      metrics: this.metrics,
      logger: this.logger.child({ component: "http" }),
      maxBodyBytes: options.http?.maxBodyBytes,
      handlers: this.httpHandlers(),
    });
  }

  get stores(): Stores<MatrixEvent> {
    if (!this.storesValue) throw new Error("Appservice.stores is available after start()");
    return this.storesValue;
  }

  get botUserId(): string {
    return this.namespaces.botUserId;
  }

  get botIntent(): Intent {
    return this.intents.getBotIntent();
  }

  /** The port the HTTP API listens on (useful with port 0). */
  get port(): number | undefined {
    return this.listening?.port;
  }

  /**
   * Opens the stores, replays work left from the last run, starts listening, then pings the
   * homeserver. Bridge routes must be added to `http.app` before this.
   */
  start(): Promise<void> {
    this.stopping = undefined;
    this.starting = this.startOnce();
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    if (this.ownsStores) {
      if (!this.options.dataDir) throw new Error("Appservice needs dataDir (or stores)");
      this.storesValue = await openStores<MatrixEvent>({
        dataDir: this.options.dataDir,
        logger: this.logger,
        processedEventWindow: Math.max(10_000, 2 * (this.options.maxPendingEvents ?? 10_000)),
      });
    }
    // A registry shared with the bridge may have them already; registering twice throws.
    if (this.options.processMetrics !== false && !this.metrics.getSingleMetric("process_cpu_seconds_total"))
      collectDefaultMetrics({ register: this.metrics });
    const stores = this.stores;
    this.dispatcher = new EventDispatcher<MatrixEvent>({
      handler: (event) => this.dispatch(event),
      transactions: stores.transactions,
      processed: stores.processedEvents,
      logger: this.logger,
      registry: this.metrics,
      roomConcurrency: this.options.roomConcurrency,
      handlerTimeoutMs: this.options.handlerTimeoutMs,
    });
    this.ingest = new TransactionIngest<ParsedTransaction>({
      dispatcher: this.dispatcher,
      sink: this.options.hooks.sink,
      logger: this.logger,
      registry: this.metrics,
      maxPendingEvents: this.options.maxPendingEvents,
    });
    const port = this.options.http?.port ?? 0;
    const host = this.options.http?.bindAddress ?? "127.0.0.1";
    try {
      await this.ingest.start();
      const replaying = this.dispatcher.depth;
      if (replaying)
        this.logger.info({ events: replaying }, "replaying events accepted before the last shutdown");
      this.listening = await this.http.listen(port, host);
    } catch (err) {
      // Port taken, say: undo what started, so no handler runs and the stores are closed.
      await this.ingest.stop({ timeoutMs: STORE_CLOSE_RESERVE_MS }).catch(() => {});
      if (this.ownsStores) {
        await this.storesValue?.close().catch(() => {});
        this.storesValue = undefined;
      }
      this.ingest = undefined;
      this.logger.error({ err, port, host }, "appservice could not start");
      throw err;
    }
    this.logger.info({ port: this.listening.port, host }, "appservice API listening");
    // stop() was called meanwhile: it closes all this once start returns; no ping.
    if (this.stopping) return;
    if (this.options.pingOnStart !== false) await this.pingHomeserver();
  }

  /** Asks the homeserver to call us back; on success it also retries its queued transactions. */
  async pingHomeserver(): Promise<boolean> {
    try {
      const { duration_ms } = await this.client.ping(this.registration.id, `trestle-start-${Date.now()}`);
      this.logger.info({ durationMs: duration_ms }, "homeserver ping succeeded");
      return true;
    } catch (err) {
      this.logger.error({ err: String(err) }, `homeserver ping failed: ${diagnosePingFailure(err)}`);
      return false;
    }
  }

  /**
   * Stops accepting, drains queued events, closes the stores it opened, all within `timeoutMs`
   * (default 8 s, inside the CLI's 10 s before it kills the process). In order:
   * 1. new transactions are answered 503 (the homeserver keeps them), and those held back by
   *    back-pressure are acknowledged, being stored already;
   * 2. the HTTP server closes, cutting connections still open after a second;
   * 3. queued events are handled until the deadline, less a reserve for closing the stores;
   *    what is left stays in the journal for the next start.
   */
  stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    // A second call waits for the first, which may still be draining.
    this.stopping ??= this.stopOnce(timeoutMs);
    return this.stopping;
  }

  private async stopOnce(timeoutMs: number): Promise<void> {
    const deadline = new Deadline(timeoutMs);
    // A start under way finishes (or fails) first, so that what it opens is closed here.
    const starting = this.starting;
    if (starting) {
      const settled = starting.then(
        () => {},
        () => {},
      );
      await deadline.within(settled, deadline.remainingAfter(STORE_CLOSE_RESERVE_MS));
    }
    this.ingest?.stopAccepting();
    await this.listening?.close(Math.min(1_000, deadline.remaining()));
    this.listening = undefined;
    await this.ingest?.stop({ drain: true, timeoutMs: deadline.remainingAfter(STORE_CLOSE_RESERVE_MS) });
    if (this.ownsStores) await this.storesValue?.close();
    this.logger.info("appservice stopped");
  }

  /** Not `async`: handing on the hook's promise saves a promise and a microtask per event. */
  private dispatch(event: MatrixEvent): Promise<void> | void {
    if (event.type === "m.room.member") this.intents.noteEvent(event);
    return this.options.hooks.onEvent(event);
  }

  private httpHandlers(): AppserviceHttpHandlers {
    const hooks = this.options.hooks;
    return {
      onTransaction: async (txnId, txn, source) => {
        if (!this.ingest) throw new Error("not started");
        await this.ingest.accept(txnId, txn, source);
      },
      onUserQuery: async (userId) => {
        if (!hooks.onUserQuery || !this.namespaces.isUserInNamespace(userId)) return false;
        const profile = await hooks.onUserQuery(userId);
        if (!profile) return false;
        const intent = this.intents.getIntent(userId);
        await intent.ensureRegistered();
        if (profile.displayName) await intent.setDisplayName(profile.displayName);
        if (profile.avatarUrl) await intent.setAvatarUrl(profile.avatarUrl);
        return true;
      },
      onAliasQuery: async (alias) => {
        if (!hooks.onAliasQuery || !this.namespaces.isAliasInNamespace(alias)) return false;
        const options = await hooks.onAliasQuery(alias);
        if (!options) return false;
        const localpart = alias.slice(1, alias.indexOf(":"));
        await this.botIntent.createRoom({ ...options, aliasLocalpart: localpart });
        return true;
      },
      getProtocol: hooks.getProtocol?.bind(hooks),
      getLocations: hooks.getLocations?.bind(hooks),
      getUsers: hooks.getUsers?.bind(hooks),
      getLocationsByAlias: hooks.getLocationsByAlias?.bind(hooks),
      getUsersByUserId: hooks.getUsersByUserId?.bind(hooks),
    };
  }
}
