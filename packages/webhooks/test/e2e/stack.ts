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
  /** Where webhooks are POSTed (the bridge's webhook port, or the appservice port when shared). */
  webhookBase: string;
  /** The appservice API the homeserver calls. */
  appserviceBase: string;
  provisioningToken: string;
  configPath: string;
  writeConfig(overrides?: Record<string, unknown>): Promise<void>;
}

/**
 * A real Synapse with trestle-webhooks registered (through its own `-r`) and running as a
 * process with a separate public webhook port, as an admin would deploy it; with `sharedPort`,
 * the webhook routes on the appservice port instead (`webhooks.port: 0`).
 */
export async function startWebhooksStack(
  ctx: Mocha.Context,
  harness: Harness,
  options: { sharedPort?: boolean } = {},
): Promise<WebhooksStack> {
  const port = await freePort();
  const webhookPort = options.sharedPort ? port : await freePort();
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
        port: options.sharedPort ? 0 : webhookPort,
        rateLimit: { perMinute: 6000, burst: 1000 },
        waitTimeoutMs: 10_000,
        // The tests serve avatar images from loopback, which production refuses to fetch from.
        avatars: { allowPrivateAddresses: true },
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
    appserviceBase: `http://127.0.0.1:${port}`,
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

/** The hook URL in a text (a DM body), if there is one. */
export function hookUrlIn(text: string): string | undefined {
  return URL_PATTERN.exec(text)?.[0];
}

/**
 * Sends a `!webhook …` command as `client` and returns the bot's answer: the bot message in
 * the room that replies to exactly this command event (so earlier answers never match).
 */
export async function commandReply(
  client: MatrixTestClient,
  roomId: string,
  command: string,
): Promise<ClientEvent> {
  const commandId = await client.sendMessage(roomId, command);
  return client.waitForEvent((e) => {
    const relation = e.content["m.relates_to"] as { "m.in_reply_to"?: { event_id?: unknown } } | undefined;
    return (
      e.room_id === roomId &&
      e.sender === BOT_ID &&
      e.type === "m.room.message" &&
      relation?.["m.in_reply_to"]?.event_id === commandId
    );
  });
}

/**
 * The next direct message from the bot to `client` that matches `predicate`, among the events
 * after index `after` of `client.events` (take `client.events.length` before the command). Joins
 * the bot's DM invites on the way, as a user accepting them would; `roomId` (the room the command
 * was sent in) never counts as a DM.
 */
export async function waitForDm(
  client: MatrixTestClient,
  roomId: string,
  after: number,
  predicate: (body: string) => boolean,
  timeoutMs = 20_000,
): Promise<ClientEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const invited of client.invites) {
      const joined = client.events.some(
        (e) => e.room_id === invited && e.state_key === client.userId && e.content.membership === "join",
      );
      if (invited !== roomId && !joined) await client.join(invited).catch(() => undefined);
    }
    const dm = client.events
      .slice(after)
      .find(
        (e) =>
          e.room_id !== roomId &&
          e.sender === BOT_ID &&
          e.type === "m.room.message" &&
          predicate(String(e.content.body)),
      );
    if (dm) return dm;
    await client.sync(500);
  }
  throw new Error(`${client.userId}: no matching direct message from the bot within ${timeoutMs} ms`);
}

export interface WebhookResponse {
  status: number;
  headers: Headers;
  /** The JSON body, or `{}` when the body is not JSON. */
  json: Record<string, unknown>;
  text: string;
}

/** One HTTP request to a webhook URL, as a sending service makes it (POST with JSON by default). */
export async function sendWebhook(
  url: string,
  body?: string | Buffer,
  init: { method?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<WebhookResponse> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.contentType !== undefined) headers["content-type"] = init.contentType;
  const res = await fetch(url, { method: init.method ?? "POST", headers, body });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: left empty, `text` has it
  }
  return { status: res.status, headers: res.headers, json, text };
}

/**
 * Proves that nothing reached `roomId` since index `mark` of `client.events`: syncs for
 * `quietMs`, then posts a marker through `markerUrl` (a working hook of the same room) and waits
 * for it. A room's webhooks are delivered in order, so anything queued before the marker would
 * have arrived before it. Fails when any message other than the marker arrived.
 */
export async function expectNothingPosted(
  client: MatrixTestClient,
  roomId: string,
  mark: number,
  markerUrl: string,
  quietMs = 1000,
): Promise<void> {
  const quietUntil = Date.now() + quietMs;
  while (Date.now() < quietUntil) await client.sync(Math.max(0, quietUntil - Date.now()));
  const marker = `marker ${Math.random().toString(36).slice(2)}`;
  const res = await sendWebhook(markerUrl, JSON.stringify({ text: marker }), {
    contentType: "application/json",
  });
  if (res.status !== 202) throw new Error(`the marker webhook answered ${res.status}: ${res.text}`);
  const arrived = await client.waitForEvent(
    (e) => e.room_id === roomId && e.type === "m.room.message" && String(e.content.body).includes(marker),
  );
  const others = client.events
    .slice(mark)
    .filter((e) => e.room_id === roomId && e.type === "m.room.message" && e.event_id !== arrived.event_id);
  if (others.length > 0) {
    throw new Error(
      `expected nothing posted, but the room got: ${others.map((e) => `${e.sender}: ${JSON.stringify(e.content.body)}`).join("; ")}`,
    );
  }
}
