// The parts of irc-framework 4.14 the test harness uses; the package ships no types.
declare module "irc-framework" {
  import { EventEmitter } from "node:events";

  export interface IrcMessageEvent {
    nick: string;
    ident: string;
    hostname: string;
    target: string;
    message: string;
    type: "privmsg" | "notice" | "action";
    tags: Record<string, string>;
    time?: number;
  }

  export interface IrcCommand {
    command: string;
    params: string[];
    tags: Record<string, string>;
    nick?: string;
  }

  export interface ConnectOptions {
    host: string;
    port: number;
    nick: string;
    username?: string;
    gecos?: string;
    tls?: boolean;
    auto_reconnect?: boolean;
    ping_interval?: number;
    ping_timeout?: number;
    message_max_length?: number;
  }

  export class Client extends EventEmitter {
    constructor(options?: Partial<ConnectOptions>);
    user: { nick: string };
    network: { cap: { isEnabled(cap: string): boolean; enabled: string[] } };
    connected: boolean;
    connect(options?: ConnectOptions): void;
    requestCap(cap: string | string[]): void;
    join(channel: string, key?: string): void;
    part(channel: string, message?: string): void;
    say(target: string, message: string, tags?: Record<string, string>): void;
    notice(target: string, message: string): void;
    raw(...line: string[]): void;
    quit(message?: string): void;
  }
}
