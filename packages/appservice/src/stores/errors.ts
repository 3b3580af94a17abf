/** Base class for failures of a persistent store, so callers can tell them from handler bugs. */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An operation was attempted after `close()`: a shutdown-ordering bug in the caller. */
export class StoreClosedError extends StoreError {
  constructor(readonly store: string) {
    super(`Store "${store}" is closed`);
  }
}

/**
 * A datafile holds more unreadable lines than a crash can explain (a crash cuts short at most the
 * last append). Refusing to start is safer than silently dropping queued work or mappings.
 */
export class StoreCorruptError extends StoreError {
  constructor(
    readonly filename: string,
    /** 1-based line numbers that are not valid JSON. */
    readonly corruptLines: number[],
    readonly totalLines: number,
    readonly maxCorruptLines: number,
  ) {
    super(
      `${filename}: ${corruptLines.length} of ${totalLines} lines are corrupt (at most ${maxCorruptLines} tolerated); ` +
        "refusing to load it. Restore it from a backup, or remove the bad lines by hand if their loss is acceptable",
    );
  }
}

/** A value handed to a store cannot be stored as JSON (undefined, a function, a cycle...). */
export class StoreValueError extends StoreError {}
