import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.js";

/** A fresh directory under os.tmpdir() for each test, removed afterwards. */
export function useTempDir(): { readonly path: string; file(name: string): string } {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "trestle-test-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    get path() {
      return dir;
    },
    file: (name) => join(dir, name),
  };
}

/** Runs `action`, which must throw a ConfigError whose message matches `header`; returns its problems. */
export function configProblems(action: () => unknown, header: RegExp): string[] {
  try {
    action();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.match(err.message, header);
    return err.problems;
  }
  assert.fail("no ConfigError was thrown");
}

/** Asserts that one of `problems` contains (or, if `exact`, is) `expected`, listing them all if not. */
export function assertHasProblem(problems: readonly string[], expected: string, exact = false): void {
  assert.ok(
    problems.some((p) => (exact ? p === expected : p.includes(expected))),
    `expected a problem ${exact ? "equal to" : "containing"} ${JSON.stringify(expected)}, got:\n${problems.join("\n")}`,
  );
}
