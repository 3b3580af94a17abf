import assert from "node:assert/strict";
import {
  afterPrefix,
  CommandSyntaxError,
  parseCommand,
  tokenize,
  type WebhookCommand,
} from "../../src/commands/index.js";

const parse = (text: string): WebhookCommand => {
  const args = afterPrefix(text, "!webhook");
  assert.notEqual(args, undefined, `"${text}" should be a command`);
  return parseCommand(args!);
};

describe("command parsing", () => {
  describe("the prefix", () => {
    it("needs the prefix followed by whitespace or nothing, in any case", () => {
      assert.equal(afterPrefix("!webhook list", "!webhook"), " list");
      assert.equal(afterPrefix("  !WebHook\tlist", "!webhook"), "\tlist");
      assert.equal(afterPrefix("!webhook", "!webhook"), "");
      assert.equal(afterPrefix("!webhook\nlist", "!webhook"), "\nlist");
      assert.equal(afterPrefix("!webhooks list", "!webhook"), undefined);
      assert.equal(afterPrefix("hello !webhook list", "!webhook"), undefined);
      assert.equal(afterPrefix("!hook list", "!hook"), " list", "another prefix");
    });
  });

  describe("tokenize", () => {
    const values = (text: string) => tokenize(text).map((t) => t.value);

    it("splits on any run of whitespace", () => {
      assert.deepEqual(values("  create \t ci  \n "), ["create", "ci"]);
      assert.deepEqual(values(""), []);
      assert.deepEqual(values("a\u00a0b"), ["a", "b"], "no-break space separates too");
    });

    it("keeps quoted words together, with straight and curly quotes", () => {
      assert.deepEqual(values(`sender ci "CI bot" x`), ["sender", "ci", "CI bot", "x"]);
      assert.deepEqual(values(`'single quoted'`), ["single quoted"]);
      assert.deepEqual(values("\u201cCurly bot\u201d"), ["Curly bot"]);
      assert.deepEqual(values("\u2018Curly single\u2019"), ["Curly single"]);
      assert.deepEqual(values(`""`), [""]);
    });

    it("leaves apostrophes inside words alone", () => {
      assert.deepEqual(values("Bob's builds"), ["Bob's", "builds"]);
      assert.deepEqual(values("'Bob's builds'"), ["Bob's builds"]);
      assert.deepEqual(values("it's"), ["it's"]);
    });

    it("unescapes the quote and backslash inside quotes", () => {
      assert.deepEqual(values(String.raw`"say \"hi\"" "a\\b" "c\d"`), [`say "hi"`, "a\\b", "c\\d"]);
    });

    it("marks quoted words and keeps their positions", () => {
      const [plain, quoted] = tokenize(`off "off"`);
      assert.deepEqual(plain, { value: "off", quoted: false, start: 0, end: 3 });
      assert.deepEqual(quoted, { value: "off", quoted: true, start: 4, end: 9 });
    });

    it("refuses an unclosed quote", () => {
      assert.throws(() => tokenize(`sender ci "CI bot`), CommandSyntaxError);
    });
  });

  describe("subcommands", () => {
    it("reads help, with or without a topic, and a bare prefix as help", () => {
      assert.deepEqual(parse("!webhook"), { kind: "help" });
      assert.deepEqual(parse("!webhook   "), { kind: "help" });
      assert.deepEqual(parse("!webhook help"), { kind: "help" });
      assert.deepEqual(parse("!webhook HELP Template"), { kind: "help", topic: "template" });
    });

    it("reads list and its alias", () => {
      assert.deepEqual(parse("!webhook list"), { kind: "list" });
      assert.deepEqual(parse("!webhook ls"), { kind: "list" });
    });

    it("reads create with a name and an optional template", () => {
      assert.deepEqual(parse("!webhook create ci"), { kind: "create", name: "ci" });
      assert.deepEqual(parse("!webhook   CREATE    ci   github  "), {
        kind: "create",
        name: "ci",
        template: "github",
      });
      assert.deepEqual(parse("!webhook new ci"), { kind: "create", name: "ci" });
      assert.equal(parse("!webhook create").kind, "usage");
      assert.equal(parse("!webhook create a b c").kind, "usage");
    });

    it("reads remove and rotate with exactly one name", () => {
      assert.deepEqual(parse("!webhook remove ci"), { kind: "remove", name: "ci" });
      assert.deepEqual(parse("!webhook delete ci"), { kind: "remove", name: "ci" });
      assert.deepEqual(parse("!webhook rotate  ci "), { kind: "rotate", name: "ci" });
      assert.deepEqual(parse("!webhook rotate"), {
        kind: "usage",
        command: "rotate",
        problem: "Which webhook?",
      });
      assert.equal(parse("!webhook remove ci extra").kind, "usage");
    });

    it("reads a template as the rest of the message, newlines included", () => {
      assert.deepEqual(parse("!webhook template ci github"), {
        kind: "template",
        name: "ci",
        template: "github",
      });
      assert.deepEqual(parse("!webhook template ci   **{{title}}**:  {{text}}  "), {
        kind: "template",
        name: "ci",
        template: "**{{title}}**:  {{text}}",
      });
      assert.deepEqual(parse("!webhook template ci\n# {{title}}\n\n{{text}}\n"), {
        kind: "template",
        name: "ci",
        template: "# {{title}}\n\n{{text}}",
      });
      assert.deepEqual(parse("!webhook template ci"), { kind: "template", name: "ci" }, "no template: show");
      assert.equal(parse("!webhook template").kind, "usage");
    });

    it("takes a template pasted as a fenced code block out of its fence", () => {
      assert.deepEqual(parse("!webhook template ci\n```handlebars\n**{{title}}**\n- {{text}}\n```"), {
        kind: "template",
        name: "ci",
        template: "**{{title}}**\n- {{text}}",
      });
      assert.deepEqual(parse("!webhook template ci ```\n{{x}}\n```"), {
        kind: "template",
        name: "ci",
        template: "{{x}}",
      });
      // Quotes in a template are its own business, even unbalanced ones.
      assert.deepEqual(parse(`!webhook template "ci" {{text}} isn't "quoted`), {
        kind: "template",
        name: "ci",
        template: `{{text}} isn't "quoted`,
      });
    });

    it("reads a sender: display name words, an optional mxc avatar, or off", () => {
      assert.deepEqual(parse("!webhook sender ci CI   Bot"), {
        kind: "sender",
        name: "ci",
        displayName: "CI Bot",
        reset: false,
      });
      assert.deepEqual(parse("!webhook sender ci Bob's CI mxc://fake.test/abc"), {
        kind: "sender",
        name: "ci",
        displayName: "Bob's CI",
        avatarUrl: "mxc://fake.test/abc",
        reset: false,
      });
      assert.deepEqual(parse(`!webhook sender ci "Build  bot" mxc://fake.test/abc`), {
        kind: "sender",
        name: "ci",
        displayName: "Build  bot",
        avatarUrl: "mxc://fake.test/abc",
        reset: false,
      });
      assert.deepEqual(parse("!webhook sender ci mxc://fake.test/abc"), {
        kind: "sender",
        name: "ci",
        avatarUrl: "mxc://fake.test/abc",
        reset: false,
      });
      assert.deepEqual(parse("!webhook sender ci off"), { kind: "sender", name: "ci", reset: true });
      assert.deepEqual(parse(`!webhook sender ci "off"`), {
        kind: "sender",
        name: "ci",
        displayName: "off",
        reset: false,
      });
      assert.equal(parse("!webhook sender ci").kind, "usage");
      const https = parse("!webhook sender ci Bot https://example.com/a.png");
      assert.equal(https.kind, "usage");
      assert.match((https as { problem: string }).problem, /mxc:\/\//);
    });

    it("reads verify with a scheme or off", () => {
      assert.deepEqual(parse("!webhook verify ci github"), { kind: "verify", name: "ci", scheme: "github" });
      assert.deepEqual(parse("!webhook verify ci GitLab"), { kind: "verify", name: "ci", scheme: "gitlab" });
      assert.deepEqual(parse("!webhook verify ci forgejo"), {
        kind: "verify",
        name: "ci",
        scheme: "forgejo",
      });
      assert.deepEqual(parse("!webhook verify ci off"), { kind: "verify", name: "ci", scheme: null });
      const bad = parse("!webhook verify ci bitbucket");
      assert.equal(bad.kind, "usage");
      assert.match((bad as { problem: string }).problem, /github, gitea, forgejo, gitlab or off/);
      assert.equal(parse("!webhook verify ci").kind, "usage");
    });

    it("reads options as key=value pairs", () => {
      assert.deepEqual(parse("!webhook options ci"), { kind: "options", name: "ci", patch: {} });
      assert.deepEqual(parse("!webhook options ci msgtype=m.text  get=on wait=OFF override=no"), {
        kind: "options",
        name: "ci",
        patch: { msgtype: "m.text", allowGet: true, wait: false, allowSenderOverride: false },
      });
      assert.deepEqual(parse("!webhook options ci msgtype=notice ratelimit=30/10"), {
        kind: "options",
        name: "ci",
        patch: { msgtype: "m.notice", rateLimit: { perMinute: 30, burst: 10 } },
      });
      assert.deepEqual(parse("!webhook options ci ratelimit=12"), {
        kind: "options",
        name: "ci",
        patch: { rateLimit: { perMinute: 12, burst: 12 } },
      });
      const reset = parse("!webhook options ci ratelimit=default");
      assert.ok(
        reset.kind === "options" && "rateLimit" in reset.patch && reset.patch.rateLimit === undefined,
      );
    });

    it("explains bad options", () => {
      const problem = (text: string) => {
        const command = parse(text);
        assert.equal(command.kind, "usage", text);
        return (command as { problem: string }).problem;
      };
      assert.match(problem("!webhook options ci colour=red"), /Unknown option "colour".*msgtype, get, wait/);
      assert.match(problem("!webhook options ci get=maybe"), /get must be on or off/);
      assert.match(problem("!webhook options ci msgtype=m.emote"), /m\.text or m\.notice/);
      assert.match(problem("!webhook options ci get"), /not key=value/);
      assert.match(problem("!webhook options ci get=on get=off"), /given twice/);
      assert.match(problem("!webhook options ci ratelimit=fast"), /ratelimit is/);
      assert.match(problem("!webhook options ci ratelimit=0/1"), /ratelimit is/);
    });

    it("names an unknown subcommand, and reports an unclosed quote as a usage problem", () => {
      assert.deepEqual(parse("!webhook frobnicate ci"), { kind: "unknown", word: "frobnicate" });
      assert.deepEqual(
        parse(`!webhook "list"`),
        { kind: "unknown", word: "list" },
        "a quoted subcommand is no keyword",
      );
      assert.deepEqual(parse(`!webhook sender ci "CI bot`), {
        kind: "usage",
        command: "sender",
        problem: `A quote (") is not closed`,
      });
      assert.deepEqual(parse(`!webhook "oops`), { kind: "help" });
    });
  });
});
