// 100,000 distinct ghosts touched once each: the intent cache is bounded, so the heap at
// the end stays within 50 MB of the start.
import { HomeserverClient, IntentFactory, silentLogger } from "@trestle/appservice";

const GHOSTS = 100_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

const client = new HomeserverClient({
  homeserverUrl: "http://127.0.0.1:1",
  asToken: "x",
  logger: silentLogger(),
});
const factory = new IntentFactory({
  client,
  serverName: "bench.test",
  botLocalpart: "bot",
  logger: silentLogger(),
});
factory.getBotIntent();
const before = heapMb();
const started = performance.now();
for (let i = 0; i < GHOSTS; i++) {
  const intent = factory.getIntent(`@_ghost_${i}:bench.test`);
  intent.noteMembership(`!room${i % 500}:bench.test`, "join");
}
const elapsed = performance.now() - started;
const after = heapMb();
console.log("\n### Intent cache: 100,000 distinct ghosts touched once\n");
console.log("| ghosts | intents cached | heap before MB | heap after MB | growth MB | target | time ms |");
console.log("| ---: | ---: | ---: | ---: | ---: | --- | ---: |");
console.log(
  `| ${GHOSTS} | ${factory.size} | ${before.toFixed(1)} | ${after.toFixed(1)} | ${(after - before).toFixed(1)} | ≤ 50 MB ${after - before <= 50 ? "✓" : "✗"} | ${elapsed.toFixed(0)} |`,
);
