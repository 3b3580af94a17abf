import assert from "node:assert/strict";
import { chmod, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../src/errors.js";
import {
  loadRegistration,
  parseRegistration,
  type Registration,
  stringifyRegistration,
  validateRegistration,
  writeRegistration,
} from "../../src/registration/index.js";
import { assertHasProblem, configProblems, useTempDir } from "../config/helpers.js";

const VALID = `id: testbridge
url: "http://127.0.0.1:9999"
as_token: "as_token_test_0123456789"
hs_token: "hs_token_test_0123456789"
sender_localpart: "_bridge_bot"
rate_limited: false
receive_ephemeral: true
org.matrix.msc3202: true
io.element.msc4190: false
protocols: ["irc"]
namespaces:
  users:
    - exclusive: true
      regex: "@_irc_.*:localhost"
  aliases:
    - exclusive: true
      regex: "#_irc_.*:localhost"
  rooms: []
`;

const problemsOf = (yamlText: string) =>
  configProblems(() => parseRegistration(yamlText, "reg.yaml"), /reg\.yaml/);

function assertProblem(yamlText: string, expected: string): void {
  assertHasProblem(problemsOf(yamlText), expected);
}

describe("registration parsing", () => {
  it("reads every field of a valid registration", () => {
    const reg = parseRegistration(VALID, "reg.yaml");
    assert.equal(reg.id, "testbridge");
    assert.equal(reg.url, "http://127.0.0.1:9999");
    assert.equal(reg.as_token, "as_token_test_0123456789");
    assert.equal(reg.hs_token, "hs_token_test_0123456789");
    assert.equal(reg.sender_localpart, "_bridge_bot");
    assert.equal(reg.rate_limited, false);
    assert.equal(reg.receive_ephemeral, true);
    assert.equal(reg["org.matrix.msc3202"], true);
    assert.equal(reg["io.element.msc4190"], false);
    assert.deepEqual(reg.protocols, ["irc"]);
    assert.deepEqual(reg.namespaces, {
      users: [{ exclusive: true, regex: "@_irc_.*:localhost" }],
      aliases: [{ exclusive: true, regex: "#_irc_.*:localhost" }],
      rooms: [],
    });
  });

  it("accepts url: null and reads namespace lists that are absent as empty", () => {
    const reg = parseRegistration(
      VALID.replace('url: "http://127.0.0.1:9999"', "url: null").replace(/ {2}aliases:[\s\S]*$/, ""),
      "reg.yaml",
    );
    assert.equal(reg.url, null);
    assert.deepEqual(reg.namespaces.aliases, []);
    assert.deepEqual(reg.namespaces.rooms, []);
  });

  it("reads the spec's required keys as required, url included", () => {
    for (const key of ["id", "url", "as_token", "hs_token", "sender_localpart"]) {
      const text = VALID.split("\n")
        .filter((line) => !line.startsWith(`${key}:`))
        .join("\n");
      assertProblem(text, `${key}: is required`);
    }
    assertProblem(VALID.replace(/namespaces:[\s\S]*$/, ""), "namespaces: is required");
  });

  // [text to replace in VALID, replacement, expected problem]
  const edits: [string, string, string][] = [
    ['regex: "@_irc_.*:localhost"', "regex: 5", "namespaces.users[0].regex: must be a string (line 14)"],
    ['url: "http://127.0.0.1:9999"', "url: 5", "url: must be a string or null (line 2)"],
    ["rate_limited: false", "rate_limited: 1", "rate_limited: must be a boolean (line 6)"],
    ['protocols: ["irc"]', "protocols: irc", "protocols: must be an array (line 10)"],
    ['protocols: ["irc"]', "protocols: [irc, 3]", "protocols[1]: must be a string (line 10)"],
    [
      "org.matrix.msc3202: true",
      'org.matrix.msc3202: "true"',
      "org.matrix.msc3202: must be a boolean (line 8)",
    ],
    ["  rooms: []", "  rooms: {}", "namespaces.rooms: must be an array (line 18)"],
    // A YAML 1.1 boolean, which PyYAML would read as true: hint at what to write.
    [
      '    - exclusive: true\n      regex: "@',
      '    - exclusive: yes\n      regex: "@',
      "namespaces.users[0].exclusive: must be a boolean (write true or false) (line 13)",
    ],
    // A missing key of a namespace entry points at the entry.
    [
      '    - exclusive: true\n      regex: "#',
      '    - regex: "#',
      "namespaces.aliases[0].exclusive: is required (line 16)",
    ],
    // Values, not just types.
    [
      'url: "http://127.0.0.1:9999"',
      "url: 127.0.0.1:9999",
      "url: must be an http:// or https:// URL (line 2)",
    ],
    ['as_token: "as_token_test_0123456789"', 'as_token: ""', "as_token: must not be empty (line 3)"],
    [
      'sender_localpart: "_bridge_bot"',
      'sender_localpart: "Bridge Bot"',
      "sender_localpart: must be a user localpart",
    ],
    // Synapse rejects localparts that need URL-encoding.
    [
      'sender_localpart: "_bridge_bot"',
      'sender_localpart: "bot=1"',
      "sender_localpart: must be a user localpart",
    ],
  ];
  for (const [find, replacement, expected] of edits) {
    it(`reports ${expected}`, () => {
      assert.ok(VALID.includes(find), find);
      assertProblem(VALID.replace(find, replacement), expected);
    });
  }

  it("reports every problem at once", () => {
    const problems = problemsOf(
      VALID.replace("rate_limited: false", "rate_limited: 1").replace(
        'regex: "#_irc_.*:localhost"',
        'regex: "(["',
      ),
    );
    assert.equal(problems.length, 2, problems.join("\n"));
  });

  it("rejects namespace regexes that do not compile, naming the entry and line", () => {
    assertProblem(
      VALID.replace('regex: "#_irc_.*:localhost"', 'regex: "#_irc_(.*:localhost"'),
      'namespaces.aliases[0].regex: invalid regex "#_irc_(.*:localhost"',
    );
    assertProblem(
      VALID.replace('regex: "#_irc_.*:localhost"', 'regex: "#_irc_(.*"'),
      'namespaces.aliases[0].regex: invalid regex "#_irc_(.*": Unterminated group (line 17)',
    );
    // Python syntax with no faithful JS translation is rejected, not silently changed.
    assertProblem(
      VALID.replace('regex: "@_irc_.*:localhost"', "regex: '@_irc_\\a'"),
      "namespaces.users[0].regex",
    );
  });

  it("turns YAML syntax errors and duplicate keys into ConfigErrors with a line", () => {
    assertProblem("id: a\nurl: [unclosed\n", "line");
    assertProblem(`${VALID}id: again\n`, "line 19, column 1: Map keys must be unique");
  });

  it("requires a mapping at the top level", () => {
    assertProblem("", "(top level): must be an object");
    assertProblem("- a\n- b\n", "(top level): must be an object");
  });

  it("validates in-memory registrations the same way", () => {
    assert.throws(
      () => validateRegistration({ ...parseRegistration(VALID, "x"), hs_token: 7 }),
      (err: unknown) => err instanceof ConfigError && err.problems.includes("hs_token: must be a string"),
    );
  });
});

describe("registration round trip", () => {
  const tmp = useTempDir();

  const WITH_EXTRAS = `${VALID}ip_range_whitelist: ["10.0.0.0/8"]
push_ephemeral: true
x-vendor:
  nested: [1, 2, {deep: true}]
`;

  it("keeps unknown keys, at the top level and inside namespace entries", () => {
    const text = WITH_EXTRAS.replace(
      '      regex: "#_irc_.*:localhost"',
      '      regex: "#_irc_.*:localhost"\n      x-note: kept',
    );
    const reg = parseRegistration(text, "reg.yaml");
    assert.deepEqual(reg.ip_range_whitelist, ["10.0.0.0/8"]);
    assert.equal(reg.push_ephemeral, true);
    assert.deepEqual(reg["x-vendor"], { nested: [1, 2, { deep: true }] });
    const again = parseRegistration(stringifyRegistration(reg), "again.yaml");
    assert.deepEqual(again, reg);
    assert.equal((again.namespaces.aliases[0] as unknown as Record<string, unknown>)["x-note"], "kept");
  });

  it("writes mode 0600, replacing a looser existing file, and reads back equal", async () => {
    const path = tmp.file("registration.yaml");
    await writeFile(path, "old");
    await chmod(path, 0o644);
    const reg = parseRegistration(WITH_EXTRAS, "reg.yaml");
    await writeRegistration(path, reg);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await loadRegistration(path), reg);
    assert.match(await readFile(path, "utf8"), /^# .*keep it private/);
  });

  it("never writes an invalid registration", async () => {
    const path = tmp.file("bad.yaml");
    const reg = { ...parseRegistration(VALID, "x"), sender_localpart: "Not Valid" } as Registration;
    await assert.rejects(writeRegistration(path, reg), ConfigError);
    await assert.rejects(stat(path), { code: "ENOENT" });
  });

  it("reports a missing file as a ConfigError naming it", async () => {
    const path = tmp.file("nope.yaml");
    await assert.rejects(loadRegistration(path), (err: unknown) => {
      return (
        err instanceof ConfigError && err.message.includes(path) && err.message.includes("does not exist")
      );
    });
  });
});

describe("registration.example.yaml", () => {
  it("is accepted by the parser, with every documented opt-in", async () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), "../../../..");
    const reg = await loadRegistration(join(root, "registration.example.yaml"));
    assert.equal(reg.url, "http://127.0.0.1:9999");
    assert.equal(reg.receive_ephemeral, true);
    assert.equal(reg["de.sorunome.msc2409.push_ephemeral"], true);
    assert.equal(typeof reg["org.matrix.msc3202"], "boolean");
    assert.equal(typeof reg["io.element.msc4190"], "boolean");
    assert.equal(reg.namespaces.users[0]?.regex, "^@_irc_.*:example\\.org$");
  });
});
