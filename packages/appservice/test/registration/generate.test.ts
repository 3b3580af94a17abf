import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.js";
import {
  escapeRegex,
  type GenerateRegistrationOptions,
  generateRegistration,
  NamespaceMatcher,
  validateRegistration,
} from "../../src/registration/index.js";

const BASE: GenerateRegistrationOptions = {
  url: "http://127.0.0.1:9999",
  senderLocalpart: "_irc_bot",
  userPrefix: "_irc_",
  serverName: "example.org",
};

describe("generateRegistration", () => {
  it("creates 256-bit hex tokens, fresh each time and different from each other", () => {
    const regs = Array.from({ length: 50 }, () => generateRegistration(BASE));
    const tokens = regs.flatMap((r) => [r.as_token, r.hs_token]);
    for (const token of tokens) {
      assert.match(token, /^[0-9a-f]{64}$/);
      assert.equal(Buffer.from(token, "hex").length, 32);
    }
    assert.equal(new Set(tokens).size, tokens.length, "no token repeats");
    // 6400 hex digits from a CSPRNG: every digit shows up, none dominates.
    const counts = new Map<string, number>();
    for (const ch of tokens.join("")) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    assert.equal(counts.size, 16);
    for (const n of counts.values()) assert.ok(n > 250 && n < 550, `digit frequency ${n} out of range`);
  });

  it("anchors exclusive namespaces to the server name at both ends", () => {
    const reg = generateRegistration({ ...BASE, aliasPrefix: "_irc_" });
    assert.deepEqual(reg.namespaces, {
      users: [{ exclusive: true, regex: "^@_irc_.*:example\\.org$" }],
      aliases: [{ exclusive: true, regex: "^#_irc_.*:example\\.org$" }],
      rooms: [],
    });
    const m = new NamespaceMatcher(reg, "example.org");
    assert.ok(m.isUserInExclusiveNamespace("@_irc_bob:example.org"));
    assert.ok(m.isAliasInExclusiveNamespace("#_irc_#chan:example.org"));
    assert.ok(!m.isUserInNamespace("@bob:example.org"));
    // The escaped dot: any other character in its place is a different server.
    assert.ok(!m.isUserInNamespace("@_irc_bob:exampleXorg"));
    // The end anchor: a longer server name that merely starts the same is not ours.
    assert.ok(!m.isUserInNamespace("@_irc_bob:example.org.evil.net"));
    assert.ok(!m.isUserInNamespace("@_irc_bob:other.org"));
  });

  it("escapes every regex metacharacter in server names and prefixes", () => {
    const ipv6 = generateRegistration({ ...BASE, serverName: "[::1]:8448" });
    assert.equal(ipv6.namespaces.users[0]?.regex, "^@_irc_.*:\\[::1\\]:8448$");
    assert.ok(new NamespaceMatcher(ipv6, "[::1]:8448").isUserInNamespace("@_irc_x:[::1]:8448"));
    const ported = generateRegistration({
      ...BASE,
      userPrefix: "irc.+",
      serverName: "matrix.example.org:8448",
    });
    assert.equal(ported.namespaces.users[0]?.regex, "^@irc\\.\\+.*:matrix\\.example\\.org:8448$");
    assert.equal(
      escapeRegex("a.b*c+d?e^f$g{h}i(j)k|l[m]n\\o"),
      "a\\.b\\*c\\+d\\?e\\^f\\$g\\{h\\}i\\(j\\)k\\|l\\[m\\]n\\\\o",
    );
  });

  it("claims no aliases unless an alias prefix is given", () => {
    assert.deepEqual(generateRegistration(BASE).namespaces.aliases, []);
  });

  it("turns rate limiting off and adds only the opt-ins asked for", () => {
    const plain = generateRegistration(BASE);
    assert.equal(plain.rate_limited, false);
    for (const key of [
      "receive_ephemeral",
      "de.sorunome.msc2409.push_ephemeral",
      "org.matrix.msc3202",
      "io.element.msc4190",
      "protocols",
    ]) {
      assert.ok(!(key in plain), `${key} should be absent`);
    }
    const all = generateRegistration({
      ...BASE,
      ephemeral: true,
      msc3202: true,
      msc4190: true,
      protocols: ["irc"],
    });
    assert.equal(all.receive_ephemeral, true);
    assert.equal(all["de.sorunome.msc2409.push_ephemeral"], true);
    assert.equal(all["org.matrix.msc3202"], true);
    assert.equal(all["io.element.msc4190"], true);
    assert.deepEqual(all.protocols, ["irc"]);
  });

  it("defaults the id to the sender localpart and keeps url null if asked", () => {
    const reg = generateRegistration({ ...BASE, url: null });
    assert.equal(reg.id, "_irc_bot");
    assert.equal(reg.url, null);
    assert.equal(generateRegistration({ ...BASE, id: "irc" }).id, "irc");
  });

  it("produces registrations the parser accepts", () => {
    const reg = generateRegistration({ ...BASE, aliasPrefix: "_irc_", ephemeral: true, msc3202: true });
    assert.deepEqual(validateRegistration(structuredClone(reg)), reg);
  });

  it("rejects bad options, naming each one", () => {
    assert.throws(
      () =>
        generateRegistration({
          url: "localhost:9999",
          senderLocalpart: "Bot",
          userPrefix: "",
          aliasPrefix: "a:b",
          serverName: "exa mple.org",
        }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        for (const name of ["url", "senderLocalpart", "userPrefix", "aliasPrefix", "serverName"]) {
          assert.ok(
            err.problems.some((p) => p.startsWith(`${name}:`)),
            `${name} not named in ${err.message}`,
          );
        }
        return true;
      },
    );
  });
});
