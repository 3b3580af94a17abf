import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse, stringify } from "yaml";
import {
  BridgeProcess,
  freePort,
  type MatrixTestClient,
  type RegistrationFile,
  SERVER_NAME,
  type SynapseInstance,
  useHarness,
  waitUntil,
} from "../../../../test/harness/index.js";
import { RUN_DIR } from "../../../../test/harness/paths.js";

const ECHO_MAIN = "packages/appservice/examples/echo/main.ts";

/**
 * The example echo bridge as a user meets it: its own process started from its CLI,
 * registered with a real Synapse, talking to real users.
 */
describe("e2e: the echo example bridge on real Synapse", () => {
  const harness = useHarness();
  let hs: SynapseInstance;
  let alice: MatrixTestClient;
  let bridge: BridgeProcess;
  let dir: string;
  let configPath: string;
  let registrationPath: string;
  let port: number;
  let roomId: string;

  async function writeConfig(replyDelayMs: number, homeserverUrl: string): Promise<void> {
    const config = {
      homeserver: { url: homeserverUrl, domain: SERVER_NAME },
      appservice: { port, bindAddress: "127.0.0.1" },
      logging: { level: "debug" },
      dataDir: path.join(dir, "data"),
      metrics: { enabled: true },
      echo: { replyDelayMs },
    };
    await writeFile(configPath, stringify(config));
  }

  function echoesIn(
    room: string,
    seen: readonly { room_id?: string; sender: string; content: Record<string, unknown> }[],
  ) {
    return seen.filter((e) => e.room_id === room && e.sender === `@_echo_alice:${SERVER_NAME}`);
  }

  before(async function () {
    port = await freePort();
    dir = path.join(RUN_DIR, `echo-${port}`);
    await mkdir(dir, { recursive: true });
    configPath = path.join(dir, "config.yaml");
    registrationPath = path.join(dir, "registration.yaml");
    bridge = new BridgeProcess({
      name: "echo-bridge",
      script: ECHO_MAIN,
      args: ["-c", configPath, "-f", registrationPath],
      port,
    });
    harness.track(bridge);

    // The registration comes from the bridge's own CLI, as an admin would make it.
    await writeConfig(0, "http://127.0.0.1:1");
    const generate = new BridgeProcess({
      name: "echo-register",
      script: ECHO_MAIN,
      args: ["-c", configPath, "-f", registrationPath, "-r", "-u", `http://127.0.0.1:${port}`],
      port,
    });
    await generate.runToCompletion();
    const registration = parse(await readFile(registrationPath, "utf8")) as RegistrationFile;

    hs = await harness.synapse(this, { appservices: [registration] });
    await writeConfig(0, hs.baseUrl);
    await bridge.start();
    alice = await harness.user(hs, "alice");
  });

  it("pings the homeserver at start-up", async () => {
    // The bridge answers /health while its ping is still on the way back, so wait for the line.
    await waitUntil(
      "a successful ping in the bridge log",
      async () => (await bridge.logRecords()).some((r) => r.msg === "homeserver ping succeeded"),
      { timeoutMs: 10_000 },
    );
    const records = await bridge.logRecords();
    assert.ok(
      !records.some((r) => String(r.msg).startsWith("homeserver ping failed")),
      "a failed ping was logged too",
    );
  });

  it("answers a real user's message as a ghost, with the timestamp massaged", async () => {
    roomId = await alice.createRoom({ name: "echo test", preset: "private_chat" });
    await alice.invite(roomId, `@echobot:${SERVER_NAME}`);
    await alice.waitForEvent(
      (e) =>
        e.room_id === roomId &&
        e.type === "m.room.member" &&
        e.state_key === `@echobot:${SERVER_NAME}` &&
        e.content.membership === "join",
    );
    const sent = await alice.sendMessage(roomId, "hello echo");
    const original = await alice.waitForEvent((e) => e.event_id === sent);
    const echo = await alice.waitForEvent(
      (e) => e.room_id === roomId && e.type === "m.room.message" && e.content.body === "echo: hello echo",
    );
    assert.equal(echo.sender, `@_echo_alice:${SERVER_NAME}`);
    assert.equal(echo.content.msgtype, "m.notice");
    assert.equal(echo.origin_server_ts, original.origin_server_ts, "ts was not massaged to the original's");
  });

  it("creates a ghost when the homeserver queries an unknown user in its namespace", async () => {
    const ghost = `@_echo_zed:${SERVER_NAME}`;
    const room = await alice.createRoom({ preset: "private_chat" });
    // Synapse accepts the invite, then asks the bridge GET /users/{userId}; the bridge registers the ghost.
    await alice.invite(room, ghost);
    const deadline = Date.now() + 15_000;
    let displayname: string | undefined;
    while (!displayname && Date.now() < deadline) {
      displayname = await alice
        .request<{ displayname?: string }>("GET", `/_matrix/client/v3/profile/${encodeURIComponent(ghost)}`)
        .then((p) => p.displayname)
        .catch(() => undefined);
      if (!displayname) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(displayname, "Echo of zed");
  });

  it("creates a room on demand when a user joins an alias in its namespace", async () => {
    const joined = await alice.join(`#_echo_lobby:${SERVER_NAME}`);
    const name = await alice.request<{ name: string }>(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(joined)}/state/m.room.name/`,
    );
    assert.equal(name.name, "Echo room lobby");
    assert.ok((await alice.joinedMembers(joined)).includes(alice.userId));
    // MSC2346 bridge info, under the stable and the legacy event type.
    const state = await alice.request<
      { type: string; state_key: string; content: Record<string, unknown> }[]
    >("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(joined)}/state`);
    for (const type of ["m.bridge", "uk.half-shot.bridge"]) {
      const info = state.find((e) => e.type === type);
      assert.equal(info?.state_key, "org.trestle.echo://echo/lobby");
      assert.equal(info?.content.bridgebot, `@echobot:${SERVER_NAME}`);
      assert.deepEqual(info?.content.channel, { id: "lobby", displayname: "lobby" });
    }
  });

  /** Sends one more message and waits for its echo: events of a room are echoed in order. */
  const echoOfSentinel = async () => {
    const body = `sentinel ${Date.now()}`;
    await alice.sendMessage(roomId, body);
    await alice.waitForEvent((e) => e.room_id === roomId && e.content.body === `echo: ${body}`, 30_000);
  };

  it("outage: 300 messages sent while the bridge is down are each echoed once, in order", async function () {
    this.timeout(180_000);
    await bridge.stop();
    const bodies = Array.from({ length: 300 }, (_, i) => `outage ${i + 1}`);
    for (const body of bodies) await alice.sendMessage(roomId, body);
    await bridge.start();

    const expected = bodies.map((b) => `echo: ${b}`);
    await alice.waitUntil(
      (seen) =>
        echoesIn(roomId, seen).filter((e) => String(e.content.body).startsWith("echo: outage")).length >= 300,
      150_000,
    );
    await echoOfSentinel(); // a duplicate would be echoed before it: the room is handled in order
    const echoed = echoesIn(roomId, alice.events)
      .map((e) => String(e.content.body))
      .filter((b) => b.startsWith("echo: outage"));
    assert.deepEqual(echoed, expected);
  });

  it("crash: events acknowledged right before a SIGKILL are processed after restart", async function () {
    this.timeout(60_000);
    await bridge.stop();
    await writeConfig(5_000, hs.baseUrl); // long enough to kill the bridge mid-event
    await bridge.start();
    const accepted = await bridge.metric("trestle_transactions_total", { outcome: "accepted" });

    await alice.sendMessage(roomId, "survive the crash");
    const deadline = Date.now() + 15_000;
    while ((await bridge.metric("trestle_transactions_total", { outcome: "accepted" })) <= accepted) {
      if (Date.now() > deadline) throw new Error("the bridge never acknowledged the transaction");
      await new Promise((r) => setTimeout(r, 20));
    }
    await bridge.kill();
    assert.ok(
      !echoesIn(roomId, await alice.sync(0)).some((e) => e.content.body === "echo: survive the crash"),
    );

    await writeConfig(0, hs.baseUrl);
    await bridge.start();
    await alice.waitForEvent(
      (e) => e.room_id === roomId && e.content.body === "echo: survive the crash",
      30_000,
    );
    await echoOfSentinel();
    const copies = echoesIn(roomId, alice.events).filter((e) => e.content.body === "echo: survive the crash");
    assert.equal(copies.length, 1);
  });
});
