import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import {
  type ClientEvent,
  type MatrixTestClient,
  SERVER_NAME,
  useHarness,
} from "../../../../test/harness/index.js";
import {
  commandReply,
  createHookByCommand,
  roomWithBot,
  startWebhooksStack,
  type WebhooksStack,
} from "./stack.js";

/**
 * The delivery queue's promise, checked from outside: once a webhook got its 202 it reaches the
 * room exactly once and in order, whether the homeserver goes away for a while or the bridge is
 * SIGKILLed with messages still queued.
 *
 * What the room holds is read with /messages (the room's own timeline order), not /sync: an
 * incremental sync without a filter returns at most 10 events per room and would hide gaps or
 * duplicates in a burst of 50.
 */
describe("e2e: trestle-webhooks delivery through homeserver outages and bridge crashes", () => {
  const harness = useHarness();
  let stack: WebhooksStack;
  let alice: MatrixTestClient;
  let roomId: string;
  const urls = new Map<string, string>();

  const ghost = (hook: string) => `@_webhook_${hook}:${SERVER_NAME}`;

  /** The bodies of every message the hook's ghost has in the room, oldest first. */
  async function bodiesFrom(hook: string): Promise<string[]> {
    const events: ClientEvent[] = [];
    let from: string | undefined;
    for (;;) {
      const params = new URLSearchParams({ dir: "b", limit: "200" });
      if (from) params.set("from", from);
      const page = await alice.request<{ chunk: ClientEvent[]; end?: string }>(
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?${params}`,
      );
      events.push(...page.chunk);
      if (!page.end || page.chunk.length === 0) break;
      from = page.end;
    }
    return events
      .reverse()
      .filter((e) => e.type === "m.room.message" && e.sender === ghost(hook))
      .map((e) => String(e.content.body));
  }

  /** Polls the room until the hook's messages satisfy `done`; returns them. */
  async function waitForBodies(
    hook: string,
    done: (bodies: string[]) => boolean,
    timeoutMs: number,
  ): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const bodies = await bodiesFrom(hook);
      if (done(bodies)) return bodies;
      if (Date.now() > deadline) {
        assert.fail(
          `${hook}: after ${timeoutMs} ms the room holds ${bodies.length} messages: ${bodies.join(" | ")}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /**
   * POSTs `text` messages one after another (their order is the order of the 202s) and checks
   * each is acknowledged at once: the ack must not wait for the homeserver.
   */
  async function postAll(hook: string, texts: string[]): Promise<void> {
    const url = urls.get(hook);
    assert.ok(url, `no hook ${hook}`);
    for (const text of texts) {
      const started = Date.now();
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text }),
      });
      const answer = await res.text();
      assert.equal(res.status, 202, `${text}: ${answer}`);
      assert.equal((JSON.parse(answer) as { status?: string }).status, "accepted", answer);
      assert.ok(Date.now() - started < 2_000, `${text} took ${Date.now() - started} ms to acknowledge`);
    }
  }

  /**
   * Waits for `expected` to arrive, then for one more message posted afterwards: deliveries go
   * out in order, so once it is in, any duplicate of an earlier one would be in too. Then the
   * room must hold exactly `expected` and the sentinel, in that order.
   */
  async function assertDeliveredExactlyOnceInOrder(
    hook: string,
    expected: string[],
    timeoutMs: number,
  ): Promise<void> {
    await waitForBodies(hook, (bodies) => bodies.length >= expected.length, timeoutMs);
    const sentinel = `${hook}: nothing after this`;
    await postAll(hook, [sentinel]);
    const bodies = await waitForBodies(hook, (b) => b.includes(sentinel), 30_000);
    assert.deepEqual(bodies, [...expected, sentinel]);
  }

  /** The first bridge log record past `from` that `match` accepts, waiting for it to be written. */
  async function waitForLogRecord(
    match: (record: Record<string, unknown>) => boolean,
    from: number,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await stack.bridge.logRecords()).slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) assert.fail(`no such bridge log record within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const numbered = (prefix: string, from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `${prefix} ${from + i}`);

  before(async function () {
    stack = await startWebhooksStack(this, harness);
    alice = await harness.user(stack.hs, "alice");
    roomId = await roomWithBot(alice);
    for (const name of ["outage", "crash", "sigterm", "resume", "banned"]) {
      urls.set(name, await createHookByCommand(alice, roomId, name));
    }
  });

  afterEach(async () => {
    // A failed test must not leave the next one without a homeserver or a bridge.
    if (!stack.hs.running) await stack.hs.startProcess();
    if (!stack.bridge.running) await stack.bridge.start();
  });

  it("homeserver down while 50 webhooks arrive: all 202 at once, then all delivered once, in order, after it returns", async function () {
    this.timeout(120_000);
    const texts = numbered("outage", 1, 50);

    const logStart = (await stack.bridge.logRecords()).length;
    await stack.hs.stop();
    assert.equal(stack.hs.running, false);
    await postAll("outage", texts);
    // Back as soon as the queue itself has failed an attempt (the HTTP client's own retries are
    // used up) and scheduled a retry: the outage is long enough to go through the queue's
    // backoff, and short enough that it has not grown towards its 60 s cap.
    const failure = await waitForLogRecord(
      (r) => r.msg === "webhook delivery failed; retrying" && r.kind === "transient",
      logStart,
      30_000,
    );
    assert.match(String(failure.reason), /could not be reached|ECONNREFUSED/);
    await stack.hs.startProcess();

    await assertDeliveredExactlyOnceInOrder("outage", texts, 90_000);
  });

  it("bridge SIGKILLed with 20 acknowledged webhooks queued: after restart all arrive once, in order", async function () {
    this.timeout(120_000);
    const texts = numbered("crash", 1, 20);
    const logStart = (await stack.bridge.logRecords()).length;

    // Without a homeserver nothing can be delivered: all 20 are still queued when the kill lands.
    await stack.hs.stop();
    await postAll("crash", texts);
    await stack.bridge.kill();
    assert.equal(stack.bridge.running, false);
    await stack.hs.startProcess();
    await stack.bridge.start();

    await assertDeliveredExactlyOnceInOrder("crash", texts, 60_000);
    const resumed = (await stack.bridge.logRecords())
      .slice(logStart)
      .find((r) => r.msg === "resuming webhook deliveries from before the restart");
    assert.equal(resumed?.jobs, 20, "the restarted bridge did not resume the 20 queued webhooks");
  });

  it("SIGTERM with 20 webhooks queued and the homeserver down: a clean exit 0 in time, then all arrive once, in order", async function () {
    this.timeout(120_000);
    const texts = numbered("sigterm", 1, 20);
    await stack.hs.stop();
    await postAll("sigterm", texts);
    const started = performance.now();
    await stack.bridge.stop();
    const took = performance.now() - started;
    // Sends keep failing meanwhile; the stop must still end inside the CLI's 10 s, on its own.
    assert.equal(stack.bridge.exitCode, 0, await stack.bridge.tail(20));
    assert.ok(took < 10_000, `stopping took ${Math.round(took)} ms`);
    await stack.hs.startProcess();
    await stack.bridge.start();
    await assertDeliveredExactlyOnceInOrder("sigterm", texts, 60_000);
  });

  it("a webhook whose ghost is banned becomes a dead letter; the room's admin lists it and, after unbanning, retries it into the room", async function () {
    this.timeout(120_000);
    await postAll("banned", ["banned 1"]);
    await waitForBodies("banned", (bodies) => bodies.includes("banned 1"), 30_000);
    const ban = (action: "ban" | "unban") =>
      alice.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/${action}`, {
        user_id: ghost("banned"),
        reason: "e2e",
      });
    await ban("ban");
    // Posted with ?wait=true, which waits 10 s in this stack: about as long as five refused
    // attempts take with their jittered backoff (1 s, 2 s, 4 s, 8 s, each 0.5 to 1 times that).
    // Either way the sender hears 502 with the refusal and the message's id: "failed" if it was
    // given up on in time, else "pending" (still queued; not to be sent again).
    const waited = await fetch(`${urls.get("banned")}?wait=true`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "banned 2" }),
    });
    const answer = (await waited.json()) as { errcode?: string; error?: string; id?: string };
    assert.equal(waited.status, 502, JSON.stringify(answer));
    if (answer.errcode === "TRESTLE_DELIVERY_FAILED") {
      assert.match(String(answer.error), /^The message could not be delivered: .*403/);
    } else {
      assert.equal(answer.errcode, "TRESTLE_DELIVERY_PENDING", JSON.stringify(answer));
      assert.match(String(answer.error), /Not delivered within 10000 ms \(last attempt: .*403/);
    }
    assert.match(String(answer.id), /\S/);
    let listing = "";
    const deadline = Date.now() + 60_000;
    while (!/could not be delivered \(1\)/.test(listing)) {
      if (Date.now() > deadline) assert.fail(`no dead letter listed; last answer: ${listing}`);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      listing = String((await commandReply(alice, roomId, "!webhook failed")).content.body);
    }
    assert.match(listing, /from banned, received .* 5 attempts: the homeserver answered 403/);
    assert.ok(listing.includes(String(answer.id)), `the 502's id ${answer.id} is not listed: ${listing}`);
    assert.doesNotMatch(listing, /banned 2/, "the listing never shows the message itself");

    await ban("unban");
    const retried = await commandReply(alice, roomId, "!webhook retry all");
    assert.match(String(retried.content.body), /Queued again: 1 message\./);
    const bodies = await waitForBodies("banned", (b) => b.includes("banned 2"), 30_000);
    assert.deepEqual(bodies, ["banned 1", "banned 2"]);
    assert.match(
      String((await commandReply(alice, roomId, "!webhook failed")).content.body),
      /none is waiting/,
    );
  });

  it("order across the crash: webhooks accepted after the restart queue behind those resumed from before it", async function () {
    this.timeout(120_000);
    const beforeCrash = numbered("resume", 1, 10);
    const afterCrash = numbered("resume", 11, 20);

    await stack.hs.stop();
    await postAll("resume", beforeCrash);
    await stack.bridge.kill();
    // The bridge comes back while the homeserver is still away: the resumed ten cannot be sent
    // yet when the next ten arrive, so the order between them is the queue's to keep.
    await stack.bridge.start();
    await postAll("resume", afterCrash);
    await stack.hs.startProcess();

    await assertDeliveredExactlyOnceInOrder("resume", [...beforeCrash, ...afterCrash], 90_000);
  });
});
