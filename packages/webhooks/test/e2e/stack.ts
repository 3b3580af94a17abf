import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse, stringify } from "yaml";
import {
  BridgeProcess,
  type ClientEvent,
  freePort,
  type Harness,
  type MatrixTestClient,
  type RegistrationFile,
  SERVER_NAME,
  type SynapseInstance,
} from "../../../../test/harness/index.js";
import { RUN_DIR } from "../../../../test/harness/paths.js";

export const WEBHOOKS_CLI = "packages/webhooks/src/cli.ts";
export const BOT_ID = `@webhookbot:${SERVER_NAME}`;

export interface WebhooksStack {
  hs: SynapseInstance;
  bridge: BridgeProcess;
  /** Where webhooks are POSTed (the bridge's webhook port). */
  webhookBase: string;
  provisioningToken: string;
  configPath: string;
  writeConfig(overrides?: Record<string, unknown>): Promise<void>;
}

/**
 * A real Synapse with trestle-webhooks registered (through its own `-r`) and running as a
 * process with a separate public webhook port, as an admin would deploy it.
 */
export async function startWebhooksStack(ctx: Mocha.Context, harness: Harness): Promise<WebhooksStack> {
  const port = await freePort();
  const webhookPort = await freePort();
  const dir = path.join(RUN_DIR, `webhooks-${port}`);
  await mkdir(dir, { recursive: true });
  const configPath = path.join(dir, "config.yaml");
  const registrationPath = path.join(dir, "registration.yaml");
  const provisioningToken = "provisioning-token-for-tests-0123456789";
  let homeserverUrl = "http://127.0.0.1:1";

  const writeConfig = async (overrides: Record<string, unknown> = {}) => {
    const config = {
      homeserver: { url: homeserverUrl, domain: SERVER_NAME },
      appservice: { port, bindAddress: "127.0.0.1" },
      logging: { level: "debug" },
      dataDir: path.join(dir, "data"),
      metrics: { enabled: false },
      webhooks: {
        publicUrl: `http://127.0.0.1:${webhookPort}`,
        port: webhookPort,
        rateLimit: { perMinute: 6000, burst: 1000 },
        waitTimeoutMs: 10_000,
        ...overrides,
      },
      provisioning: { enabled: true, token: provisioningToken },
    };
    await writeFile(configPath, stringify(config));
  };
  await writeConfig();

  const generate = new BridgeProcess({
    name: "webhooks-register",
    script: WEBHOOKS_CLI,
    args: ["-c", configPath, "-f", registrationPath, "-r", "-u", `http://127.0.0.1:${port}`],
    port,
  });
  await generate.runToCompletion();
  const registration = parse(await readFile(registrationPath, "utf8")) as RegistrationFile;

  const hs = await harness.synapse(ctx, { appservices: [registration] });
  homeserverUrl = hs.baseUrl;
  await writeConfig();
  const bridge = new BridgeProcess({
    name: "trestle-webhooks",
    script: WEBHOOKS_CLI,
    args: ["-c", configPath, "-f", registrationPath],
    port,
  });
  harness.track(bridge);
  await bridge.start();
  return {
    hs,
    bridge,
    webhookBase: `http://127.0.0.1:${webhookPort}`,
    provisioningToken,
    configPath,
    writeConfig,
  };
}

/** A room `owner` creates with the bot invited and allowed to write hook state (power 50). */
export async function roomWithBot(owner: MatrixTestClient): Promise<string> {
  const roomId = await owner.createRoom({
    name: "webhook target",
    preset: "private_chat",
    invite: [BOT_ID],
    // Room v12: the creator has unlimited power and must not be listed in `users`.
    power_level_content_override: { users: { [BOT_ID]: 50 } },
  });
  await owner.waitForEvent(
    (e) =>
      e.room_id === roomId &&
      e.type === "m.room.member" &&
      e.state_key === BOT_ID &&
      e.content.membership === "join",
  );
  return roomId;
}

/** The bot's answer to a command: the next notice from the bot in the room after `since`. */
export async function botReply(
  client: MatrixTestClient,
  roomId: string,
  predicate: (body: string) => boolean,
): Promise<ClientEvent> {
  return client.waitForEvent(
    (e) =>
      e.room_id === roomId &&
      e.sender === BOT_ID &&
      e.type === "m.room.message" &&
      predicate(String(e.content.body)),
  );
}

const URL_PATTERN = /http:\/\/127\.0\.0\.1:\d+\/webhooks\/v1\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+/;

/**
 * Creates a hook with `!webhook create` as `owner`, accepts the bot's DM invite, and reads
 * the URL from the DM, the way a user gets it.
 */
export async function createHookByCommand(
  owner: MatrixTestClient,
  roomId: string,
  name: string,
): Promise<string> {
  await owner.sendMessage(roomId, `!webhook create ${name}`);
  const dmFor = async (): Promise<string> => {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      for (const invited of owner.invites) {
        if (
          invited !== roomId &&
          !owner.events.some(
            (e) => e.room_id === invited && e.state_key === owner.userId && e.content.membership === "join",
          )
        ) {
          await owner.join(invited).catch(() => undefined);
        }
      }
      const dm = owner.events.find(
        (e) =>
          e.room_id !== roomId &&
          e.sender === BOT_ID &&
          URL_PATTERN.test(String(e.content.body)) &&
          String(e.content.body).includes(name),
      );
      if (dm) return URL_PATTERN.exec(String(dm.content.body))![0];
      await owner.sync(500);
    }
    throw new Error(`no DM with the URL of hook ${name}`);
  };
  return dmFor();
}
