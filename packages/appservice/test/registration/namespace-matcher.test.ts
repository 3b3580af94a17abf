import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.js";
import {
  compilePythonRegex,
  matchesAtStart,
  NamespaceMatcher,
  RegexTranslationError,
  type Registration,
} from "../../src/registration/index.js";

function registration(namespaces: Partial<Registration["namespaces"]>): Registration {
  return {
    id: "test",
    url: null,
    as_token: "a",
    hs_token: "h",
    sender_localpart: "_irc_bot",
    namespaces: { users: [], aliases: [], rooms: [], ...namespaces },
  };
}

describe("NamespaceMatcher", () => {
  // [regex, id, expected]: what Synapse's `re.match(regex, id)` returns.
  const synapseTable: [string, string, boolean][] = [
    ["@_irc_.*", "@_irc_bob:example.org", true],
    // Anchored at the start: the leading "@" is not skipped over.
    ["_irc_", "@_irc_bob", false],
    ["_irc_", "_irc_bob", true],
    // Not anchored at the end: a prefix match is enough.
    ["@_irc_bob", "@_irc_bobby:example.org", true],
    ["@_irc_.*:example\\.org", "@_irc_bob:example.org.evil.net", true],
    ["@_irc_.*:example\\.org$", "@_irc_bob:example.org.evil.net", false],
    ["@_irc_.*:example\\.org", "@_irc_bob:exampleXorg", false],
    ["@_irc_.*:example.org", "@_irc_bob:exampleXorg", true],
    ["@(_irc_|_xmpp_).*", "@_xmpp_carol:example.org", true],
    ["@.*", "@anyone:anywhere", true],
  ];

  for (const [regex, id, expected] of synapseTable) {
    it(`re.match(${JSON.stringify(regex)}, ${JSON.stringify(id)}) is ${expected}`, () => {
      const m = new NamespaceMatcher(registration({ users: [{ exclusive: false, regex }] }), "example.org");
      assert.equal(m.isUserInNamespace(id), expected);
    });
  }

  it("differs from an unanchored JavaScript test, which is the point", () => {
    assert.equal(/_irc_/.test("@_irc_bob"), true);
    assert.equal(matchesAtStart(compilePythonRegex("_irc_"), "@_irc_bob"), false);
  });

  it("is stateless across calls despite the sticky flag", () => {
    const re = compilePythonRegex("@a");
    assert.equal(matchesAtStart(re, "@a"), true);
    assert.equal(matchesAtStart(re, "@a"), true);
    assert.equal(matchesAtStart(re, "x@a"), false);
    assert.equal(matchesAtStart(re, "@a"), true);
  });

  it("separates exclusive from non-exclusive namespaces", () => {
    const m = new NamespaceMatcher(
      registration({
        users: [
          { exclusive: true, regex: "@_irc_.*" },
          { exclusive: false, regex: "@shared_.*" },
        ],
        aliases: [{ exclusive: false, regex: "#irc_.*" }],
        rooms: [{ exclusive: true, regex: "!bridged:example\\.org" }],
      }),
      "example.org",
    );
    assert.ok(m.isUserInNamespace("@_irc_a:example.org"));
    assert.ok(m.isUserInExclusiveNamespace("@_irc_a:example.org"));
    assert.ok(m.isUserInNamespace("@shared_a:example.org"));
    assert.ok(!m.isUserInExclusiveNamespace("@shared_a:example.org"));
    assert.ok(m.isAliasInNamespace("#irc_chan:example.org"));
    assert.ok(!m.isAliasInExclusiveNamespace("#irc_chan:example.org"));
    assert.ok(m.isRoomInNamespace("!bridged:example.org"));
    assert.ok(m.isRoomInExclusiveNamespace("!bridged:example.org"));
    assert.ok(!m.isRoomInNamespace("!other:example.org"));
    // Namespaces do not leak across kinds.
    assert.ok(!m.isAliasInNamespace("@_irc_a:example.org"));
  });

  it("knows the bot, which need not be in any namespace", () => {
    const m = new NamespaceMatcher(registration({}), "example.org");
    assert.equal(m.botUserId, "@_irc_bot:example.org");
    assert.ok(m.isBot("@_irc_bot:example.org"));
    assert.ok(!m.isBot("@_irc_bot:other.org"));
    assert.ok(!m.isUserInNamespace("@_irc_bot:example.org"));
  });

  it("throws a ConfigError naming the entry for a regex that does not compile", () => {
    assert.throws(
      () => new NamespaceMatcher(registration({ rooms: [{ exclusive: true, regex: "![" }] }), "example.org"),
      (err: unknown) =>
        err instanceof ConfigError && err.problems[0]?.startsWith("namespaces.rooms[0].regex:") === true,
    );
  });
});

describe("Python regex translation", () => {
  const match = (pattern: string, input: string) => matchesAtStart(compilePythonRegex(pattern), input);

  it("translates named groups and backreferences", () => {
    assert.ok(match("@(?P<p>_irc_)(?P=p)", "@_irc__irc_x"));
    assert.ok(!match("@(?P<p>_irc_)(?P=p)", "@_irc_x"));
  });

  it("translates \\A and \\Z instead of reading them as letters", () => {
    assert.ok(match("@foo\\Z", "@foo"));
    assert.ok(!match("@foo\\Z", "@foo2"));
    assert.ok(!match("@foo\\Z", "@fooZ"));
    assert.ok(match("\\A@foo", "@foo"));
  });

  it("applies leading inline flags, keeping re.match's start anchoring under (?m)", () => {
    assert.ok(match("(?i)@_IRC_.*", "@_irc_bob:example.org"));
    assert.ok(match("(?s)@a.b", "@a\nb"));
    assert.ok(!match("(?m)^@x", "foo\n@x"));
  });

  it("reads ']' first in a class as a literal, as Python does", () => {
    assert.ok(match("[]a]+", "]a]"));
    assert.ok(match("[^]]", "x"));
    assert.ok(!match("[^]]", "]"));
  });

  it("keeps escaped punctuation that the unicode flag would reject", () => {
    assert.ok(match("\\@_irc_.*\\:example\\.org", "@_irc_x:example.org"));
  });

  it("rejects what has no faithful JavaScript equivalent", () => {
    for (const pattern of ["@\\a", "(?x)@ a", "@\\U0001F600", "@\\p{L}", "@foo\\", "[\\A]", "(?P=x"]) {
      assert.throws(() => compilePythonRegex(pattern), RegexTranslationError, pattern);
    }
  });
});
