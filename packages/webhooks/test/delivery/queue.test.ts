import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { MatrixApiError, silentLogger } from "@trestle/appservice";
import { Registry } from "prom-client";
import { DeliveryUnavailableError } from "../../src/delivery/errors.js";
import type { DeliveryRequest } from "../../src/delivery/job.js";
import { DeliveryQueue, type DeliveryTimers } from "../../src/delivery/queue.js";
import type { NedbHookStore } from "../../src/hooks/hook-store.js";
import type { HookRecord } from "../../src/hooks/model.js";
import { Renderer } from "../../src/rendering/renderer.js";
import { capturingLogger } from "../commands/helpers.js";
import {
  delay,
  eventually,
  FakePoster,
  forbidden,
  hookStore,
  makeHook,
  metricValue,
  ROOM_A,
  ROOM_B,
  refused,
  startQueue,
  unavailable,
} from "./helpers.js";

function request(hook: HookRecord, text: string, extra: Partial<DeliveryRequest> = {}): DeliveryRequest {
  return { hookId: hook.id, roomId: hook.roomId, payload: { text }, headers: {}, ...extra };
}

/** Runs retry timers at once, recording the delays asked for. */
function recordingTimers(): DeliveryTimers & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    setTimeout: (callback, ms) => {
      delays.push(ms);
      return setTimeout(callback, 0);
    },
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  };
}

describe("DeliveryQueue", () => {
  let hookA: HookRecord;
  let hookB: HookRecord;
  let hooks: NedbHookStore;
  const queues: DeliveryQueue[] = [];
  const dirs: string[] = [];

  async function started(options: Parameters<typeof startQueue>[1] = {}) {
    const result = await startQueue(hooks, options);
    queues.push(result.queue);
    return result;
  }

  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), "trestle-deliveries-"));
    dirs.push(dir);
    return dir;
  }

  beforeEach(async () => {
    hookA = makeHook({ roomId: ROOM_A, template: "{{text}}" });
    hookB = makeHook({ roomId: ROOM_B, template: "{{text}}" });
    hooks = await hookStore(hookA, hookB);
  });

  afterEach(async () => {
    for (const queue of queues.splice(0)) await queue.stop(100);
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  describe("delivering", () => {
    it("resolves enqueue with a job id, then done with the event id; posts as the hook with ts and a stable txn id", async () => {
      const { queue, poster, registry } = await started();
      const { jobId, done } = await queue.enqueue(request(hookA, "build passed", { receivedAt: 1234 }));
      assert.match(jobId, /^[\w-]{16}$/);
      const outcome = await done;
      assert.deepEqual(outcome, { status: "delivered", eventId: `$event-trestle-webhook-${jobId}` });
      const [post] = poster.posts;
      assert.equal(post?.hook.id, hookA.id);
      assert.equal(post?.message.body, "build passed");
      assert.equal(post?.message.msgtype, "m.notice");
      assert.equal(post?.ts, 1234);
      assert.equal(post?.txnId, `trestle-webhook-${jobId}`);
      assert.equal(queue.depth, 0);
      assert.equal(queue.describe(jobId), undefined);
      assert.equal(await metricValue(registry, "trestle_webhook_deliveries_accepted_total"), 1);
      assert.equal(await metricValue(registry, "trestle_webhook_deliveries_delivered_total"), 1);
      assert.equal(await metricValue(registry, "trestle_webhook_delivery_queue_depth"), 0);
      const latency = await registry.getSingleMetric("trestle_webhook_delivery_latency_seconds")?.get();
      assert.equal(
        latency?.values.find((v) => (v as { metricName?: string }).metricName?.endsWith("_count"))?.value,
        1,
      );
    });

    it("renders with the hook's msgtype and passes the hook name to templates", async () => {
      const hook = makeHook({ template: "{{@hook.name}}: {{text}}", msgtype: "m.text" });
      await hooks.put(hook);
      const { queue, poster } = await started();
      await (await queue.enqueue(request(hook, "hi"))).done;
      assert.equal(poster.posts[0]?.message.body, `${hook.name}: hi`);
      assert.equal(poster.posts[0]?.message.msgtype, "m.text");
    });

    it("a hook on the default template gets the built-in that fits the request", async () => {
      const hook = makeHook({ template: "generic" });
      await hooks.put(hook);
      const { queue, poster } = await started();
      const payload = { zen: "Keep it logically awesome.", hook_id: 1, repository: { full_name: "o/r" } };
      await (await queue.enqueue({ ...request(hook, ""), payload, headers: { "X-GitHub-Event": "ping" } }))
        .done;
      assert.doesNotMatch(poster.posts[0]?.message.body ?? "", /Received webhook data/);
    });

    it("keeps each room's order while rooms go in parallel", async () => {
      const poster = new FakePoster(async (req) => {
        await delay(req.hook.roomId === ROOM_A ? 3 : 1);
        return `$${req.message.body}`;
      });
      const { queue } = await started({ poster });
      const dones: Promise<unknown>[] = [];
      for (let i = 0; i < 8; i += 1) {
        dones.push((await queue.enqueue(request(hookA, `a${i}`))).done);
        dones.push((await queue.enqueue(request(hookB, `b${i}`))).done);
      }
      await Promise.all(dones);
      assert.deepEqual(
        poster.bodies(ROOM_A),
        Array.from({ length: 8 }, (_, i) => `a${i}`),
      );
      assert.deepEqual(
        poster.bodies(ROOM_B),
        Array.from({ length: 8 }, (_, i) => `b${i}`),
      );
      assert.equal(poster.maxInFlight, 2, "one send per room, both rooms at once");
    });

    it("works on at most roomConcurrency rooms at once", async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const poster = new FakePoster(async (req) => {
        await gate;
        return `$${req.txnId}`;
      });
      const { queue } = await started({ poster, roomConcurrency: 2 });
      const dones: Promise<unknown>[] = [];
      for (let room = 0; room < 5; room += 1) {
        const hook = makeHook({ roomId: `!room${room}:example.org`, template: "{{text}}" });
        await hooks.put(hook);
        dones.push((await queue.enqueue(request(hook, `r${room}`))).done);
      }
      await eventually(() => poster.inFlight === 2);
      await delay(20);
      assert.equal(poster.inFlight, 2, "never more than roomConcurrency at once");
      assert.equal(queue.depth, 5);
      release();
      await Promise.all(dones);
      assert.equal(poster.maxInFlight, 2);
      assert.equal(poster.posts.length, 5);
    });

    it("skips a rendering that is empty, and drops a job whose hook was removed meanwhile", async () => {
      const filtering = makeHook({ template: '{{#if (eq action "opened")}}opened{{/if}}' });
      await hooks.put(filtering);
      const { queue, poster, registry } = await started();
      const skipped = await (
        await queue.enqueue({ ...request(filtering, ""), payload: { action: "closed" } })
      ).done;
      assert.equal(skipped.status, "skipped");

      const doomed = makeHook({ roomId: ROOM_B });
      const enqueued = await queue.enqueue(request(doomed, "never"));
      const dropped = await enqueued.done;
      assert.equal(dropped.status, "failed");
      assert.match(dropped.status === "failed" ? dropped.error : "", /removed/);
      assert.deepEqual(poster.posts, []);
      assert.equal(
        await metricValue(registry, "trestle_webhook_deliveries_skipped_total", { reason: "empty" }),
        1,
      );
      assert.equal(
        await metricValue(registry, "trestle_webhook_deliveries_skipped_total", { reason: "hook_removed" }),
        1,
      );
      assert.deepEqual(await queue.listFailed(), [], "a removed hook's job is not a dead letter");
    });

    it("refuses work before start, after stop, and beyond maxDepth with a 503", async () => {
      const { queue } = await started({ maxDepth: 1, poster: new FakePoster(() => new Promise(() => {})) });
      await queue.enqueue(request(hookA, "one"));
      await assert.rejects(queue.enqueue(request(hookA, "two")), (err: unknown) => {
        assert.ok(err instanceof DeliveryUnavailableError);
        assert.equal(err.httpStatus, 503);
        assert.match(err.message, /Too many webhooks/);
        return true;
      });
      await queue.stop(10);
      await assert.rejects(queue.enqueue(request(hookA, "three")), DeliveryUnavailableError);
      const unstarted = new DeliveryQueue({
        inMemory: true,
        hooks,
        renderer: new Renderer({ logger: silentLogger() }),
        poster: new FakePoster(),
        logger: silentLogger(),
        metrics: new Registry(),
      });
      await assert.rejects(unstarted.enqueue(request(hookA, "x")), DeliveryUnavailableError);
    });
  });

  describe("retrying", () => {
    it("retries transient failures with capped exponential backoff, blocking only that room", async () => {
      const timers = recordingTimers();
      let failures = 0;
      const poster = new FakePoster((req) => {
        if (req.hook.roomId === ROOM_A && failures < 5) {
          failures += 1;
          throw failures % 2 ? unavailable() : refused();
        }
        return `$${req.message.body}`;
      });
      const { queue, registry } = await started({
        poster,
        timers,
        random: () => 0,
        retry: { baseDelayMs: 100, maxDelayMs: 250 },
      });
      const first = await queue.enqueue(request(hookA, "a1"));
      const second = await queue.enqueue(request(hookA, "a2"));
      const other = await queue.enqueue(request(hookB, "b1"));
      assert.equal((await other.done).status, "delivered");
      assert.deepEqual(await first.done, { status: "delivered", eventId: "$a1" });
      await second.done;
      assert.deepEqual(poster.bodies(ROOM_A), ["a1", "a2"]);
      // Equal jitter with random() = 0: half of 100, 200, 250 (capped), 250, 250.
      assert.deepEqual(timers.delays, [50, 100, 125, 125, 125]);
      assert.equal(
        await metricValue(registry, "trestle_webhook_delivery_retries_total", { kind: "transient" }),
        5,
      );
    });

    it("keeps retrying transient failures beyond the permanent-failure limit", async () => {
      const poster = new FakePoster((_req, call) => {
        if (call <= 12) throw unavailable();
        return "$finally";
      });
      const { queue } = await started({
        poster,
        retry: { baseDelayMs: 1, maxDelayMs: 1, maxPermanentAttempts: 2 },
      });
      const { jobId, done } = await queue.enqueue(request(hookA, "stubborn"));
      await eventually(() => (queue.describe(jobId)?.attempts ?? 0) >= 3);
      assert.match(queue.describe(jobId)?.lastError ?? "", /503 M_UNKNOWN/);
      assert.deepEqual(await done, { status: "delivered", eventId: "$finally" });
    });

    it("waits as long as a 429 asks, within maxRetryAfterMs", async () => {
      const timers = recordingTimers();
      const limited = (ms: number) =>
        new MatrixApiError(
          429,
          "M_LIMIT_EXCEEDED",
          "Too many requests",
          { method: "PUT", path: "/send" },
          {},
          ms,
        );
      const poster = new FakePoster((_req, call) => {
        if (call === 1) throw limited(1_234);
        if (call === 2) throw limited(999_999);
        return "$ok";
      });
      const { queue } = await started({ poster, timers, retry: { maxRetryAfterMs: 30_000 } });
      await (await queue.enqueue(request(hookA, "x"))).done;
      assert.deepEqual(timers.delays, [1_234, 30_000]);
    });

    it("dead-letters after repeated permanent failures, keeps the reason, and moves on to the room's next job", async () => {
      const poster = new FakePoster((req) => {
        if (req.message.body === "kicked") throw forbidden();
        return "$next";
      });
      const { queue, registry } = await started({ poster, retry: { maxPermanentAttempts: 3 } });
      const doomed = await queue.enqueue(request(hookA, "kicked"));
      const next = await queue.enqueue(request(hookA, "after"));
      const outcome = await doomed.done;
      assert.equal(outcome.status, "failed");
      assert.match(
        outcome.status === "failed" ? outcome.error : "",
        /403 M_FORBIDDEN: You are not in this room/,
      );
      assert.deepEqual(await next.done, { status: "delivered", eventId: "$next" });
      const [failed, ...rest] = await queue.listFailed();
      assert.deepEqual(rest, []);
      assert.equal(failed?.id, doomed.jobId);
      assert.equal(failed?.failure.attempts, 3);
      assert.match(failed?.failure.reason ?? "", /M_FORBIDDEN/);
      assert.deepEqual(failed?.payload, { text: "kicked" });
      assert.equal(await metricValue(registry, "trestle_webhook_deliveries_failed_total"), 1);
      assert.equal(
        await metricValue(registry, "trestle_webhook_delivery_retries_total", { kind: "permanent" }),
        2,
      );

      poster.handler = () => "$retried";
      assert.equal(await queue.retryFailed(doomed.jobId), true);
      await eventually(() => poster.bodies().includes("kicked"));
      assert.deepEqual(await queue.listFailed(), []);
    });

    it("keeps a room's most recently failed dead letters up to the cap, discarding, logging and counting the rest", async () => {
      const poster = new FakePoster((req) => {
        if (req.message.body.startsWith("kicked")) throw forbidden();
        return "$ok";
      });
      const { logger, text } = capturingLogger();
      let clock = 1_700_000_000_000;
      const { queue, registry } = await started({
        poster,
        logger,
        now: () => (clock += 1_000),
        retry: { maxPermanentAttempts: 1 },
        maxDeadLettersPerRoom: 2,
      });
      const first = await queue.enqueue(request(hookA, "kicked 1"));
      await first.done;
      await (await queue.enqueue(request(hookA, "kicked 2"))).done;
      // Retried and failed again: now the most recent failure, though received first.
      assert.equal(await queue.retryFailed(first.jobId), true);
      for (const deadline = Date.now() + 2_000; (await queue.listFailed()).length < 2; ) {
        assert.ok(Date.now() < deadline, "the retried message did not fail again");
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await (await queue.enqueue(request(hookA, "kicked 3"))).done;
      const letters = await queue.listFailed();
      assert.deepEqual(
        letters.map((letter) => letter.payload).sort(),
        [{ text: "kicked 1" }, { text: "kicked 3" }].sort(),
      );
      assert.equal(await metricValue(registry, "trestle_webhook_dead_letters_discarded_total"), 1);
      assert.equal(await metricValue(registry, "trestle_webhook_deliveries_failed_total"), 4);
      const warning = text()
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => String(line.msg).startsWith("too many undelivered webhooks"));
      assert.equal(warning?.roomId, hookA.roomId);
      assert.equal(warning?.hook, hookA.id);
      assert.ok(typeof warning?.job === "string" && !letters.some((letter) => letter.id === warning.job));
    });

    it("treats errors of its own code as permanent rather than looping forever", async () => {
      const poster = new FakePoster(() => {
        throw new TypeError("cannot read properties of undefined");
      });
      const { queue } = await started({ poster, retry: { maxPermanentAttempts: 2 } });
      const outcome = await (await queue.enqueue(request(hookA, "x"))).done;
      assert.deepEqual(outcome, {
        status: "failed",
        error: "internal error: cannot read properties of undefined",
      });
    });
  });

  describe("template errors", () => {
    it("posts the fallback rendering and tells the room once per hook and error per interval", async () => {
      let clock = 1_000_000;
      const broken = makeHook({ template: "Build {{#each}}x{{/each}}" });
      await hooks.put(broken);
      const { queue, poster, registry } = await started({ now: () => clock });
      const send = async () => (await queue.enqueue(request(broken, "Deploy finished"))).done;

      assert.equal((await send()).status, "delivered");
      assert.equal(poster.posts[0]?.message.body, "Deploy finished", "the generic template's rendering");
      assert.equal(poster.notices.length, 1);
      assert.equal(poster.notices[0]?.roomId, ROOM_A);
      assert.match(poster.notices[0]?.body ?? "", new RegExp(`Webhook "${broken.name}"`));
      assert.match(poster.notices[0]?.body ?? "", /Must pass iterator to #each/);
      assert.match(poster.notices[0]?.body ?? "", /generic template/);

      clock += 9 * 60_000;
      await send();
      assert.equal(poster.notices.length, 1, "not again within 10 minutes");
      clock += 2 * 60_000;
      await send();
      assert.equal(poster.notices.length, 2);
      assert.equal(poster.posts.length, 3, "no webhook was dropped");
      assert.equal(await metricValue(registry, "trestle_webhook_template_errors_total"), 3);
    });

    it("a notice that cannot be sent does not fail the delivery", async () => {
      const broken = makeHook({ template: "{{#if}}x{{/if}}" });
      await hooks.put(broken);
      const poster = new FakePoster();
      poster.notice = async () => {
        throw forbidden();
      };
      const { queue } = await started({ poster });
      assert.equal((await (await queue.enqueue(request(broken, "x"))).done).status, "delivered");
    });
  });

  describe("persistence", () => {
    it("resumes pending jobs in order after a restart, continuing each room's numbering", async () => {
      const dataDir = await tempDir();
      const down = new FakePoster(() => {
        throw refused();
      });
      const first = await startQueue(hooks, { dataDir, poster: down });
      const outcomes: Promise<unknown>[] = [];
      for (const text of ["a1", "a2", "a3"])
        outcomes.push((await first.queue.enqueue(request(hookA, text))).done);
      for (const text of ["b1", "b2"]) outcomes.push((await first.queue.enqueue(request(hookB, text))).done);
      await first.queue.stop(100);
      for (const outcome of await Promise.all(outcomes))
        assert.equal((outcome as { status: string }).status, "pending");

      const second = await started({ dataDir });
      await eventually(() => second.poster.posts.length === 5);
      assert.deepEqual(second.poster.bodies(ROOM_A), ["a1", "a2", "a3"]);
      assert.deepEqual(second.poster.bodies(ROOM_B), ["b1", "b2"]);
      await (await second.queue.enqueue(request(hookA, "a4"))).done;
      const lines = (await readFile(path.join(dataDir, "deliveries.journal"), "utf8")).split("\n");
      const a4 = JSON.parse(lines.find((line) => line.includes('"text":"a4"')) ?? "{}");
      assert.equal(a4.job?.seq, 4);
      await second.queue.stop();

      const third = await started({ dataDir });
      assert.equal(third.queue.depth, 0, "delivered jobs are gone from the store");
    });

    /** A queue on a fresh data directory whose one job was dead-lettered at its first attempt. */
    async function withDeadLetter(text: string) {
      const dataDir = await tempDir();
      const kicked = new FakePoster(() => {
        throw forbidden();
      });
      const first = await startQueue(hooks, { dataDir, poster: kicked, retry: { maxPermanentAttempts: 1 } });
      const { jobId, done } = await first.queue.enqueue(request(hookA, text));
      await done;
      return { dataDir, first, jobId };
    }

    it("keeps dead letters across restarts without resending them", async () => {
      const { dataDir, first, jobId } = await withDeadLetter("lost?");
      await first.queue.stop();
      const second = await started({ dataDir });
      assert.equal(second.queue.depth, 0);
      assert.deepEqual(
        (await second.queue.listFailed()).map((f) => f.id),
        [jobId],
      );
      assert.deepEqual(second.poster.posts, []);
    });

    it("discards a dead letter for good: gone after a restart, never sent", async () => {
      const { dataDir, first, jobId } = await withDeadLetter("give up");
      assert.equal(await first.queue.discardFailed("no-such-job"), false);
      assert.equal(await first.queue.discardFailed(jobId), true);
      assert.equal(await first.queue.discardFailed(jobId), false, "only once");
      assert.deepEqual(await first.queue.listFailed(), []);
      await first.queue.stop();
      const second = await started({ dataDir });
      assert.deepEqual(await second.queue.listFailed(), []);
      assert.equal(second.queue.depth, 0);
      assert.deepEqual(second.poster.posts, []);
    });

    it("stores template-safe headers only: no credentials", async () => {
      const dataDir = await tempDir();
      const { queue } = await started({ dataDir, poster: new FakePoster(() => new Promise(() => {})) });
      await queue.enqueue(
        request(hookA, "x", {
          headers: {
            authorization: "Bearer top-secret-token",
            "x-hub-signature-256": "sha256=signature-value",
            "x-gitlab-token": "gitlab-token-value",
            "x-forwarded-for": "10.1.2.3",
            "x-github-event": "push",
          },
        }),
      );
      const file = await readFile(path.join(dataDir, "deliveries.journal"), "utf8");
      assert.match(file, /x-github-event/);
      for (const secret of ["top-secret-token", "signature-value", "gitlab-token-value", "10.1.2.3"]) {
        assert.ok(!file.includes(secret), `${secret} must not be stored`);
      }
    });

    it("a job whose enqueue resolved survives the process being killed (SIGKILL)", async function () {
      this.timeout(30_000);
      const dataDir = await tempDir();
      const script = fileURLToPath(new URL("./fixtures/enqueue-and-die.ts", import.meta.url));
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ["--import", "tsx", "--conditions=trestle-src", script, dataDir, hookA.id, ROOM_A],
        { cwd: path.resolve(fileURLToPath(import.meta.url), "../../../../..") },
      ).catch((err: { stdout?: string; signal?: string }) => {
        assert.equal(err.signal, "SIGKILL");
        return { stdout: err.stdout ?? "" };
      });
      const jobId = stdout.trim();
      assert.match(jobId, /^[\w-]{16}$/);
      const { queue, poster } = await started({ dataDir });
      await eventually(() => poster.posts.length === 1);
      assert.equal(poster.posts[0]?.txnId, `trestle-webhook-${jobId}`);
      assert.equal(poster.posts[0]?.message.body, "written before the kill");
      await eventually(() => queue.depth === 0);
    });

    it("stop() lets the send in progress finish, within its timeout", async () => {
      const poster = new FakePoster(async () => {
        await delay(30);
        return "$slow";
      });
      const { queue } = await started({ poster });
      const { done } = await queue.enqueue(request(hookA, "slow"));
      const queued = await queue.enqueue(request(hookA, "queued"));
      await eventually(() => poster.inFlight === 1);
      await queue.stop(1_000);
      assert.deepEqual(await done, { status: "delivered", eventId: "$slow" });
      assert.equal((await queued.done).status, "pending");
      assert.deepEqual(poster.bodies(), ["slow"]);
    });

    it("stop() gives up on a hung send after its timeout", async () => {
      const poster = new FakePoster(() => new Promise(() => {}));
      const { queue } = await started({ poster });
      const { done } = await queue.enqueue(request(hookA, "hung"));
      await eventually(() => poster.inFlight === 1);
      const started_ = Date.now();
      await queue.stop(50);
      const waited = Date.now() - started_;
      assert.ok(waited >= 45 && waited < 1_000, `stop waited ${waited} ms for the hung send`);
      assert.equal((await done).status, "pending");
    });
  });
});
