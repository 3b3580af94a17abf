import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AvatarFetchError, createHttpAvatarFetcher } from "../../src/delivery/avatar-fetcher.js";

/** 1×1 transparent PNG. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

describe("createHttpAvatarFetcher", () => {
  let server: Server;
  let base: string;

  before(async () => {
    server = createServer((req, res) => {
      switch (req.url) {
        case "/avatar.png":
          res.writeHead(200, { "content-type": "image/png", "content-length": PNG.length });
          return res.end(PNG);
        case "/moved":
          res.writeHead(302, { location: "/avatar.png" });
          return res.end();
        case "/loop":
          res.writeHead(302, { location: "/loop" });
          return res.end();
        case "/vector.svg":
          res.writeHead(200, { "content-type": "image/svg+xml" });
          return res.end("<svg xmlns='http://www.w3.org/2000/svg'/>");
        case "/page":
          res.writeHead(200, { "content-type": "text/html" });
          return res.end("<html></html>");
        case "/huge":
          // No content-length: the size is only found out while reading.
          res.writeHead(200, { "content-type": "image/png" });
          return res.end(Buffer.alloc(64 * 1024));
        default:
          res.writeHead(404);
          return res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const local = createHttpAvatarFetcher({ allowPrivateAddresses: true, maxBytes: 16 * 1024 });

  it("fetches an image with its content type, following a redirect", async () => {
    const direct = await local(`${base}/avatar.png`);
    assert.equal(direct.contentType, "image/png");
    assert.deepEqual(Buffer.from(direct.data), PNG);
    const redirected = await local(`${base}/moved`);
    assert.deepEqual(Buffer.from(redirected.data), PNG);
  });

  it("refuses loopback and private addresses unless allowed, by name and by literal", async () => {
    const publicOnly = createHttpAvatarFetcher();
    for (const url of [
      `${base}/avatar.png`,
      `http://localhost:${new URL(base).port}/avatar.png`,
      "http://10.1.2.3/x.png",
      "http://169.254.169.254/latest/meta-data",
      "http://[::1]/x.png",
    ]) {
      await assert.rejects(publicOnly(url), /not a public address/, url);
    }
  });

  it("refuses what is not an image, too large, a redirect loop, an error status or another scheme", async () => {
    await assert.rejects(local(`${base}/page`), /not an image \(text\/html\)/);
    await assert.rejects(local(`${base}/vector.svg`), /not an image \(image\/svg\+xml\)/);
    await assert.rejects(local(`${base}/huge`), /larger than 16384 bytes/);
    await assert.rejects(local(`${base}/loop`), /more than 3 redirects/);
    await assert.rejects(local(`${base}/missing.png`), /answered 404/);
    await assert.rejects(local("file:///etc/passwd"), AvatarFetchError);
    await assert.rejects(local("not a url"), /not a URL/);
  });

  it("gives up after its timeout", async () => {
    const hanging = createServer(() => {});
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    try {
      const port = (hanging.address() as AddressInfo).port;
      const quick = createHttpAvatarFetcher({ allowPrivateAddresses: true, timeoutMs: 200 });
      const started = Date.now();
      await assert.rejects(quick(`http://127.0.0.1:${port}/slow.png`));
      assert.ok(Date.now() - started < 2_000);
    } finally {
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
  });
});
