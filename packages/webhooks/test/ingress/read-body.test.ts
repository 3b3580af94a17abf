import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { DEFAULT_WEBHOOK_BODY_LIMIT_BYTES, readLimitedBody } from "../../src/ingress/body.js";
import { IncompleteBodyError, WebhookError } from "../../src/ingress/errors.js";

interface Harness {
  url: string;
  server: Server;
  /** The framing headers of each request received, to prove which path a test took. */
  framing: { contentLength: string | undefined; transferEncoding: string | undefined }[];
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that answers with the sha256 of the body, or the error. */
async function startServer(limitBytes?: number): Promise<Harness> {
  const framing: Harness["framing"] = [];
  const server = createServer((req, res) => {
    framing.push({
      contentLength: req.headers["content-length"],
      transferEncoding: req.headers["transfer-encoding"],
    });
    readLimitedBody(req, limitBytes).then(
      (body) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ length: body.length, sha256: sha256(body) }));
      },
      (err: unknown) => {
        const status = err instanceof WebhookError ? err.httpStatus : 500;
        const json = err instanceof WebhookError ? err.toJSON() : { error: String(err) };
        res.writeHead(status, { "content-type": "application/json", connection: "close" });
        res.end(JSON.stringify(json));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/v1/id/secret`,
    server,
    framing,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A request body without Content-Length (sent chunked), in chunks of `chunkSize`. */
function streamOf(totalBytes: number, chunkSize = 16 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= totalBytes) {
        controller.close();
        return;
      }
      const size = Math.min(chunkSize, totalBytes - sent);
      controller.enqueue(new Uint8Array(size).fill(0x61));
      sent += size;
    },
  });
}

describe("readLimitedBody", () => {
  let harness: Harness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  it("returns the exact bytes of a body within the limit", async () => {
    harness = await startServer(1000);
    const body = Buffer.from([0x00, 0xff, 0x7b, ...Buffer.from("héllo")]);
    const res = await fetch(harness.url, { method: "POST", body });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { length: body.length, sha256: sha256(body) });
  });

  it("accepts a body of exactly the limit, with or without Content-Length", async () => {
    harness = await startServer(1000);
    const body = Buffer.alloc(1000, 0x62);
    const declared = await fetch(harness.url, { method: "PUT", body });
    assert.equal(declared.status, 200);
    const streamed = await fetch(harness.url, { method: "POST", body: streamOf(1000, 300), duplex: "half" });
    assert.equal(streamed.status, 200);
    assert.equal(((await streamed.json()) as { length: number }).length, 1000);
    assert.deepEqual(harness.framing, [
      { contentLength: "1000", transferEncoding: undefined },
      { contentLength: undefined, transferEncoding: "chunked" },
    ]);
  });

  it("answers 413 M_TOO_LARGE for a Content-Length over the limit", async () => {
    harness = await startServer(1000);
    const res = await fetch(harness.url, { method: "POST", body: Buffer.alloc(1001) });
    assert.equal(res.status, 413);
    assert.deepEqual(await res.json(), {
      errcode: "M_TOO_LARGE",
      error: "Request body is larger than the limit of 1000 bytes",
    });
  });

  it("refuses by Content-Length before reading the body", async () => {
    harness = await startServer(1000);
    const { port } = harness.server.address() as AddressInfo;
    // Declares 50 MB, sends 10 bytes and never finishes: only an early check can answer.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/",
        headers: { "content-length": 50e6 },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on("error", reject);
      req.write(Buffer.alloc(10));
    });
    assert.equal(status, 413);
  });

  it("answers 413 once a body without Content-Length streams past the limit", async () => {
    harness = await startServer(64 * 1024);
    const res = await fetch(harness.url, {
      method: "POST",
      body: streamOf(64 * 1024 + 1, 8 * 1024),
      duplex: "half",
    });
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { errcode: string }).errcode, "M_TOO_LARGE");
    assert.deepEqual(harness.framing, [{ contentLength: undefined, transferEncoding: "chunked" }]);
  });

  it("defaults to a 1 MiB limit", async () => {
    assert.equal(DEFAULT_WEBHOOK_BODY_LIMIT_BYTES, 1024 * 1024);
    harness = await startServer();
    const atLimit = await fetch(harness.url, { method: "POST", body: Buffer.alloc(1024 * 1024) });
    assert.equal(atLimit.status, 200);
    const over = await fetch(harness.url, { method: "POST", body: Buffer.alloc(1024 * 1024 + 1) });
    assert.equal(over.status, 413);
  });

  it("refuses compressed bodies with 415", async () => {
    harness = await startServer(1000);
    const res = await fetch(harness.url, {
      method: "POST",
      headers: { "content-encoding": "gzip" },
      body: Buffer.from([0x1f, 0x8b]),
    });
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as { errcode: string }).errcode, "TRESTLE_UNSUPPORTED_MEDIA_TYPE");
    const identity = await fetch(harness.url, {
      method: "POST",
      headers: { "content-encoding": "identity" },
      body: "x",
    });
    assert.equal(identity.status, 200);
  });

  it("maps a body shorter than its Content-Length to 400", async () => {
    const req = Object.assign(new PassThrough(), { headers: { "content-length": "10" } });
    const reading = readLimitedBody(req as unknown as IncomingMessage, 100);
    req.end(Buffer.alloc(5));
    await assert.rejects(
      reading,
      (err: unknown) => err instanceof IncompleteBodyError && err.httpStatus === 400,
    );
  });

  it("maps a client that went away to 400", async () => {
    const req = Object.assign(new PassThrough(), { headers: {} });
    const reading = readLimitedBody(req as unknown as IncomingMessage, 100);
    req.write(Buffer.alloc(5));
    req.emit("aborted");
    await assert.rejects(
      reading,
      (err: unknown) => err instanceof IncompleteBodyError && /closed the request/.test(err.message),
    );
  });
});
