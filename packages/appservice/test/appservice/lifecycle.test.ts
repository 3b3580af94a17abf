import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { collectDefaultMetrics, Registry } from "prom-client";
import { Appservice, type AppserviceOptions } from "../../src/appservice/appservice.js";
import { silentLogger } from "../../src/logging.js";
import type { MatrixEvent } from "../../src/transactions/types.js";
import { roomEvent, until } from "../transactions/helpers.js";

const HS_TOKEN = "hs-token-for-lifecycle-tests";

describe("Appservice start and stop", () => {
  let dataDir: string;
  const running: Appservice[] = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "trestle-lifecycle-"));
  });
  afterEach(async () => {
    for (const appservice of running.splice(0)) await appservice.stop(500).catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  });

  function appservice(
    onEvent: (event: MatrixEvent) => Promise<void> | void,
    options: Partial<AppserviceOptions> = {},
  ) {
    const created = new Appservice({
      registration: {
        id: "lifecycle",
        url: "http://127.0.0.1:1",
        as_token: "as-token",
        hs_token: HS_TOKEN,
        sender_localpart: "bot",
        namespaces: { users: [], aliases: [], rooms: [] },
      },
      homeserver: { url: "http://127.0.0.1:1", domain: "test" },
      dataDir,
      logger: silentLogger(),
      pingOnStart: false,
      processMetrics: false,
      http: { port: 0 },
      hooks: { onEvent },
      ...options,
    });
    running.push(created);
    return created;
  }

  function put(as: Appservice, txnId: string, events: MatrixEvent[]): Promise<Response> {
    return fetch(`http://127.0.0.1:${as.port}/_matrix/app/v1/transactions/${txnId}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${HS_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ events }),
    });
  }

  it("stops within its budget despite a handler that never settles, keeping the rest for the next start", async () => {
    const first = appservice((event) =>
      event.room_id === "!stuck:test" ? new Promise(() => {}) : Promise.resolve(),
    );
    await first.start();
    const events = [
      roomEvent("$stuck-1", "!stuck:test"),
      roomEvent("$stuck-2", "!stuck:test"),
      roomEvent("$fine-1", "!fine:test"),
    ];
    assert.equal((await put(first, "t1", events)).status, 200);
    const started = performance.now();
    await first.stop(1_500);
    const took = performance.now() - started;
    assert.ok(took < 2_500, `stop took ${Math.round(took)} ms with a budget of 1,500`);

    const handled: string[] = [];
    const second = appservice(async (event) => {
      handled.push(event.event_id);
    });
    await second.start();
    await until(() => handled.includes("$stuck-2"), 5_000, "the stuck room's events after restart");
    // The event whose handler was running is handled again (at least once); the one queued behind it, once.
    assert.deepEqual(handled, ["$stuck-1", "$stuck-2"]);
  });

  it("acknowledges a transaction held back by back-pressure once stopping begins", async () => {
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const as = appservice(() => blocked, { maxPendingEvents: 1 });
    await as.start();
    const answer = put(as, "t1", [roomEvent("$a", "!a:test"), roomEvent("$b", "!a:test")]);
    // Two events queued, the limit is one: the 200 waits for the queue.
    const early = await Promise.race([
      answer.then(() => "answered"),
      new Promise((r) => setTimeout(() => r("waiting"), 300)),
    ]);
    assert.equal(early, "waiting");
    const stopping = as.stop(1_000);
    assert.equal((await answer).status, 200, "stored already, so acknowledged");
    release();
    await stopping;
  });

  it("keeps to its budget while a transaction waits on a sink that never answers", async () => {
    const as = appservice(async () => {}, {
      hooks: { onEvent: async () => {}, sink: { onToDevice: () => new Promise(() => {}) } },
    });
    await as.start();
    const body = JSON.stringify({
      events: [],
      to_device: [
        { type: "m.room_key", sender: "@a:test", to_user_id: "@b:test", to_device_id: "D", content: {} },
      ],
    });
    void fetch(`http://127.0.0.1:${as.port}/_matrix/app/v1/transactions/td1`, {
      method: "PUT",
      headers: { authorization: `Bearer ${HS_TOKEN}`, "content-type": "application/json" },
      body,
    }).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = performance.now();
    await as.stop(1_500);
    const took = performance.now() - started;
    assert.ok(took < 2_500, `stop took ${Math.round(took)} ms with a budget of 1,500`);
  });

  it("makes a second stop wait for the first, which finishes handling and recording the events", async () => {
    const handled: string[] = [];
    const first = appservice(async (event) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      handled.push(event.event_id);
    });
    await first.start();
    const events = Array.from({ length: 20 }, (_, i) => roomEvent(`$e${i}`, "!one:test"));
    assert.equal((await put(first, "t1", events)).status, 200);
    let firstDone = false;
    const a = first.stop(5_000).then(() => {
      firstDone = true;
    });
    await first.stop(5_000);
    assert.equal(firstDone, true, "the second stop resolved before the first had finished");
    await a;
    assert.equal(handled.length, 20);
    const again: string[] = [];
    const second = appservice(async (event) => {
      again.push(event.event_id);
    });
    await second.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(again, [], "events handled before the stop are not handled again");
  });

  it("stops what a start still under way opens", async () => {
    const as = appservice(async () => {});
    const starting = as.start();
    const stopping = as.stop(2_000);
    await Promise.allSettled([starting, stopping]);
    assert.equal(as.port, undefined, "no server left listening");
  });

  it("undoes its start when the port is taken, and closes the stores", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const as = appservice(async () => {}, { http: { port, bindAddress: "127.0.0.1" } });
      await assert.rejects(as.start(), /EADDRINUSE/);
      assert.throws(() => as.stores, /available after start/);
      // The journal was closed: another instance opens the same data directory and serves.
      const next = appservice(async () => {});
      await next.start();
      assert.equal((await put(next, "t1", [roomEvent("$x", "!x:test")])).status, 200);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("calls a synchronous onEvent in order per room, and a throwing one does not hold the room up", async () => {
    const seen: string[] = [];
    const as = appservice((event) => {
      seen.push(event.event_id);
      if (event.event_id === "$2") throw new Error("handler bug");
    });
    await as.start();
    const events = ["$1", "$2", "$3"].map((id) => roomEvent(id, "!sync:test"));
    assert.equal((await put(as, "t1", events)).status, 200);
    await until(() => seen.length === 3, 5_000, "all three handled");
    assert.deepEqual(seen, ["$1", "$2", "$3"]);
    const failures = await as.metrics.getSingleMetric("trestle_event_handler_failures_total")?.get();
    assert.equal(failures?.values.find((v) => v.labels.reason === "error")?.value, 1);
  });

  it("shares a registry that already holds the process metrics", async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const as = appservice(async () => {}, { metrics: registry, processMetrics: true });
    await as.start();
    const text = await registry.metrics();
    assert.match(text, /process_cpu_seconds_total/);
    assert.match(text, /trestle_appservice_transactions_total/);
  });
});
