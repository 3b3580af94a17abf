import assert from "node:assert/strict";
import { WebhookError } from "../../src/ingress/errors.js";

/** Runs `fn`, asserts it throws a WebhookError with this status and errcode, and returns it. */
export function expectWebhookError(fn: () => unknown, httpStatus: number, errcode: string): WebhookError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof WebhookError, `expected a WebhookError, got ${String(caught)}`);
  assert.equal(caught.httpStatus, httpStatus, caught.message);
  assert.equal(caught.errcode, errcode, caught.message);
  assert.deepEqual(caught.toJSON(), { errcode, error: caught.message, ...caught.extra });
  return caught;
}
