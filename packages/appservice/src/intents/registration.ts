import { LRUCache } from "lru-cache";

export interface RegistrationTrackerOptions {
  /** User IDs remembered as registered. Default 100,000; only strings, so cheap. */
  max?: number;
}

/**
 * Remembers which users are known to be registered and coalesces concurrent registrations of
 * the same user into one request. Outlives the intents themselves: an intent evicted from the
 * intent cache and created again does not register again.
 */
export class RegistrationTracker {
  private readonly registered: LRUCache<string, true>;
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(options: RegistrationTrackerOptions = {}) {
    this.registered = new LRUCache({ max: options.max ?? 100_000 });
  }

  isRegistered(userId: string): boolean {
    return this.registered.has(userId);
  }

  markRegistered(userId: string): void {
    this.registered.set(userId, true);
  }

  /** Forget a user, e.g. when the homeserver says it does not know them after all. */
  forget(userId: string): void {
    this.registered.delete(userId);
  }

  /**
   * Runs `register` unless the user is known to be registered or a registration is already
   * in flight, in which case that one is awaited. A failure is not remembered.
   */
  ensure(userId: string, register: () => Promise<void>): Promise<void> {
    if (this.registered.has(userId)) return Promise.resolve();
    const pending = this.inflight.get(userId);
    if (pending) return pending;
    const attempt = register()
      .then(() => this.markRegistered(userId))
      .finally(() => this.inflight.delete(userId));
    this.inflight.set(userId, attempt);
    return attempt;
  }
}
