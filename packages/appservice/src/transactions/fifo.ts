/**
 * An array-backed queue with O(1) amortised `shift`. A busy room can hold thousands of queued
 * events, and `Array.prototype.shift` on a large array moves every element.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    // Drop the reference so a handled event can be garbage-collected before the queue empties.
    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head === this.items.length) {
      // Emptied in place: a room's queue empties after nearly every transaction.
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
