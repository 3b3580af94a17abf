import { Client, type IrcCommand, type IrcMessageEvent } from "irc-framework";
import type { IrcServer } from "./irc-servers.js";

/** A real IRC user on a test server, driven by irc-framework, recording what it receives. */
export class IrcTestClient {
  readonly messages: IrcMessageEvent[] = [];
  /** Lines the client library did not parse into an event (FAIL, numerics it ignores, …). */
  readonly unknown: IrcCommand[] = [];
  readonly rawLines: string[] = [];
  private readonly client: Client;

  private constructor(
    readonly server: IrcServer,
    readonly nick: string,
  ) {
    this.client = new Client();
    this.client.on("message", (event: IrcMessageEvent) => this.messages.push(event));
    this.client.on("unknown command", (command: IrcCommand) => this.unknown.push(command));
    this.client.on("raw", (event: { line: string; from_server: boolean }) => {
      if (event.from_server) this.rawLines.push(event.line);
    });
  }

  static async connect(server: IrcServer, nick: string, caps: string[] = []): Promise<IrcTestClient> {
    const client = new IrcTestClient(server, nick);
    if (caps.length) client.client.requestCap(caps);
    const registered = client.once("registered", 15_000);
    client.client.connect({
      host: server.host,
      port: server.port,
      nick,
      username: nick.slice(0, 10),
      gecos: `Trestle test user ${nick}`,
      auto_reconnect: false,
    });
    await registered;
    return client;
  }

  get enabledCaps(): string[] {
    return this.client.network.cap.enabled;
  }

  async join(channel: string): Promise<void> {
    const joined = this.once("join", 10_000, (e: { nick: string; channel: string }) => e.nick === this.nick);
    this.client.join(channel);
    await joined;
  }

  say(target: string, text: string): void {
    this.client.say(target, text);
  }

  raw(line: string): void {
    this.client.raw(line);
  }

  /** OPER with the test servers' bridge credentials; resolves on 381 RPL_YOUREOPER. */
  async oper(name: string, password: string): Promise<void> {
    const start = this.rawLines.length;
    this.raw(`OPER ${name} ${password}`);
    await this.waitForRaw((line) => / 381 /.test(line), 10_000, start);
  }

  async waitForMessage(
    predicate: (m: IrcMessageEvent) => boolean,
    timeoutMs = 10_000,
  ): Promise<IrcMessageEvent> {
    return this.poll(() => this.messages.find(predicate), timeoutMs, "message");
  }

  async waitForRaw(predicate: (line: string) => boolean, timeoutMs = 10_000, from = 0): Promise<string> {
    return this.poll(() => this.rawLines.slice(from).find(predicate), timeoutMs, "line");
  }

  async quit(): Promise<void> {
    if (!this.client.connected) return;
    const closed = this.once("close", 5000).catch(() => undefined);
    this.client.quit("bye");
    await closed;
  }

  private async poll<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `${this.nick} on ${this.server.kind}: no matching ${what} within ${timeoutMs} ms; last lines:\n${this.rawLines.slice(-10).join("\n")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private once<T>(event: string, timeoutMs: number, filter: (arg: T) => boolean = () => true): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.client.off(event, listener);
        reject(new Error(`${this.nick} on ${this.server.kind}: no "${event}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (arg: T) => {
        if (!filter(arg)) return;
        clearTimeout(timer);
        this.client.off(event, listener);
        resolve(arg);
      };
      this.client.on(event, listener);
    });
  }
}
