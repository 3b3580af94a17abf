import { WebhookError } from "../ingress/errors.js";

/** 405: the hook exists but does not take this method (GET unless `allowGet`). */
export class MethodNotAllowedError extends WebhookError {
  constructor(
    method: string,
    readonly allowed: readonly string[],
    hint = allowed.includes("GET")
      ? ""
      : "; GET is off for this webhook (a room admin can allow it), as link previews would fire it",
  ) {
    super(405, "M_UNRECOGNIZED", `Method ${method} is not allowed here: use ${allowed.join(" or ")}${hint}`);
  }
}

/** 404: a path under /webhooks that is no webhook URL. */
export class UnknownWebhookPathError extends WebhookError {
  constructor() {
    super(404, "M_UNRECOGNIZED", "Not a webhook URL: POST to /webhooks/v1/<hook id>/<secret>");
  }
}

/** 500: the hook's stored settings cannot be used (a signature check without a signing secret). */
export class HookMisconfiguredError extends WebhookError {
  constructor(message: string) {
    super(500, "TRESTLE_HOOK_MISCONFIGURED", message);
  }
}

/** 502 with `?wait=true`: the message was given up on; it is kept as failed, not retried. */
export class DeliveryFailedError extends WebhookError {
  constructor(reason: string, jobId: string) {
    super(502, "TRESTLE_DELIVERY_FAILED", `The message could not be delivered: ${reason}`, { id: jobId });
  }
}

/** 502 with `?wait=true`: not delivered yet, but still queued; resending would post it twice. */
export class DeliveryPendingError extends WebhookError {
  constructor(detail: string, jobId: string) {
    super(
      502,
      "TRESTLE_DELIVERY_PENDING",
      `${detail}. The message stays queued and will be retried until it is delivered: do not resend it`,
      { id: jobId },
    );
  }
}
