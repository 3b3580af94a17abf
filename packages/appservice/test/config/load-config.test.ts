import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import {
  type CoreConfig,
  coreConfigSchema,
  extendCoreConfigSchema,
  type JSONSchema,
  loadConfig,
  parseConfig,
} from "../../src/config/index.js";
import { ConfigError } from "../../src/errors.js";
import { assertHasProblem, configProblems, useTempDir } from "./helpers.js";

const MINIMAL = `homeserver:
  url: http://localhost:8008
  domain: example.org
appservice:
  port: 9999
`;

interface IrcConfig extends CoreConfig {
  irc: { servers: string[]; nickPrefix: string };
}

const ircSchema = extendCoreConfigSchema({
  required: ["irc"],
  properties: {
    irc: {
      type: "object",
      additionalProperties: false,
      required: ["servers"],
      properties: {
        servers: { type: "array", items: { type: "string" }, minItems: 1 },
        nickPrefix: { type: "string", default: "[m]" },
      },
    },
  },
});

function assertProblem(text: string, expected: string, schema: JSONSchema = coreConfigSchema): void {
  const problems = configProblems(
    () => parseConfig(text, "bridge.yaml", schema),
    /^Invalid config file bridge\.yaml/,
  );
  assertHasProblem(problems, expected, true);
}

describe("loadConfig", () => {
  const tmp = useTempDir();

  it("reads a file and fills in the core defaults", async () => {
    const path = tmp.file("config.yaml");
    await writeFile(path, MINIMAL);
    const config = await loadConfig<CoreConfig>(path, coreConfigSchema);
    assert.deepEqual(config, {
      homeserver: { url: "http://localhost:8008", domain: "example.org" },
      appservice: { port: 9999, bindAddress: "127.0.0.1" },
      logging: { level: "info" },
      dataDir: "data",
      metrics: { enabled: false },
    });
  });

  it("names the path, the problem and the line of each error", () => {
    assertProblem(
      MINIMAL.replace("http://localhost:8008", "localhost:8008"),
      "homeserver.url: must be an http:// or https:// URL (line 2)",
    );
    assertProblem(MINIMAL.replace("  domain: example.org\n", ""), "homeserver.domain: is required (line 2)");
    assertProblem(
      MINIMAL.replace("port: 9999", "port: nine"),
      "appservice.port: must be an integer (line 5)",
    );
    assertProblem(MINIMAL.replace("port: 9999", "port: 70000"), "appservice.port: must be <= 65535 (line 5)");
    assertProblem(
      `${MINIMAL}logging:\n  level: loud\n`,
      'logging.level: must be one of "trace", "debug", "info", "warn", "error", "fatal", "silent" (line 7)',
    );
    assertProblem(
      `${MINIMAL}metrics:\n  enabled: on\n`,
      "metrics.enabled: must be a boolean (write true or false) (line 7)",
    );
    assertProblem("appservice:\n  port: 1\n", "homeserver: is required");
  });

  it("names a missing key inside a section filled from defaults, without a misleading line", () => {
    assertProblem("homeserver:\n  url: http://hs\n  domain: hs\n", "appservice.port: is required");
  });

  it("validates a bridge schema built on the core one, with its own defaults", () => {
    const config = parseConfig<IrcConfig>(
      `${MINIMAL}irc:\n  servers: [irc.libera.chat]\n`,
      "x.yaml",
      ircSchema,
    );
    assert.deepEqual(config.irc, { servers: ["irc.libera.chat"], nickPrefix: "[m]" });
    assert.equal(config.appservice.bindAddress, "127.0.0.1");
    assertProblem(
      `${MINIMAL}irc:\n  servers: []\n  nick: x\n`,
      "irc.nick: is not a recognised key (line 8)",
      ircSchema,
    );
    assertProblem(
      `${MINIMAL}irc:\n  servers: []\n`,
      "irc.servers: must NOT have fewer than 1 items (line 7)",
      ircSchema,
    );
    assertProblem(MINIMAL, "irc: is required", ircSchema);
  });

  it("merges caller defaults under the file without changing them", () => {
    const defaults = { appservice: { port: 8090, bindAddress: "0.0.0.0" }, irc: { servers: ["a", "b"] } };
    const snapshot = structuredClone(defaults);
    const fromDefaults = parseConfig<IrcConfig>(
      "homeserver: {url: 'http://hs', domain: hs}\n",
      "x",
      ircSchema,
      {
        defaults,
      },
    );
    assert.equal(fromDefaults.appservice.port, 8090);
    assert.equal(fromDefaults.appservice.bindAddress, "0.0.0.0");
    assert.deepEqual(fromDefaults.irc.servers, ["a", "b"]);
    fromDefaults.irc.servers.push("c");
    assert.deepEqual(defaults, snapshot);

    // The file wins, arrays are replaced rather than concatenated.
    const fromFile = parseConfig<IrcConfig>(`${MINIMAL}irc:\n  servers: [c]\n`, "x", ircSchema, { defaults });
    assert.equal(fromFile.appservice.port, 9999);
    assert.equal(fromFile.appservice.bindAddress, "0.0.0.0");
    assert.deepEqual(fromFile.irc.servers, ["c"]);
  });

  it("treats an empty file as an empty config", () => {
    const config = parseConfig<CoreConfig>("", "empty.yaml", coreConfigSchema, {
      defaults: { homeserver: { url: "http://hs", domain: "hs" }, appservice: { port: 1 } },
    });
    assert.equal(config.logging.level, "info");
  });

  it("supports the uri format for bridge schemas", () => {
    const schema = { type: "object", properties: { link: { type: "string", format: "uri" } } };
    assert.deepEqual(parseConfig("link: mailto:a@b\n", "x", schema), { link: "mailto:a@b" });
    assertProblem("link: not a uri\n", "link: must be an absolute URI (line 1)", schema);
  });

  it("reports unreadable files and YAML errors with the file name", async () => {
    const missing = tmp.file("missing.yaml");
    await assert.rejects(
      loadConfig(missing, coreConfigSchema),
      (err: unknown) =>
        err instanceof ConfigError && err.message === `The config file ${missing} does not exist`,
    );
    await assert.rejects(
      loadConfig(tmp.path, coreConfigSchema),
      (err: unknown) => err instanceof ConfigError && err.message.includes("is a directory"),
    );
    assert.throws(
      () => parseConfig("homeserver:\n  url: [\n", "broken.yaml", coreConfigSchema),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.startsWith("Cannot parse config file broken.yaml as YAML") &&
        /line \d+, column \d+/.test(err.problems[0] ?? ""),
    );
  });
});
