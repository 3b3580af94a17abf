import { createHmac, randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { stringify } from "yaml";
import { RUN_DIR } from "./paths.js";
import { freePort, ManagedProcess, waitUntil } from "./process.js";
import type { Tool } from "./provision.js";

export const SERVER_NAME = "trestle.test";
const SHARED_SECRET = "trestle-harness-shared-secret";

/** The appservice registration fields the homeserver reads (what matrix-appservice-bridge writes too). */
export interface RegistrationFile {
  id: string;
  url: string | null;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  namespaces: {
    users?: { exclusive: boolean; regex: string }[];
    aliases?: { exclusive: boolean; regex: string }[];
    rooms?: { exclusive: boolean; regex: string }[];
  };
  [extra: string]: unknown;
}

export interface SynapseOptions {
  appservices?: RegistrationFile[];
  /** Extra homeserver.yaml keys, merged over the defaults. */
  config?: Record<string, unknown>;
}

export interface RegisteredUser {
  userId: string;
  accessToken: string;
  deviceId: string;
}

/** Every rc_* limit Synapse has, lifted: tests send bursts no real user would. */
function liftedRateLimits(): Record<string, unknown> {
  const lifted = { per_second: 100000, burst_count: 100000 };
  return {
    rc_message: lifted,
    rc_registration: lifted,
    rc_registration_token_validity: lifted,
    rc_login: { address: lifted, account: lifted, failed_attempts: lifted },
    rc_admin_redaction: lifted,
    rc_joins: { local: lifted, remote: lifted },
    rc_joins_per_room: lifted,
    rc_invites: { per_room: lifted, per_user: lifted, per_issuer: lifted },
    rc_3pid_validation: lifted,
    rc_third_party_invite: lifted,
    rc_presence: { per_user: lifted },
    rc_room_creation: lifted,
    rc_user_directory: lifted,
    rc_delayed_event_mgmt: lifted,
    rc_reports: lifted,
    rc_media_create: lifted,
    rc_federation: {
      window_size: 1000,
      sleep_limit: 100000,
      sleep_delay: 0,
      reject_limit: 100000,
      concurrent: 100000,
    },
    federation_rr_transactions_per_room_per_second: 100000,
  };
}

/** A real Synapse on loopback with SQLite, in its own directory, killed at teardown. */
export class SynapseInstance {
  readonly baseUrl: string;
  readonly serverName = SERVER_NAME;
  private readonly process: ManagedProcess;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly configPath: string,
    tool: Extract<Tool, { available: true }>,
  ) {
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.process = new ManagedProcess({
      name: "synapse",
      command: tool.binary,
      args: ["-m", "synapse.app.homeserver", "-c", configPath],
      cwd: dir,
      logFile: path.join(dir, "synapse.log"),
      env: { PYTHONUNBUFFERED: "1" },
    });
  }

  static async start(
    tool: Extract<Tool, { available: true }>,
    options: SynapseOptions = {},
  ): Promise<SynapseInstance> {
    const port = await freePort();
    const dir = path.join(RUN_DIR, `synapse-${port}`);
    await mkdir(path.join(dir, "media"), { recursive: true });

    const signingKey = `ed25519 a_${randomBytes(3).toString("hex")} ${randomBytes(32).toString("base64").replace(/=+$/, "")}`;
    await writeFile(path.join(dir, "signing.key"), `${signingKey}\n`);

    const appserviceFiles: string[] = [];
    for (const registration of options.appservices ?? []) {
      const file = path.join(dir, `appservice-${registration.id}.yaml`);
      await writeFile(file, stringify(registration));
      appserviceFiles.push(file);
    }

    const config = {
      server_name: SERVER_NAME,
      public_baseurl: `http://127.0.0.1:${port}/`,
      pid_file: path.join(dir, "homeserver.pid"),
      report_stats: false,
      listeners: [
        {
          port,
          bind_addresses: ["127.0.0.1"],
          type: "http",
          tls: false,
          x_forwarded: false,
          resources: [{ names: ["client"], compress: false }],
        },
      ],
      database: { name: "sqlite3", args: { database: path.join(dir, "homeserver.db") } },
      media_store_path: path.join(dir, "media"),
      signing_key_path: path.join(dir, "signing.key"),
      trusted_key_servers: [],
      suppress_key_server_warning: true,
      macaroon_secret_key: randomBytes(16).toString("hex"),
      form_secret: randomBytes(16).toString("hex"),
      registration_shared_secret: SHARED_SECRET,
      enable_registration: false,
      bcrypt_rounds: 4,
      url_preview_enabled: false,
      presence: { enabled: true },
      app_service_config_files: appserviceFiles,
      ...liftedRateLimits(),
      experimental_features: {
        msc2409_to_device_messages_enabled: true,
        msc3202_transaction_extensions: true,
        msc3983_appservice_otk_claims: true,
        msc3984_appservice_key_query: true,
      },
      ...options.config,
    };
    const configPath = path.join(dir, "homeserver.yaml");
    await writeFile(configPath, stringify(config));

    const instance = new SynapseInstance(dir, port, configPath, tool);
    await instance.startProcess();
    return instance;
  }

  get logFile(): string {
    return this.process.logFile;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** Starts (or restarts, after stop()) the same homeserver with the same database. */
  async startProcess(): Promise<void> {
    await this.process.start();
    await waitUntil(
      `Synapse on port ${this.port}`,
      async () => (await fetch(`${this.baseUrl}/_matrix/client/versions`)).ok,
      { timeoutMs: 60_000, proc: this.process },
    );
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }

  async tail(lines?: number): Promise<string> {
    return this.process.tail(lines);
  }

  /** Registers a real user through the shared-secret admin API and returns its access token. */
  async registerUser(
    localpart: string,
    { admin = false, password = "trestle-pass" } = {},
  ): Promise<RegisteredUser> {
    const url = `${this.baseUrl}/_synapse/admin/v1/register`;
    const nonceRes = await fetch(url);
    const { nonce } = (await nonceRes.json()) as { nonce: string };
    const mac = createHmac("sha1", SHARED_SECRET)
      .update([nonce, localpart, password, admin ? "admin" : "notadmin"].join("\0"))
      .digest("hex");
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ nonce, username: localpart, password, admin, mac }),
    });
    const body = (await res.json()) as {
      user_id?: string;
      access_token?: string;
      device_id?: string;
      error?: string;
    };
    if (!res.ok || !body.access_token || !body.user_id) {
      throw new Error(`registering ${localpart} failed: ${res.status} ${JSON.stringify(body)}`);
    }
    return { userId: body.user_id, accessToken: body.access_token, deviceId: body.device_id ?? "" };
  }
}
