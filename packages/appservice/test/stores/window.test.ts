import assert from "node:assert/strict";
import { type IdClaim, IdWindow, seededFnv1a } from "../../src/stores/journal/window.js";

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
    const x = window.claim("$x");
    assert.notEqual(x, undefined);
    assert.equal(window.claim("$x"), undefined, "a second claim of a running event fails");
    assert.equal(window.add("$x"), false);
    assert.equal(window.has("$x"), true);
    assert.deepEqual(window.toArray(), []);
    window.commit("$x", x as IdClaim);
    assert.deepEqual(window.toArray(), ["$x"]);
    assert.equal(window.size, 1);
    const y = window.claim("$y");
    window.unclaim("$y", y as IdClaim);
    assert.equal(window.has("$y"), false);
    assert.notEqual(window.claim("$y"), undefined, "an id given back can be claimed again");
  });

  it("keeps a claim whose slot came round again, and takes it in when committed", () => {
    const window = new IdWindow(3);
    const slow = window.claim("$slow") as IdClaim;
    for (const id of ["$1", "$2", "$3", "$4"]) window.add(id);
    assert.equal(window.has("$slow"), true, "still claimed although its slot was reused");
    assert.equal(window.claim("$slow"), undefined);
    window.commit("$slow", slow);
    assert.deepEqual(window.toArray(), ["$3", "$4", "$slow"], "committed as the newest");
    const gone = window.claim("$gone") as IdClaim;
    for (const id of ["$5", "$6", "$7"]) window.add(id);
    window.unclaim("$gone", gone);
    assert.equal(window.has("$gone"), false);
  });

  it("stays exact when every id has the same hash (probing and deletion)", () => {
    const window = new IdWindow(50, () => 7);
    const ids = Array.from({ length: 200 }, (_, i) => `$same-${i}`);
    for (const id of ids) assert.equal(window.add(id), true);
    for (const [i, id] of ids.entries()) assert.equal(window.has(id), i >= 150, id);
    assert.deepEqual(window.toArray(), ids.slice(150));
  });

  it("matches a simple model through claims, commits, give-backs and evictions", () => {
    // Few distinct hashes, so long runs of colliding pairs form, stale ones among them, and the
    // table is rebuilt every 64 placements or so (about 150 times).
    const capacity = 64;
    const window = new IdWindow(capacity, (id) => id.length % 5);
    // The model: a ring of the last `capacity` ids claimed or added, with their state, and the
    // claims evicted from it while still claimed.
    type Entry = { id: string; state: "claimed" | "committed" | "free" };
    const ring: Entry[] = [];
    const late = new Set<string>();
    const claims = new Map<string, IdClaim>();
    const place = (entry: Entry) => {
      ring.push(entry);
      if (ring.length > capacity) {
        const evicted = ring.shift() as Entry;
        if (evicted.state === "claimed") late.add(evicted.id);
      }
    };
    const known = (id: string) => late.has(id) || ring.some((e) => e.id === id && e.state !== "free");
    let seed = 12345;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let step = 0; step < 20_000; step++) {
      const id = `$${"x".repeat(random(9))}${random(300)}`;
      const op = random(4);
      if (op === 0) {
        const expected = !known(id);
        assert.equal(window.add(id), expected, `add ${id}`);
        if (expected) place({ id, state: "committed" });
      } else if (op === 1) {
        const expected = !known(id);
        const claim = window.claim(id);
        assert.equal(claim !== undefined, expected, `claim ${id}`);
        if (claim !== undefined) {
          claims.set(id, claim);
          place({ id, state: "claimed" });
        }
      } else if (claims.size > 0) {
        const [pick, claim] = [...claims][random(claims.size)] as [string, IdClaim];
        claims.delete(pick);
        const entry = ring.find((e) => e.id === pick && e.state === "claimed");
        if (op === 2) {
          window.commit(pick, claim);
          if (entry) entry.state = "committed";
          else {
            late.delete(pick);
            place({ id: pick, state: "committed" });
          }
        } else {
          window.unclaim(pick, claim);
          if (entry) entry.state = "free";
          else late.delete(pick);
        }
      }
      assert.equal(window.has(id), known(id), `has ${id}`);
    }
    const committed = ring.filter((e) => e.state === "committed").map((e) => e.id);
    assert.deepEqual(window.toArray(), committed);
    assert.equal(window.size, committed.length);
  });

  it("hashes a reference-hash id by its first 16 characters, a server-made one whole, and tells all apart", () => {
    const hash = seededFnv1a(5);
    const prefix = "$AbCdEfGhIjKlMnO";
    const a = `${prefix}${"p".repeat(28)}`;
    const b = `${prefix}${"q".repeat(28)}`;
    assert.equal(hash(a), hash(b), "the characters after the 16th of a reference hash are not hashed");
    assert.notEqual(hash("$1700000000000001xyz:example.org"), hash("$1700000000000001xyz:example.net"));
    // Ids that share a hash are still told apart by the strings themselves.
    const window = new IdWindow(10, hash);
    assert.notEqual(window.claim(a), undefined);
    assert.notEqual(window.claim(b), undefined, "a different id with the same hash is not a duplicate");
    assert.equal(window.claim(a), undefined);
    assert.equal(window.has(b), true);
    assert.equal(window.has(`${prefix}${"r".repeat(28)}`), false);
  });

  it("hashes with a per-process seed", () => {
    assert.notEqual(seededFnv1a(1)("$event"), seededFnv1a(2)("$event"));
    assert.equal(seededFnv1a(3)("$event"), seededFnv1a(3)("$event"));
  });
});
