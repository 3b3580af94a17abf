// Baseline: matrix-appservice 2.x's AppService, the HTTP layer under matrix-appservice-bridge.
// It keeps nothing on disk: events are emitted in memory as the 200 is sent.
import { AppService } from "matrix-appservice";

const hsToken = process.env.BENCH_HS_TOKEN ?? "bench-hs-token";
const service = new AppService({ homeserverToken: hsToken, httpMaxSizeBytes: 10 * 1024 * 1024 });
let handled = 0;
service.on("event", () => {
  handled++;
});
await service.listen(0, "127.0.0.1", 511);
const address = (service as unknown as { server: import("node:http").Server }).server.address();
const port = typeof address === "object" && address ? address.port : 0;
console.log(`LISTENING ${port}`);
process.on("SIGTERM", () => {
  console.log(`HANDLED ${handled}`);
  process.exit(0);
});
