import assert from "node:assert/strict";
import { Fifo } from "../../src/transactions/fifo.js";

describe("Fifo", () => {
  it("hands items out in order through refills, compactions and a large backlog", () => {
    const fifo = new Fifo<number>();
    const model: number[] = [];
    let next = 0;
    let seed = 7;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let step = 0; step < 200_000; step++) {
      // Phases of growth (past the kept capacity and the compaction threshold) and of draining.
      const growing = Math.floor(step / 20_000) % 2 === 0;
      if (random(10) < (growing ? 7 : 3)) {
        fifo.push(next);
        model.push(next++);
      } else {
        assert.equal(fifo.shift(), model.shift());
      }
      assert.equal(fifo.length, model.length);
    }
    while (model.length > 0) assert.equal(fifo.shift(), model.shift());
    assert.equal(fifo.shift(), undefined);
    assert.equal(fifo.length, 0);
    fifo.push(-1);
    assert.equal(fifo.shift(), -1, "usable again once emptied");
  });
});
