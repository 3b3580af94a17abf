// Trestle's appservice API with the durable store on: every transaction is written to the journal
// before the 200, then dispatched in order per room to a no-op handler.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Appservice, silentLogger } from "@trestle/appservice";

const hsToken = process.env.BENCH_HS_TOKEN ?? "bench-hs-token";
const dataDir = await mkdtemp(path.join(os.tmpdir(), "trestle-bench-"));
let handled = 0;
const appservice = new Appservice({
  registration: {
    id: "bench",
    url: "http://127.0.0.1:1",
    as_token: "bench-as-token",
    hs_token: hsToken,
    sender_localpart: "benchbot",
    namespaces: { users: [], aliases: [], rooms: [] },
  },
  homeserver: { url: "http://127.0.0.1:1", domain: "bench.test" },
  dataDir,
  logger: silentLogger(),
  pingOnStart: false,
  processMetrics: false,
  http: { port: 0 },
  hooks: {
    onEvent: async () => {
      handled++;
    },
  },
});
await appservice.start();
console.log(`LISTENING ${appservice.port}`);
process.on("SIGTERM", async () => {
  await appservice.stop();
  console.log(`HANDLED ${handled}`);
  await rm(dataDir, { recursive: true, force: true });
  process.exit(0);
});
