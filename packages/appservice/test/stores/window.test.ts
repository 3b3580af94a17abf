import assert from "node:assert/strict";
import { IdWindow, seededFnv1a } from "../../src/stores/journal/window.js";

describe("IdWindow", () => {
  it("remembers the newest ids up to its capacity, evicting the oldest", () => {
    const window = new IdWindow(3);
    for (const id of ["$a", "$b", "$c"]) assert.equal(window.add(id), true);
    assert.equal(window.add("$b"), false, "an id already in the window is not added again");
    assert.equal(window.add("$d"), true);
    assert.equal(window.has("$a"), false);
    assert.deepEqual(window.toArray(), ["$b", "$c", "$d"]);
    assert.equal(window.size, 3);
  });

  it("sees claimed ids as taken but persists them only once committed", () => {
    const window = new IdWindow(10);
    assert.equal(window.claim("$x"), true);
    assert.equal(window.claim("$x"), false, "a second claim of a running event fails");
    assert.equal(window.has("$x"), true);
    assert.deepEqual(window.toArray(), []);
    window.commit("$x");
    assert.deepEqual(window.toArray(), ["$x"]);
    assert.equal(window.claim("$y"), true);
    window.unclaim("$y");
    assert.equal(window.has("$y"), false);
    assert.equal(window.claim("$y"), true, "an id given back can be claimed again");
  });

  it("stays exact when every id has the same hash (probing and deletion)", () => {
    const window = new IdWindow(50, () => 7);
    const ids = Array.from({ length: 200 }, (_, i) => `$same-${i}`);
    for (const id of ids) assert.equal(window.add(id), true);
    for (const [i, id] of ids.entries()) assert.equal(window.has(id), i >= 150, id);
    assert.deepEqual(window.toArray(), ids.slice(150));
  });

  it("matches a plain Set model through claims, commits, give-backs and evictions", () => {
    // Few distinct hashes, so runs of colliding ids form and are broken up by deletions.
    const window = new IdWindow(64, (id) => id.length % 5);
    const committed: string[] = [];
    const claimed = new Set<string>();
    let seed = 12345;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let step = 0; step < 20_000; step++) {
      const id = `$${"x".repeat(random(9))}${random(300)}`;
      const op = random(4);
      const known = committed.includes(id) || claimed.has(id);
      if (op === 0) {
        assert.equal(window.add(id), !known, `add ${id}`);
        if (!known) committed.push(id);
      } else if (op === 1) {
        assert.equal(window.claim(id), !known, `claim ${id}`);
        if (!known) claimed.add(id);
      } else if (claimed.size > 0) {
        const pick = [...claimed][random(claimed.size)] as string;
        claimed.delete(pick);
        if (op === 2) {
          window.commit(pick);
          committed.push(pick);
        } else window.unclaim(pick);
      }
      while (committed.length > 64) committed.shift();
      assert.equal(window.has(id), committed.includes(id) || claimed.has(id), `has ${id}`);
    }
    assert.deepEqual(window.toArray(), committed);
  });

  it("grows its table past the initial size and keeps every id findable", () => {
    const window = new IdWindow(2_500);
    const ids = Array.from({ length: 3_000 }, (_, i) => `$grow-${i}`);
    for (const id of ids) window.add(id);
    for (const [i, id] of ids.entries()) assert.equal(window.has(id), i >= 500, id);
    assert.equal(window.size, 2_500);
  });

  it("hashes with a per-process seed", () => {
    assert.notEqual(seededFnv1a(1)("$event"), seededFnv1a(2)("$event"));
    assert.equal(seededFnv1a(3)("$event"), seededFnv1a(3)("$event"));
  });
});
