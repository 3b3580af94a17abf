import { LRUCache } from "lru-cache";
import type { HookRecord } from "../hooks/model.js";
import type { TemplateError } from "../rendering/errors.js";

export const DEFAULT_NOTICE_INTERVAL_MS = 10 * 60_000;

export interface TemplateErrorNoticesOptions {
  /** One notice per hook and error in this window (default 10 minutes). */
  intervalMs?: number;
  /** Milliseconds clock; tests pass a fake one. */
  now?: () => number;
  /** Distinct (hook, error) pairs remembered (default 1,000). */
  maxEntries?: number;
}

/**
 * Decides when a room hears about its hook's broken template: once per hook and error per
 * interval, so a busy CI does not bury the room in identical notices.
 */
export class TemplateErrorNotices {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly lastSent: LRUCache<string, number>;

  constructor(options: TemplateErrorNoticesOptions = {}) {
    this.intervalMs = options.intervalMs ?? DEFAULT_NOTICE_INTERVAL_MS;
    this.now = options.now ?? Date.now;
    this.lastSent = new LRUCache({ max: options.maxEntries ?? 1_000 });
  }

  /** True (and remembered) when this error of this hook was not announced within the interval. */
  claim(hookId: string, error: TemplateError): boolean {
    const key = `${hookId}\n${error.template ?? ""}\n${error.message}`;
    const now = this.now();
    const last = this.lastSent.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.lastSent.set(key, now);
    return true;
  }
}

/** The notice text: names the hook, the template and the problem (with its line). */
export function templateErrorNotice(hook: Pick<HookRecord, "name">, error: TemplateError): string {
  const which = error.template && error.template !== "inline" ? `template "${error.template}"` : "template";
  return (
    `Webhook "${hook.name}": its ${which} failed (${error.message}), ` +
    "so the message above was shown with the generic template instead. Fix or change the webhook's template."
  );
}
