import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { stringify } from "yaml";
import { RUN_DIR } from "./paths.js";
import { freePort, ManagedProcess, tcpAccepts, waitUntil } from "./process.js";
import type { Tool } from "./provision.js";

/** Credentials of the oper block every test IRC server has, for the bridge's bot. */
export const IRC_OPER = { name: "bridge", password: "testpass" } as const;
/** bcrypt (cost 4) of IRC_OPER.password, made with `ergo genpasswd`; Ergo wants a hash. */
const OPER_PASSWORD_BCRYPT = "$2a$04$TWFRfHm548Iwiu6dhp9IEOs8f3H5fHGoNfwyFJsvUPn2T4vEyWVBO";

export interface IrcServer {
  readonly kind: "ergo" | "inspircd";
  readonly host: string;
  readonly port: number;
  readonly version: string;
  readonly logFile: string;
  /** Whether the server implements draft/relaymsg. */
  readonly relaymsg: boolean;
  stop(): Promise<void>;
  tail(lines?: number): Promise<string>;
}

abstract class ManagedIrcServer implements IrcServer {
  abstract readonly kind: "ergo" | "inspircd";
  abstract readonly relaymsg: boolean;
  readonly host = "127.0.0.1";

  protected constructor(
    readonly port: number,
    readonly version: string,
    protected readonly process: ManagedProcess,
  ) {}

  get logFile(): string {
    return this.process.logFile;
  }

  protected async boot(): Promise<void> {
    await this.process.start();
    await waitUntil(`${this.kind} on port ${this.port}`, () => tcpAccepts(this.port), {
      timeoutMs: 30_000,
      proc: this.process,
    });
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  tail(lines?: number): Promise<string> {
    return this.process.tail(lines);
  }
}

/** Ergo with RELAYMSG on (separator "/"), no TLS, throttling and fakelag off. */
export class ErgoServer extends ManagedIrcServer {
  readonly kind = "ergo" as const;
  readonly relaymsg = true;

  static async start(tool: Extract<Tool, { available: true }>): Promise<ErgoServer> {
    const port = await freePort();
    const dir = path.join(RUN_DIR, `ergo-${port}`);
    await mkdir(dir, { recursive: true });
    const config = {
      network: { name: "TrestleTestNet" },
      server: {
        name: "ergo.test",
        listeners: { [`127.0.0.1:${port}`]: null },
        casemapping: "ascii",
        "enforce-utf8": true,
        "lookup-hostnames": false,
        "check-ident": false,
        relaymsg: { enabled: true, separators: "/", "available-to-chanops": false },
        "ip-limits": { count: false, throttle: false },
        "max-sendq": "1M",
      },
      accounts: {
        "authentication-enabled": true,
        registration: { enabled: true, "allow-before-connect": true, "bcrypt-cost": 4 },
        "nick-reservation": { enabled: false },
        multiclient: { enabled: false },
      },
      channels: { registration: { enabled: false } },
      datastore: { path: path.join(dir, "ircd.db"), autoupgrade: true },
      limits: {
        nicklen: 32,
        identlen: 20,
        channellen: 64,
        awaylen: 200,
        kicklen: 390,
        topiclen: 390,
        linelen: { rest: 2048 },
        multiline: { "max-bytes": 4096, "max-lines": 32 },
      },
      history: { enabled: true, "channel-length": 128, "client-length": 128, "chathistory-maxmessages": 100 },
      fakelag: { enabled: false },
      "oper-classes": {
        bridge: { title: "Bridge", capabilities: ["relaymsg", "nofakelag", "samode"] },
      },
      opers: { [IRC_OPER.name]: { class: "bridge", password: OPER_PASSWORD_BCRYPT } },
      logging: [{ method: "stderr", type: "* -userinput -useroutput", level: "info" }],
    };
    const configPath = path.join(dir, "ircd.yaml");
    await writeFile(configPath, stringify(config));
    const proc = new ManagedProcess({
      name: "ergo",
      command: tool.binary,
      args: ["run", "--conf", configPath],
      cwd: dir,
      logFile: path.join(dir, "ergo.log"),
    });
    const server = new ErgoServer(port, tool.version, proc);
    await server.boot();
    return server;
  }
}

/** Debian's InspIRCd 3 with the IRCv3 modules it ships; it has no RELAYMSG. */
export class InspircdServer extends ManagedIrcServer {
  readonly kind = "inspircd" as const;
  readonly relaymsg = false;

  static async start(tool: Extract<Tool, { available: true }>): Promise<InspircdServer> {
    const port = await freePort();
    const dir = path.join(RUN_DIR, `inspircd-${port}`);
    await mkdir(dir, { recursive: true });
    const modules = [
      "cap",
      "ircv3",
      "ircv3_accounttag",
      "ircv3_batch",
      "ircv3_capnotify",
      "ircv3_chghost",
      "ircv3_ctctags",
      "ircv3_echomessage",
      "ircv3_invitenotify",
      "ircv3_labeledresponse",
      "ircv3_msgid",
      "ircv3_servertime",
      "namesx",
      "uhnames",
      "monitor",
      "setname",
      "botmode",
    ];
    const config = `
<path moduledir="/usr/lib/inspircd/modules" configdir="${dir}" datadir="${dir}" logdir="${dir}" runtimedir="${dir}">
<server name="insp.test" description="Trestle test server" network="TrestleTestNet" id="97T">
<admin name="Trestle tests" nick="admin" email="admin@insp.test">
<bind address="127.0.0.1" port="${port}" type="clients">
<pid file="${dir}/inspircd.pid">
<dns server="127.0.0.1" timeout="1">
<connect name="main" allow="*" timeout="60" pingfreq="120" hardsendq="1048576" softsendq="65536" recvq="65536"
         threshold="100000" commandrate="100000" fakelag="no" localmax="1000" globalmax="1000" maxchans="100"
         limit="5000" useident="no" resolvehostnames="no">
<class name="ServerOperators" commands="*" privs="*" usermodes="*" chanmodes="*">
<type name="NetAdmin" classes="ServerOperators">
<oper name="${IRC_OPER.name}" password="${IRC_OPER.password}" host="*@*" type="NetAdmin">
<options prefixquit="Quit: " allowzerolimit="no" syntaxhints="yes">
<security hideserver="" userstats="Pu" runasuser="" runasgroup="">
<performance softlimit="1024" somaxconn="128" clonesonconnect="no" timeskipwarn="0">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${dir}/ircd-events.log">
${modules.map((name) => `<module name="${name}">`).join("\n")}
`;
    const configPath = path.join(dir, "inspircd.conf");
    await writeFile(configPath, config);
    const proc = new ManagedProcess({
      name: "inspircd",
      command: tool.binary,
      args: ["--nofork", "--runasroot", `--config=${configPath}`],
      cwd: dir,
      logFile: path.join(dir, "inspircd.log"),
    });
    const server = new InspircdServer(port, tool.version, proc);
    await server.boot();
    return server;
  }
}
