// A local Synapse with trestle-webhooks registered and running as its own process, for
// `npm run demo` and the webhooks benchmark: what an admin would set up, in one call.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse, stringify } from "yaml";
import {
  BridgeProcess,
  freePort,
  type MatrixTestClient,
  type RegistrationFile,
  SERVER_NAME,
  SynapseInstance,
} from "../../../test/harness/index.js";
import { RUN_DIR } from "../../../test/harness/paths.js";
import { ensureSynapse } from "../../../test/harness/provision.js";

const CLI = "packages/webhooks/src/cli.ts";

export interface LocalStackOptions {
  name: string;
  logLevel: string;
  /** Overrides of the `webhooks` config section. */
  webhooks?: Record<string, unknown>;
  metrics?: boolean;
}

export interface LocalStack {
  hs: SynapseInstance;
  bridge: BridgeProcess;
  synapseVersion: string;
  botId: string;
  webhookBase: string;
  /** A room `owner` creates with the bot in it (allowed to store hooks), and a hook via provisioning. */
  roomWithHook(
    owner: MatrixTestClient,
    hook: Record<string, unknown>,
  ): Promise<{ roomId: string; url: string }>;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const tool = await ensureSynapse();
  if (!tool.available) throw new Error(`Cannot start Synapse: ${tool.reason}`);
  const port = await freePort();
  const webhookPort = await freePort();
  const dir = path.join(RUN_DIR, options.name);
  await mkdir(dir, { recursive: true });
  const configPath = path.join(dir, "webhooks.yaml");
  const registrationPath = path.join(dir, "registration.yaml");
  const token = randomBytes(24).toString("hex");
  const webhookBase = `http://127.0.0.1:${webhookPort}`;
  const writeConfig = (homeserverUrl: string) =>
    writeFile(
      configPath,
      stringify({
        homeserver: { url: homeserverUrl, domain: SERVER_NAME },
        appservice: { port, bindAddress: "127.0.0.1" },
        logging: { level: options.logLevel },
        dataDir: path.join(dir, "data"),
        metrics: { enabled: options.metrics ?? false },
        webhooks: { publicUrl: webhookBase, port: webhookPort, ...options.webhooks },
        provisioning: { enabled: true, token },
      }),
    );

  // The registration comes from the bridge's own `-r`, as an admin makes it.
  await writeConfig("http://127.0.0.1:1");
  await new BridgeProcess({
    name: `${options.name}-register`,
    script: CLI,
    args: ["-c", configPath, "-f", registrationPath, "-r", "-u", `http://127.0.0.1:${port}`],
    port,
  }).runToCompletion();
  const registration = parse(await readFile(registrationPath, "utf8")) as RegistrationFile;
  const hs = await SynapseInstance.start(tool, { appservices: [registration] });
  await writeConfig(hs.baseUrl);
  const bridge = new BridgeProcess({
    name: options.name,
    script: CLI,
    args: ["-c", configPath, "-f", registrationPath],
    port,
  });
  await bridge.start();
  const botId = `@${registration.sender_localpart}:${SERVER_NAME}`;

  return {
    hs,
    bridge,
    synapseVersion: tool.version,
    botId,
    webhookBase,
    async roomWithHook(owner, hook) {
      const roomId = await owner.createRoom({
        name: "Webhooks",
        preset: "private_chat",
        invite: [botId],
        power_level_content_override: { users: { [botId]: 50 } },
      });
      await owner.waitForEvent(
        (e) => e.room_id === roomId && e.state_key === botId && e.content.membership === "join",
        30_000,
      );
      const res = await fetch(`${webhookBase}/provisioning/v1/rooms/${encodeURIComponent(roomId)}/hooks`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(hook),
      });
      if (!res.ok) throw new Error(`creating the hook failed: ${res.status} ${await res.text()}`);
      return { roomId, url: ((await res.json()) as { url: string }).url };
    },
    async stop() {
      await bridge.stop();
      await hs.stop();
    },
  };
}
