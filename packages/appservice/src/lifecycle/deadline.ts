import { performance } from "node:perf_hooks";

/**
 * One time budget shared by the steps of a shutdown, so that their waits add up to at most the
 * budget instead of each taking its own full timeout (the CLI kills the process after 10 s).
 */
export class Deadline {
  private readonly end: number;

  constructor(readonly budgetMs: number) {
    this.end = performance.now() + Math.max(0, budgetMs);
  }

  /** Milliseconds left, never negative. */
  remaining(): number {
    return Math.max(0, this.end - performance.now());
  }

  /** What is left after keeping `reserveMs` back for the steps that follow. */
  remainingAfter(reserveMs: number): number {
    return Math.max(0, this.remaining() - reserveMs);
  }

  /** Whether `promise` settled before the deadline (or `limitMs`, if sooner); it is not cancelled. */
  async within(promise: Promise<unknown>, limitMs = this.remaining()): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.min(limitMs, this.remaining()));
    });
    try {
      return await Promise.race([
        promise.then(
          () => true,
          () => true,
        ),
        expired,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
