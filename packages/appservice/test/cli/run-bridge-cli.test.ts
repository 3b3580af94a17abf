import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { Writable } from "node:stream";
import { type BridgeCliOptions, runBridgeCli, type StartContext } from "../../src/cli/index.js";
import { type CoreConfig, extendCoreConfigSchema } from "../../src/config/index.js";
import { silentLogger } from "../../src/logging.js";
import { generateRegistration, loadRegistration } from "../../src/registration/index.js";
import { useTempDir } from "../config/helpers.js";

interface TestConfig extends CoreConfig {
  bridge: { userPrefix: string };
}

const CONFIG = `homeserver:
  url: http://localhost:8008
  domain: example.org
appservice:
  port: 8090
bridge:
  userPrefix: _test_
`;

const configSchema = extendCoreConfigSchema({
  required: ["bridge"],
  properties: {
    bridge: {
      type: "object",
      required: ["userPrefix"],
      properties: { userPrefix: { type: "string" } },
    },
  },
});

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

// Emitted, never sent: a signal no test runner uses, so mocha itself is not affected.
const SIGNAL = "SIGUSR2";

describe("runBridgeCli", () => {
  const tmp = useTempDir();
  let stdout: Capture;
  let stderr: Capture;
  let started: StartContext<TestConfig>[];
  let stops: number;

  beforeEach(() => {
    stdout = new Capture();
    stderr = new Capture();
    started = [];
    stops = 0;
  });

  function run(argv: string[], overrides: Partial<BridgeCliOptions<TestConfig>> = {}): Promise<number> {
    return runBridgeCli<TestConfig>({
      name: "test-bridge",
      description: "A bridge used by the CLI tests.",
      configSchema,
      argv,
      stdout,
      stderr,
      logger: silentLogger(),
      signals: [SIGNAL],
      generateRegistration: (config, { url, id, localpart }) =>
        generateRegistration({
          url,
          ...(id !== undefined && { id }),
          senderLocalpart: localpart ?? "_test_bot",
          userPrefix: config.bridge.userPrefix,
          serverName: config.homeserver.domain,
        }),
      start: async (context) => {
        started.push(context);
        // Ask for shutdown once runBridgeCli has installed its handlers.
        setImmediate(() => process.emit(SIGNAL, SIGNAL));
        return {
          stop: async () => {
            stops++;
          },
        };
      },
      ...overrides,
    });
  }

  async function writeConfig(text = CONFIG): Promise<string> {
    const path = tmp.file("config.yaml");
    await writeFile(path, text);
    return path;
  }

  it("prints usage listing every flag for --help and -h", async () => {
    for (const flag of ["--help", "-h"]) {
      stdout.text = "";
      assert.equal(await run([flag]), 0);
      for (const expected of [
        "Usage: test-bridge",
        "A bridge used by the CLI tests.",
        "-c, --config FILE",
        "-f, --file FILE",
        "-r, --generate-registration",
        "-u, --url URL",
        "-p, --port PORT",
        "-h, --help",
        "registration.yaml",
      ]) {
        assert.ok(stdout.text.includes(expected), `usage lacks ${expected}`);
      }
    }
    assert.equal(stderr.text, "");
  });

  it("writes a registration with -r that then loads, printing where but no tokens", async () => {
    const config = await writeConfig();
    const file = tmp.file("reg.yaml");
    const code = await run([
      "-c",
      config,
      "-r",
      "-u",
      "http://127.0.0.1:8090",
      "-f",
      file,
      "-l",
      "bot",
      "--id",
      "t",
    ]);
    assert.equal(code, 0, stderr.text);
    const reg = await loadRegistration(file);
    assert.equal(reg.id, "t");
    assert.equal(reg.url, "http://127.0.0.1:8090");
    assert.equal(reg.sender_localpart, "bot");
    assert.equal(reg.namespaces.users[0]?.regex, "^@_test_.*:example\\.org$");
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(stdout.text.includes(file), stdout.text);
    assert.ok(!stdout.text.includes(reg.as_token) && !stdout.text.includes(reg.hs_token));
    assert.equal(started.length, 0, "-r must not start the bridge");
  });

  it("writes registration.yaml in the working directory by default", async () => {
    const config = await writeConfig();
    const cwd = process.cwd();
    process.chdir(tmp.path);
    try {
      assert.equal(await run(["--config", config, "--generate-registration", "--url", "http://h:1"]), 0);
    } finally {
      process.chdir(cwd);
    }
    assert.match(await readFile(tmp.file("registration.yaml"), "utf8"), /as_token:/);
  });

  it("refuses -r without -u, or with a URL that is not http(s)", async () => {
    const config = await writeConfig();
    assert.equal(await run(["-c", config, "-r"]), 2);
    assert.match(stderr.text, /^test-bridge: -r\/--generate-registration needs -u\/--url URL\n/);
    assert.match(stderr.text, /--help/);
    stderr.text = "";
    assert.equal(await run(["-c", config, "-r", "-u", "localhost:9000"]), 2);
    assert.match(stderr.text, /-u\/--url must be an http/);
  });

  it("refuses a bad -p", async () => {
    const config = await writeConfig();
    for (const port of ["abc", "0", "70000", "80.5", "-1", ""]) {
      stderr.text = "";
      assert.equal(await run(["-c", config, `--port=${port}`]), 2, port);
      assert.match(stderr.text, /-p\/--port must be a port number/, port);
    }
    stderr.text = "";
    assert.equal(await run(["-c", config, "-p"]), 2);
    assert.match(stderr.text, /argument missing/);
    stderr.text = "";
    assert.equal(await run(["-c", config, "-p", "-1"]), 2);
    assert.match(stderr.text, /^test-bridge: Option '-p' argument is ambiguous\n/);
    assert.equal(started.length, 0);
  });

  it("refuses unknown flags, stray arguments and a missing -c", async () => {
    assert.equal(await run(["--nope"]), 2);
    assert.match(stderr.text, /Unknown option '--nope'/);
    stderr.text = "";
    assert.equal(await run(["-c", "x.yaml", "extra"]), 2);
    assert.match(stderr.text, /Unexpected argument "extra"/);
    stderr.text = "";
    assert.equal(await run([]), 2);
    assert.match(stderr.text, /Missing -c\/--config FILE/);
  });

  it("fails with 1 and names the file when the config is missing or invalid", async () => {
    const missing = tmp.file("absent.yaml");
    assert.equal(await run(["-c", missing]), 1);
    assert.ok(stderr.text.includes(`The config file ${missing} does not exist`), stderr.text);
    stderr.text = "";
    const bad = await writeConfig(CONFIG.replace("http://localhost:8008", "nope"));
    assert.equal(await run(["-c", bad]), 1);
    assert.ok(stderr.text.includes(bad));
    assert.match(stderr.text, /homeserver\.url: must be an http/);
  });

  it("fails with 1 and says how to generate one when the registration is missing", async () => {
    const config = await writeConfig();
    const file = tmp.file("none.yaml");
    assert.equal(await run(["-c", config, "-f", file]), 1);
    assert.ok(stderr.text.includes(`The registration file ${file} does not exist`), stderr.text);
    assert.ok(stderr.text.includes(`-r -u URL -f ${file}`), stderr.text);
  });

  it("starts with the config's port, then stops on a signal and returns 0", async () => {
    const config = await writeConfig();
    const file = tmp.file("reg.yaml");
    assert.equal(await run(["-c", config, "-r", "-u", "http://h:1", "-f", file]), 0);
    assert.equal(await run(["-c", config, "-f", file]), 0, stderr.text);
    assert.equal(started.length, 1);
    assert.equal(started[0]?.port, 8090);
    assert.equal(started[0]?.config.bridge.userPrefix, "_test_");
    assert.equal(started[0]?.registration.sender_localpart, "_test_bot");
    assert.equal(stops, 1);
    assert.equal(process.listenerCount(SIGNAL), 0);
  });

  it("gives the bridge's stop its shutdown timeout less a margin, so it ends before the kill", async () => {
    const config = await writeConfig();
    const file = tmp.file("reg.yaml");
    assert.equal(await run(["-c", config, "-r", "-u", "http://h:1", "-f", file]), 0);
    const budgets: (number | undefined)[] = [];
    const start = async () => {
      setImmediate(() => process.emit(SIGNAL, SIGNAL));
      return {
        stop: async (timeoutMs?: number) => {
          budgets.push(timeoutMs);
        },
      };
    };
    assert.equal(await run(["-c", config, "-f", file], { start }), 0);
    assert.equal(await run(["-c", config, "-f", file], { start, shutdownTimeoutMs: 5_000 }), 0);
    assert.deepEqual(budgets, [8_000, 4_000]);
  });

  it("lets -p override the config's port", async () => {
    const config = await writeConfig();
    const file = tmp.file("reg.yaml");
    assert.equal(await run(["-c", config, "-r", "-u", "http://h:1", "-f", file]), 0);
    assert.equal(await run(["-c", config, "-f", file, "-p", "9123"]), 0, stderr.text);
    assert.equal(started[0]?.port, 9123);
    assert.equal(started[0]?.config.appservice.port, 9123);
  });

  it("uses defaultPort when neither -p nor the config gives one", async () => {
    const config = await writeConfig(CONFIG.replace("appservice:\n  port: 8090\n", ""));
    const file = tmp.file("reg.yaml");
    assert.equal(await run(["-c", config, "-r", "-u", "http://h:1", "-f", file], { defaultPort: 7777 }), 0);
    assert.equal(await run(["-c", config, "-f", file], { defaultPort: 7777 }), 0, stderr.text);
    assert.equal(started[0]?.port, 7777);
    stderr.text = "";
    assert.equal(await run(["-c", config, "-f", file]), 1);
    assert.match(stderr.text, /appservice\.port: is required/);
  });

  it("returns 1 when stopping fails, and when starting fails", async () => {
    const config = await writeConfig();
    const file = tmp.file("reg.yaml");
    assert.equal(await run(["-c", config, "-r", "-u", "http://h:1", "-f", file]), 0);
    const failingStop = await run(["-c", config, "-f", file], {
      start: async () => {
        setImmediate(() => process.emit(SIGNAL, SIGNAL));
        return { stop: () => Promise.reject(new Error("drain failed")) };
      },
    });
    assert.equal(failingStop, 1);
    const failingStart = await run(["-c", config, "-f", file], {
      start: () => Promise.reject(new Error("port in use")),
    });
    assert.equal(failingStart, 1);
    assert.match(stderr.text, /port in use/);
    assert.equal(process.listenerCount(SIGNAL), 0);
  });
});
