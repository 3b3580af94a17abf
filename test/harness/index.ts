import { relative } from "node:path";
import { ErgoServer, InspircdServer, type IrcServer } from "./irc-servers.js";
import { MatrixTestClient } from "./matrix-client.js";
import { isCI, REPO_ROOT } from "./paths.js";
import { ensureErgo, ensureInspircd, ensureSynapse, provisionLogTail, type Tool } from "./provision.js";
import { SynapseInstance, type SynapseOptions } from "./synapse.js";

export { IrcTestClient } from "./irc-client.js";
export { IRC_OPER, type IrcServer } from "./irc-servers.js";
export { type ClientEvent, MatrixRequestError, MatrixTestClient } from "./matrix-client.js";
export { freePort, ManagedProcess, waitUntil } from "./process.js";
export { type RegisteredUser, type RegistrationFile, SERVER_NAME, SynapseInstance } from "./synapse.js";

type Available = Extract<Tool, { available: true }>;

interface Stoppable {
  stop(): Promise<void>;
  tail(lines?: number): Promise<string>;
  readonly logFile: string;
}

function note(line: string): void {
  console.log(`      [harness] ${line}`);
}

/**
 * Gives a suite real servers and tears them down after it, printing their logs when a
 * test fails. Call `useHarness()` at the top of a `describe` body.
 */
export class Harness {
  private readonly started: Stoppable[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  /** Provisions the tool if needed; skips the test (or, under CI, fails it) when it can't be had. */
  async require(ctx: Mocha.Context, ensure: () => Promise<Tool>): Promise<Available> {
    ctx.timeout(Math.max(ctx.timeout(), 15 * 60_000)); // a first install may build or download
    const tool = await ensure();
    if (tool.available) return tool;
    if (isCI && !tool.refusedByRegistry) {
      throw new Error(
        `${tool.name} is required under CI but unavailable: ${tool.reason}\n${await provisionLogTail()}`,
      );
    }
    note(`SKIPPED: ${tool.name} unavailable: ${tool.reason}`);
    ctx.skip();
  }

  async synapse(ctx: Mocha.Context, options: SynapseOptions = {}): Promise<SynapseInstance> {
    const tool = await this.require(ctx, ensureSynapse);
    const hs = await SynapseInstance.start(tool, options);
    this.started.push(hs);
    note(`Synapse ${tool.version} at ${hs.baseUrl} (log ${relative(REPO_ROOT, hs.logFile)})`);
    return hs;
  }

  async ergo(ctx: Mocha.Context): Promise<IrcServer> {
    const server = await ErgoServer.start(await this.require(ctx, ensureErgo));
    return this.trackIrc(server);
  }

  async inspircd(ctx: Mocha.Context): Promise<IrcServer> {
    const server = await InspircdServer.start(await this.require(ctx, ensureInspircd));
    return this.trackIrc(server);
  }

  /** A real user registered on `hs`, with a client of its own. */
  async user(hs: SynapseInstance, localpart: string): Promise<MatrixTestClient> {
    const user = await hs.registerUser(localpart);
    return new MatrixTestClient(hs.baseUrl, user.userId, user.accessToken);
  }

  /** Runs at teardown, before the servers stop (close clients, stop bridges). */
  onTeardown(cleanup: () => Promise<void> | void): void {
    this.cleanups.push(cleanup);
  }

  /** Anything with a log, e.g. a bridge process, to be printed when a test fails. */
  track(proc: Stoppable): void {
    this.started.push(proc);
  }

  async printLogs(): Promise<void> {
    for (const proc of this.started) {
      console.log(
        `\n----- ${relative(REPO_ROOT, proc.logFile)} (last 60 lines) -----\n${await proc.tail(60)}`,
      );
    }
  }

  async teardown(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      await Promise.resolve(cleanup()).catch((err) => note(`cleanup failed: ${(err as Error).message}`));
    }
    for (const proc of this.started.splice(0).reverse()) {
      await proc.stop().catch((err) => note(`stop failed: ${(err as Error).message}`));
    }
  }

  private trackIrc(server: IrcServer): IrcServer {
    this.started.push(server);
    note(
      `${server.kind === "ergo" ? "Ergo" : "InspIRCd"} ${server.version} at ${server.host}:${server.port} (log ${relative(REPO_ROOT, server.logFile)})`,
    );
    return server;
  }
}

/** Registers the teardown and log-on-failure hooks in the calling `describe`. */
export function useHarness(): Harness {
  const harness = new Harness();
  afterEach(async function () {
    if (this.currentTest?.state === "failed") await harness.printLogs();
  });
  after(async () => harness.teardown());
  return harness;
}
export { BridgeProcess, type BridgeProcessSpec } from "./bridge-process.js";
