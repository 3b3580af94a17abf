/**
 * Runs tasks one after another per key, in the order `run` was called, while different keys
 * proceed in parallel. A failed task does not stop the ones queued behind it. Keys with no
 * pending work hold no memory, so one queue can serve every room a bridge ever sees.
 */
export class KeyedSerialQueue {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(() => task());
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with queued or running work. */
  get activeKeys(): number {
    return this.tails.size;
  }
}
