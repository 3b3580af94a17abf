import { WebhookError } from "../ingress/errors.js";

/**
 * 503: the webhook could not be queued (the queue is not running, is full, or could not write
 * to disk). Nothing was accepted; the sender should retry later.
 */
export class DeliveryUnavailableError extends WebhookError {
  constructor(message: string) {
    super(503, "TRESTLE_QUEUE_UNAVAILABLE", message);
  }
}
