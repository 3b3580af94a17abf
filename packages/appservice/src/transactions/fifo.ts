/** Above this many slots, an emptied queue gives its array back instead of keeping it for reuse. */
const KEPT_CAPACITY = 1_024;

/**
 * An array-backed queue with O(1) amortised `shift`. A busy room can hold thousands of queued
 * events, and `Array.prototype.shift` on a large array moves every element. A room's queue
 * empties after nearly every transaction and fills again with the next: the array is kept (up to
 * {@link KEPT_CAPACITY} slots) so that refilling it allocates nothing.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private tail = 0;

  get length(): number {
    return this.tail - this.head;
  }

  push(item: T): void {
    if (this.tail < this.items.length) this.items[this.tail] = item;
    else this.items.push(item);
    this.tail += 1;
  }

  shift(): T | undefined {
    if (this.head === this.tail) return undefined;
    const item = this.items[this.head];
    // Drop the reference so a handled event can be garbage-collected before the queue empties.
    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head === this.tail) {
      this.head = 0;
      this.tail = 0;
      if (this.items.length > KEPT_CAPACITY) this.items = [];
    } else if (this.head >= KEPT_CAPACITY && this.head * 2 >= this.tail) {
      this.items = this.items.slice(this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    return item;
  }
}
