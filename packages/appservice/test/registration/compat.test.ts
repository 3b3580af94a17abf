import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { AppServiceRegistration } from "matrix-appservice/lib/app-service-registration.js";
import {
  generateRegistration,
  loadRegistration,
  NamespaceMatcher,
  writeRegistration,
} from "../../src/registration/index.js";
import { useTempDir } from "../config/helpers.js";

// The YAML parser matrix-appservice itself uses (its own js-yaml 4), so files are read
// exactly as matrix-appservice-bridge reads them.
const requireFromMatrixAppservice = createRequire(
  createRequire(import.meta.url).resolve("matrix-appservice"),
);
const jsYaml = requireFromMatrixAppservice("js-yaml") as {
  load(text: string): unknown;
  dump(v: unknown): string;
};

/** What our parser should make of a file that omits some namespace lists. */
function withAllNamespaceLists(output: Record<string, unknown>): Record<string, unknown> {
  const ns = (output.namespaces ?? {}) as Record<string, unknown>;
  return { ...output, namespaces: { users: [], aliases: [], rooms: [], ...ns } };
}

describe("compatibility with matrix-appservice", () => {
  const tmp = useTempDir();

  it("loads a registration written by AppServiceRegistration.outputAsYaml unchanged", async () => {
    // Built the way matrix-appservice-bridge's Cli does for `-r -u URL`.
    const theirs = new AppServiceRegistration("http://localhost:9000");
    theirs.setId("irc-bridge");
    theirs.setHomeserverToken(AppServiceRegistration.generateToken());
    theirs.setAppServiceToken(AppServiceRegistration.generateToken());
    theirs.setSenderLocalpart("appservice-irc");
    theirs.addRegexPattern("users", "@irc_.*", true);
    theirs.addRegexPattern("aliases", "#irc_.*", true);
    theirs.setRateLimited(false);
    theirs.setProtocols(["irc"]);
    theirs.pushEphemeral = true;
    const path = tmp.file("mab-registration.yaml");
    theirs.outputAsYaml(path);

    const ours = await loadRegistration(path);
    assert.deepEqual(ours, withAllNamespaceLists({ ...theirs.getOutput() }));
    assert.equal(ours["de.sorunome.msc2409.push_ephemeral"], true);
  });

  it("loads a hand-written bridge registration with extra keys unchanged", async () => {
    const text = `id: "slack"
hs_token: "d2VsbCBoZWxsbyB0aGVyZQ"
as_token: "c2VjcmV0IHNxdWlycmVs"
namespaces:
  users:
    - exclusive: true
      regex: "@slack_.*:example.com"
  aliases: []
  rooms: []
url: "http://localhost:5858"
sender_localpart: slackbot
rate_limited: false
protocols: [slack]
de.sorunome.msc2409.push_ephemeral: true
push_ephemeral: true
ip_range_whitelist: [127.0.0.1/32]
org.example.custom:
  feature: on
  list: [a, b]
`;
    const path = tmp.file("hand.yaml");
    await writeFile(path, text);
    const theirs = jsYaml.load(text) as Record<string, unknown>;
    assert.deepEqual(await loadRegistration(path), theirs);
    // And matrix-appservice accepts it too, so the sample is a fair one.
    assert.equal(AppServiceRegistration.fromObject(theirs as never).getId(), "slack");
  });

  it("writes registrations that AppServiceRegistration.fromObject loads, matching user for user", async () => {
    const reg = generateRegistration({
      id: "irc",
      url: "http://127.0.0.1:9999",
      senderLocalpart: "_irc_bot",
      userPrefix: "_irc_",
      aliasPrefix: "_irc_",
      serverName: "example.org",
      protocols: ["irc"],
      ephemeral: true,
    });
    const path = tmp.file("ours.yaml");
    await writeRegistration(path, reg);

    const theirs = AppServiceRegistration.fromObject(jsYaml.load(await readFile(path, "utf8")) as never);
    const output = theirs.getOutput(); // throws if a required field were missing
    assert.equal(output.id, "irc");
    assert.equal(output.url, reg.url);
    assert.equal(output.as_token, reg.as_token);
    assert.equal(output.hs_token, reg.hs_token);
    assert.equal(output.sender_localpart, "_irc_bot");
    assert.equal(output.rate_limited, false);
    assert.deepEqual(output.protocols, ["irc"]);
    assert.equal(theirs.pushEphemeralEnabled(), true);

    const matcher = new NamespaceMatcher(reg, "example.org");
    const users = [
      "@_irc_bob:example.org",
      "@_irc_:example.org",
      "@_irc_a.b=c/d+e:example.org",
      "@bob:example.org",
      "@_irc_bob:other.org",
      "@_irc_bob:exampleXorg",
      "@_irc_bob:example.org.evil.net",
      "@_irc_bot:example.org",
      "@_xmpp_bob:example.org",
      "_irc_bob:example.org",
      "x@_irc_bob:example.org",
      "@_IRC_bob:example.org",
    ];
    for (const userId of users) {
      for (const exclusiveOnly of [false, true]) {
        const ours = exclusiveOnly
          ? matcher.isUserInExclusiveNamespace(userId)
          : matcher.isUserInNamespace(userId);
        assert.equal(
          ours,
          theirs.isUserMatch(userId, exclusiveOnly),
          `${userId} exclusiveOnly=${exclusiveOnly}`,
        );
      }
    }
    for (const alias of ["#_irc_#chan:example.org", "#chan:example.org", "#_irc_x:example.org.evil"]) {
      assert.equal(matcher.isAliasInNamespace(alias), theirs.isAliasMatch(alias, false), alias);
    }
    // The table exercises both answers, not just one.
    assert.ok(users.some((u) => matcher.isUserInNamespace(u)));
    assert.ok(users.some((u) => !matcher.isUserInNamespace(u)));
  });
});

/** Runs a Python snippet with JSON on stdin; undefined when python3 (or PyYAML) is missing. */
function runPython(script: string, input: unknown): unknown {
  const result = spawnSync("python3", ["-c", script], { input: JSON.stringify(input), encoding: "utf8" });
  if (result.error || result.status !== 0) return undefined;
  return JSON.parse(result.stdout);
}

describe("compatibility with Synapse's Python", () => {
  it("re.match agrees with NamespaceMatcher on a table of regexes and IDs", function () {
    const cases: [string, string][] = [
      ["@_irc_.*", "@_irc_bob:example.org"],
      ["_irc_", "@_irc_bob"],
      ["@_irc_bob", "@_irc_bobby:example.org"],
      ["@_irc_.*:example\\.org", "@_irc_bob:example.org.evil.net"],
      ["^@_irc_.*:example\\.org$", "@_irc_bob:example.org.evil.net"],
      ["@(?P<p>x)(?P=p)", "@xx"],
      ["@foo\\Z", "@fooZ"],
      ["(?i)@FOO", "@foo"],
      ["(?m)^@x", "a\n@x"],
      ["[]a]", "]"],
    ];
    const python = runPython(
      "import json, re, sys\nprint(json.dumps([bool(re.match(r, s)) for r, s in json.load(sys.stdin)]))",
      cases,
    ) as boolean[] | undefined;
    if (!python) return this.skip();
    cases.forEach(([regex, id], i) => {
      const matcher = new NamespaceMatcher(
        {
          id: "t",
          url: null,
          as_token: "a",
          hs_token: "h",
          sender_localpart: "b",
          namespaces: { users: [{ exclusive: true, regex }], aliases: [], rooms: [] },
        },
        "example.org",
      );
      assert.equal(matcher.isUserInNamespace(id), python[i], `${regex} vs ${JSON.stringify(id)}`);
    });
  });

  const tmp = useTempDir();

  it("PyYAML (YAML 1.1) reads a written registration exactly as we do", async function () {
    const reg = {
      ...generateRegistration({
        url: "http://h:1",
        senderLocalpart: "b",
        userPrefix: "_x_",
        serverName: "hs",
      }),
      // Plain scalars that YAML 1.1 would read as booleans and numbers.
      "x-flags": ["on", "no", "y", "0777", "1_000", "12:30"],
    };
    const path = tmp.file("reg.yaml");
    await writeRegistration(path, reg);
    const python = runPython(
      "import json, sys, yaml\nprint(json.dumps(yaml.safe_load(open(json.load(sys.stdin)))))",
      path,
    );
    if (python === undefined) return this.skip();
    assert.deepEqual(python, reg);
  });
});
