import assert from "node:assert/strict";
import { findJsonSyntaxError } from "../../src/ingress/json-syntax.js";

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALID = [
  "0",
  "-0.5e+10",
  "1E3",
  '""',
  '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00"',
  "true",
  "false",
  "null",
  " [ ] ",
  "{}",
  '{"a":[1,{"b":null}],"c":"d"}',
  '\t\r\n{"nested": [[[[[]]]]], "n": -12.5e-3}\n',
];

describe("findJsonSyntaxError", () => {
  it("finds nothing wrong with valid JSON", () => {
    for (const text of VALID) {
      assert.ok(parses(text), text);
      assert.equal(findJsonSyntaxError(text), undefined, text);
    }
  });

  it("names and locates each kind of error", () => {
    const cases: [string, number, string][] = [
      ['{"a":1', 6, "unexpected end of input"],
      ['{"a":1}x', 7, "unexpected data after the JSON value"],
      ['"abc', 4, "unterminated string"],
      ['{"a":"\u0001"}', 6, "control character in a string (escape it)"],
      ['{"a" 1}', 5, "expected ':' after a property name"],
      ["{a:1}", 1, "expected a property name in double quotes"],
      ["[1,2,,]", 5, "unexpected character where a value was expected"],
      ["[1 2]", 3, "expected ',' or ']'"],
      ['{"a":1,}', 7, "expected a property name in double quotes"],
      ['"\\x"', 1, "invalid escape in a string"],
      ['"\\u12G4"', 1, "invalid \\u escape in a string"],
      ["tru", 3, "unexpected end of input"],
      ["trUe", 0, "unexpected character where a value was expected"],
      ["01", 1, "unexpected data after the JSON value"],
      ["-", 0, "invalid number"],
      ["", 0, "unexpected end of input"],
    ];
    for (const [text, position, problem] of cases) {
      assert.ok(!parses(text), text);
      const found = findJsonSyntaxError(text);
      assert.equal(found?.problem, problem, text);
      assert.equal(found?.position, position, text);
    }
  });

  it("gives 1-based lines and columns", () => {
    assert.deepEqual(findJsonSyntaxError("[\n1,\n\n  x]"), {
      position: 8,
      line: 4,
      column: 3,
      problem: "unexpected character where a value was expected",
    });
  });

  it("copes with deep nesting without recursion", () => {
    const deep = "[".repeat(200_000);
    assert.equal(findJsonSyntaxError(deep)?.problem, "unexpected end of input");
    assert.equal(findJsonSyntaxError(`${deep}${"]".repeat(200_000)}`), undefined);
  });

  it("agrees with JSON.parse on thousands of mutated documents", () => {
    const random = prng(20240601);
    const alphabet = [
      '"',
      "\\",
      "{",
      "}",
      "[",
      "]",
      ":",
      ",",
      " ",
      "0",
      "1",
      "-",
      ".",
      "e",
      "t",
      "n",
      "u",
      "\u0001",
    ];
    let invalid = 0;
    for (let round = 0; round < 5000; round += 1) {
      const base = VALID[Math.floor(random() * VALID.length)]!;
      const chars = [...base];
      const edits = 1 + Math.floor(random() * 3);
      for (let e = 0; e < edits; e += 1) {
        const at = Math.floor(random() * (chars.length + 1));
        const op = random();
        const ch = alphabet[Math.floor(random() * alphabet.length)]!;
        if (op < 0.4) chars.splice(at, 0, ch);
        else if (op < 0.7) chars.splice(at, 1);
        else chars.splice(at, 1, ch);
      }
      const text = chars.join("");
      const valid = parses(text);
      if (!valid) invalid += 1;
      assert.equal(findJsonSyntaxError(text) === undefined, valid, JSON.stringify(text));
    }
    // The mutations must actually produce broken JSON for the comparison to mean anything.
    assert.ok(invalid > 2500, `only ${invalid} invalid documents`);
  });
});
