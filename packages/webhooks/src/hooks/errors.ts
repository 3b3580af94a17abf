import { MatrixError } from "@trestle/appservice";

/** Hook management failures; the status and errcode serve the provisioning API, the message the room. */
export class HookError extends MatrixError {}

export class HookNotFoundError extends HookError {
  constructor(name: string) {
    super(404, "M_NOT_FOUND", `No webhook named "${name}" in this room`);
  }
}

export class UnknownHookError extends HookError {
  constructor() {
    super(404, "M_NOT_FOUND", "Unknown webhook");
  }
}

export class WrongSecretError extends HookError {
  constructor() {
    super(403, "M_FORBIDDEN", "Wrong webhook secret");
  }
}

/**
 * The hook's stored secret hash cannot be checked (malformed, or made with a pepper the server no
 * longer has): a fault of the bridge's data, not of the sender, and one a new URL cures.
 */
export class HookSecretUnusableError extends HookError {
  constructor(
    readonly hookName: string,
    readonly reason: string,
  ) {
    super(
      500,
      "TRESTLE_HOOK_MISCONFIGURED",
      `This webhook's stored secret cannot be checked; a room admin can issue a new URL with "rotate ${hookName}"`,
    );
  }
}

export class HookExistsError extends HookError {
  constructor(name: string) {
    super(409, "TRESTLE_HOOK_EXISTS", `A webhook named "${name}" already exists in this room`);
  }
}

export class InvalidHookSettingError extends HookError {
  constructor(message: string) {
    super(400, "M_INVALID_PARAM", message);
  }
}

/** The bot may not write the hook's state event into the room. */
export class BotLacksPowerError extends HookError {
  constructor(botUserId: string) {
    super(
      403,
      "TRESTLE_BOT_POWER",
      `I (${botUserId}) need permission to send "org.trestle.webhook" state events here; raise my power level and try again`,
    );
  }
}
