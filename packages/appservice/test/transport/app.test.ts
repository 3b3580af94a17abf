import assert from "node:assert/strict";
import { ForbiddenError } from "../../src/errors.js";
import type { ParsedTransaction } from "../../src/transactions/types.js";
import { assertMatrixError, type Harness, startAppservice, statusAndBody } from "./helpers.js";

const TXN_PATH = "/_matrix/app/v1/transactions/42";

const message = {
  type: "m.room.message",
  event_id: "$e1",
  room_id: "!r:hs",
  sender: "@alice:hs",
  content: { body: "hello", msgtype: "m.text" },
  origin_server_ts: 1,
  unsigned: {},
};

describe("appservice HTTP API: transactions and errors", () => {
  let as: Harness;
  afterEach(() => as?.close());

  describe("transactions", () => {
    beforeEach(async () => {
      as = await startAppservice();
    });

    it("hands the parsed transaction to the handler and answers 200 {}", async () => {
      const body = {
        events: [message],
        ephemeral: [{ type: "m.typing", room_id: "!r:hs", content: { user_ids: [] } }],
        "org.matrix.msc3202.device_lists": { changed: ["@bob:hs"], left: [] },
      };
      const res = await as.request(TXN_PATH, { method: "PUT", body: JSON.stringify(body) });
      assert.deepEqual(await statusAndBody(res), [200, {}]);
      assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
      assert.equal(as.transactions.length, 1);
      const { txnId, txn } = as.transactions[0]!;
      assert.equal(txnId, "42");
      assert.deepEqual(txn.events, [message]);
      assert.equal(txn.ephemeral[0]?.type, "m.typing");
      assert.deepEqual(txn.deviceLists, { changed: ["@bob:hs"], left: [] });
    });

    it("serves the legacy /transactions path", async () => {
      const res = await as.request("/transactions/7", {
        method: "PUT",
        body: JSON.stringify({ events: [] }),
      });
      assert.equal(res.status, 200);
      assert.equal(as.transactions[0]?.txnId, "7");
    });

    it("still answers 200 when individual events are malformed, so Synapse moves on", async () => {
      const body = { events: [{ type: "m.room.message" }, message] };
      const res = await as.request(TXN_PATH, { method: "PUT", body: JSON.stringify(body) });
      assert.equal(res.status, 200);
      assert.equal(as.transactions[0]?.txn.dropped, 1);
      assert.equal(as.transactions[0]?.txn.events.length, 1);
      const warning = as.lines.find((l) => l.level === 40);
      assert.equal(warning?.txnId, "42");
    });

    it("answers 400 M_NOT_JSON for a body that is not JSON", async () => {
      const res = await as.request(TXN_PATH, { method: "PUT", body: "{events: [" });
      await assertMatrixError(res, 400, "M_NOT_JSON");
      assert.equal(as.transactions.length, 0);
    });

    it("answers 400 M_NOT_JSON for an empty body", async () => {
      const res = await as.request(TXN_PATH, { method: "PUT" });
      await assertMatrixError(res, 400, "M_NOT_JSON");
    });

    it("answers 400 M_BAD_JSON naming the field when events is not an array", async () => {
      const res = await as.request(TXN_PATH, { method: "PUT", body: JSON.stringify({ events: {} }) });
      const { error } = await assertMatrixError(res, 400, "M_BAD_JSON");
      assert.match(error, /events/);
    });

    it("answers 400 M_BAD_JSON when the body is not an object", async () => {
      await assertMatrixError(await as.request(TXN_PATH, { method: "PUT", body: "[]" }), 400, "M_BAD_JSON");
    });
  });

  describe("handler outcomes", () => {
    it("sends the 200 only once onTransaction has resolved", async () => {
      let release!: () => void;
      let settled = false;
      as = await startAppservice({
        handlers: { onTransaction: () => new Promise<void>((resolve) => (release = resolve)) },
      });
      const pending = as.request(TXN_PATH, { method: "PUT", body: "{}" }).then((res) => {
        settled = true;
        return res;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(settled, false);
      release();
      assert.equal((await pending).status, 200);
    });

    it("answers 500 M_UNKNOWN and logs an error when onTransaction throws", async () => {
      as = await startAppservice({
        handlers: {
          onTransaction: async () => {
            throw new Error("database is on fire");
          },
        },
      });
      const res = await as.request(TXN_PATH, { method: "PUT", body: "{}" });
      const { error } = await assertMatrixError(res, 500, "M_UNKNOWN");
      assert.doesNotMatch(error, /on fire/);
      const errors = as.lines.filter((l) => l.level === 50);
      assert.equal(errors.length, 1);
      assert.match(JSON.stringify(errors[0]), /database is on fire/);
    });

    it("hands the body's bytes on with the transaction, saying whether its events are as sent", async () => {
      const sources: unknown[] = [];
      as = await startAppservice({
        handlers: {
          onTransaction: async (_id, _txn, source) => {
            sources.push(
              source && {
                body: Buffer.from(source.body).toString("utf8"),
                eventsAsSent: source.eventsAsSent,
              },
            );
          },
        },
      });
      const asSent = JSON.stringify({ events: [message] });
      await as.request(TXN_PATH, { method: "PUT", body: asSent });
      const { unsigned: _, ...withoutUnsigned } = message;
      const filledIn = JSON.stringify({ events: [withoutUnsigned] });
      await as.request(TXN_PATH, { method: "PUT", body: filledIn });
      assert.deepEqual(sources, [
        { body: asSent, eventsAsSent: true },
        { body: filledIn, eventsAsSent: false },
      ]);
    });

    it("hands on the body without a leading byte-order mark", async () => {
      const bodies: string[] = [];
      as = await startAppservice({
        handlers: {
          onTransaction: async (_id, _txn, source) => {
            if (source) bodies.push(Buffer.from(source.body).toString("utf8"));
          },
        },
      });
      const text = JSON.stringify({ events: [message] });
      const res = await as.request(TXN_PATH, {
        method: "PUT",
        body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(bodies, [text]);
    });

    it("passes a MatrixError from a handler through", async () => {
      as = await startAppservice({
        handlers: {
          onTransaction: async (_id: string, _txn: ParsedTransaction) => {
            throw new ForbiddenError("not today");
          },
        },
      });
      const res = await as.request(TXN_PATH, { method: "PUT", body: "{}" });
      assert.deepEqual(await statusAndBody(res), [403, { errcode: "M_FORBIDDEN", error: "not today" }]);
    });
  });

  describe("body size", () => {
    beforeEach(async () => {
      as = await startAppservice({ maxBodyBytes: 1024 });
    });

    const oversized = JSON.stringify({ events: [{ ...message, content: { body: "x".repeat(2000) } }] });

    it("answers 413 M_TOO_LARGE from Content-Length, before reading, and closes the connection", async () => {
      const res = await as.request(TXN_PATH, { method: "PUT", body: oversized });
      await assertMatrixError(res, 413, "M_TOO_LARGE");
      assert.equal(res.headers.get("connection"), "close");
      assert.equal(as.transactions.length, 0);
    });

    it("answers 413 M_TOO_LARGE for a chunked body without Content-Length", async () => {
      const bytes = new TextEncoder().encode(oversized);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 256) controller.enqueue(bytes.slice(i, i + 256));
          controller.close();
        },
      });
      const res = await as.request(TXN_PATH, { method: "PUT", body: stream, duplex: "half" } as RequestInit);
      await assertMatrixError(res, 413, "M_TOO_LARGE");
      assert.equal(as.transactions.length, 0);
    });

    it("accepts a body just under the limit", async () => {
      const res = await as.request(TXN_PATH, { method: "PUT", body: JSON.stringify({ events: [message] }) });
      assert.equal(res.status, 200);
    });
  });

  describe("unknown routes and methods", () => {
    beforeEach(async () => {
      as = await startAppservice();
    });

    it("answers 404 M_UNRECOGNIZED for an unknown appservice endpoint", async () => {
      for (const path of [
        "/_matrix/app/v1/nonexistent",
        "/_matrix/app/unstable/org.matrix.msc3983/keys/claim",
        "/somewhere/else",
      ]) {
        await assertMatrixError(
          await as.request(path, { method: "POST", body: "{}" }),
          404,
          "M_UNRECOGNIZED",
          path,
        );
      }
    });

    it("answers 405 M_UNRECOGNIZED for a known path with another method, with Allow", async () => {
      const res = await as.request(TXN_PATH, { method: "GET" });
      await assertMatrixError(res, 405, "M_UNRECOGNIZED");
      assert.equal(res.headers.get("allow"), "PUT");
      const users = await as.request("/_matrix/app/v1/users/%40a%3Ahs", { method: "DELETE" });
      assert.equal(users.status, 405);
    });

    it("leaves the legacy paths unserved when legacyRoutes is false", async () => {
      await as.close();
      as = await startAppservice({ legacyRoutes: false });
      for (const path of ["/users/%40a%3Ahs", "/_matrix/app/unstable/thirdparty/protocol/irc"]) {
        await assertMatrixError(await as.request(path), 404, "M_UNRECOGNIZED", path);
      }
      const put = await as.request("/transactions/1", { method: "PUT", body: "{}" });
      assert.equal(put.status, 404);
      assert.equal(as.transactions.length, 0);
    });
  });
});
