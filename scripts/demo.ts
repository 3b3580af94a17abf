// `npm run demo`: a local Synapse, trestle-webhooks registered and running, a user, a room
// with a hook, and a curl command that posts into it. Ctrl-C stops everything.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse, stringify } from "yaml";
import {
  BridgeProcess,
  freePort,
  MatrixTestClient,
  type RegistrationFile,
  SERVER_NAME,
  SynapseInstance,
} from "../test/harness/index.js";
import { RUN_DIR } from "../test/harness/paths.js";
import { ensureSynapse } from "../test/harness/provision.js";

const CLI = "packages/webhooks/src/cli.ts";
const step = (text: string) => console.log(`• ${text}`);

step("Getting Synapse ready (the first run installs it from PyPI into .cache/, a minute or two)…");
const synapseTool = await ensureSynapse();
if (!synapseTool.available) {
  console.error(`Cannot start Synapse: ${synapseTool.reason}`);
  process.exit(1);
}

const port = await freePort();
const webhookPort = await freePort();
const dir = path.join(RUN_DIR, "demo");
await mkdir(dir, { recursive: true });
const configPath = path.join(dir, "webhooks.yaml");
const registrationPath = path.join(dir, "registration.yaml");
const provisioningToken = randomBytes(24).toString("hex");
const writeConfig = (homeserverUrl: string) =>
  writeFile(
    configPath,
    stringify({
      homeserver: { url: homeserverUrl, domain: SERVER_NAME },
      appservice: { port, bindAddress: "127.0.0.1" },
      logging: { level: "info" },
      dataDir: path.join(dir, "data"),
      metrics: { enabled: true },
      webhooks: { publicUrl: `http://127.0.0.1:${webhookPort}`, port: webhookPort },
      provisioning: { enabled: true, token: provisioningToken },
    }),
  );

step("Writing the bridge's registration with `trestle-webhooks -r`…");
await writeConfig("http://127.0.0.1:1");
await new BridgeProcess({
  name: "demo-register",
  script: CLI,
  args: ["-c", configPath, "-f", registrationPath, "-r", "-u", `http://127.0.0.1:${port}`],
  port,
}).runToCompletion();
const registration = parse(await readFile(registrationPath, "utf8")) as RegistrationFile;

step(`Starting Synapse ${synapseTool.version} with the bridge registered…`);
const hs = await SynapseInstance.start(synapseTool, { appservices: [registration] });
await writeConfig(hs.baseUrl);

step("Starting trestle-webhooks…");
const bridge = new BridgeProcess({
  name: "demo-webhooks",
  script: CLI,
  args: ["-c", configPath, "-f", registrationPath],
  port,
});
await bridge.start();

step("Creating a user, a room and a webhook…");
const password = randomBytes(9).toString("base64url");
const user = await hs.registerUser("demo", { password });
const client = new MatrixTestClient(hs.baseUrl, user.userId, user.accessToken);
const botId = `@${registration.sender_localpart}:${SERVER_NAME}`;
const roomId = await client.createRoom({
  name: "Webhooks demo",
  preset: "private_chat",
  invite: [botId],
  power_level_content_override: { users: { [botId]: 50 } },
});
await client.waitForEvent(
  (e) => e.room_id === roomId && e.state_key === botId && e.content.membership === "join",
  30_000,
);
const res = await fetch(
  `http://127.0.0.1:${webhookPort}/provisioning/v1/rooms/${encodeURIComponent(roomId)}/hooks`,
  {
    method: "POST",
    headers: { authorization: `Bearer ${provisioningToken}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "demo", userId: user.userId, sender: { displayName: "Demo hook" } }),
  },
);
if (!res.ok) {
  console.error(`Creating the hook failed: ${res.status} ${await res.text()}`);
  process.exit(1);
}
const { url } = (await res.json()) as { url: string };

console.log(`
Ready.

Post into the room:

  curl -X POST -H 'Content-Type: application/json' \\
    -d '{"text": "Hello from **curl**"}' \\
    '${url}'

Log in with any Matrix client (Element, Cinny, …):
  homeserver  ${hs.baseUrl}
  user        demo   (${user.userId})
  password    ${password}
The room "Webhooks demo" has the hook; say \`!webhook help\` there for the commands.

Logs: ${path.relative(process.cwd(), bridge.logFile)} and ${path.relative(process.cwd(), hs.logFile)}
Press Ctrl-C to stop.`);

const shutdown = async () => {
  console.log("\nStopping…");
  await bridge.stop();
  await hs.stop();
  process.exit(0);
};
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
await new Promise(() => undefined);
