// The open-loop webhook poster of the benchmark, in a worker thread of its own: the listener's
// /sync parsing and garbage collection in the main thread must not delay (and so inflate) the
// acknowledgement times it records. Plain JavaScript, so the worker needs no TypeScript loader.
// Input (workerData): { url, rate, bodies }. Output: one message with, per body in order, the
// absolute send time (ms since the epoch, comparable across threads), the ack time in ms and the
// HTTP status (0 for a connection error).
import { Agent, request } from "node:http";
import { parentPort, workerData } from "node:worker_threads";

const { url, rate, bodies } = workerData;
const target = new URL(url);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const now = () => performance.timeOrigin + performance.now();

function post(body) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
      },
    );
    req.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
    req.end(body);
  });
}

const sentAt = [];
const acks = [];
const start = performance.now();
for (let i = 0; i < bodies.length; i++) {
  const wait = start + (i * 1000) / rate - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  sentAt.push(now());
  acks.push(post(JSON.stringify({ text: bodies[i] })));
}
const results = await Promise.all(acks);
const seconds = (performance.now() - start) / 1000;
agent.destroy();
parentPort.postMessage({
  seconds,
  sentAt,
  ackMs: results.map((r) => r.ms),
  status: results.map((r) => r.status),
});
