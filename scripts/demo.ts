// `npm run demo`: a local Synapse, trestle-webhooks registered and running, a user, a room
// with a hook, and a curl command that posts into it. Ctrl-C stops everything.
import { randomBytes } from "node:crypto";
import path from "node:path";
import { startLocalStack } from "../packages/webhooks/scripts/local-stack.js";
import { MatrixTestClient } from "../test/harness/index.js";

console.log("• Starting Synapse (the first run installs it from PyPI into .cache/, a minute or two),");
console.log("  registering trestle-webhooks with it and starting the bridge…");
const stack = await startLocalStack({ name: "demo", logLevel: "info", metrics: true });

console.log("• Creating a user, a room and a webhook…");
const password = randomBytes(9).toString("base64url");
const user = await stack.hs.registerUser("demo", { password });
const client = new MatrixTestClient(stack.hs.baseUrl, user.userId, user.accessToken);
const { url } = await stack.roomWithHook(client, {
  name: "demo",
  userId: user.userId,
  sender: { displayName: "Demo hook" },
});

console.log(`
Ready (Synapse ${stack.synapseVersion}).

Post into the room:

  curl -X POST -H 'Content-Type: application/json' \\
    -d '{"text": "Hello from **curl**"}' \\
    '${url}'

Log in with any Matrix client (Element, Cinny, …):
  homeserver  ${stack.hs.baseUrl}
  user        demo   (${user.userId})
  password    ${password}
The room "Webhooks" has the hook; say \`!webhook help\` there for the commands.

Logs: ${path.relative(process.cwd(), stack.bridge.logFile)} and ${path.relative(process.cwd(), stack.hs.logFile)}
Press Ctrl-C to stop.`);

const shutdown = async () => {
  console.log("\nStopping…");
  await stack.stop();
  process.exit(0);
};
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
await new Promise(() => undefined);
