import { Router, type RouterContext, type RouterMiddleware } from "@koa/router";
import {
  type Appservice,
  bearerToken,
  createTokenCheck,
  ForbiddenError,
  isMatrixApiError,
  type Logger,
  MatrixConnectionError,
  MatrixError,
  MissingTokenError,
  NotFoundError,
  readJsonBody,
  UnrecognizedError,
} from "@trestle/appservice";
import { checkStatePower } from "../commands/power.js";
import { membershipOf } from "../dm.js";
import type { HookManager } from "../hooks/hook-manager.js";
import { HOOK_STATE_EVENT } from "../hooks/model.js";
import {
  hookView,
  InvalidParamError,
  parseActorBody,
  parseCreateBody,
  parseUpdateBody,
  toSettingsPatch,
  userIdParam,
} from "./validate.js";

export const PROVISIONING_PREFIX = "/provisioning/v1";
/** Provisioning bodies are a name and a few settings; an inline template is the largest part. */
export const DEFAULT_PROVISIONING_BODY_LIMIT_BYTES = 64 * 1024;

export interface ProvisioningRouterOptions {
  manager: HookManager;
  /** The shared secret automations send as `Authorization: Bearer <token>`. */
  token: string;
  logger: Logger;
  appservice: Appservice;
  maxBodyBytes?: number;
}

/**
 * The provisioning API for automation, under `/provisioning/v1`:
 *
 * - `GET    /rooms/:roomId/hooks`              → `{ hooks }`
 * - `POST   /rooms/:roomId/hooks`              → 201 `{ hook, url, signingSecret? }`
 * - `GET    /rooms/:roomId/hooks/:name`        → `{ hook }`
 * - `PATCH  /rooms/:roomId/hooks/:name`        → `{ hook, signingSecret? }`
 * - `DELETE /rooms/:roomId/hooks/:name`        → 204
 * - `POST   /rooms/:roomId/hooks/:name/rotate` → `{ hook, url }`
 *
 * Every request needs the bearer token (401 `M_MISSING_TOKEN` without, 403 `M_FORBIDDEN` when
 * wrong). `:roomId` may also be an alias. The bot must be joined to the room. A `userId` (in
 * the body, or `?userId=`) names the Matrix user the automation acts for, who must be joined
 * and have the power to send `org.trestle.webhook` state events. Errors are `{ errcode, error }`.
 * Hook URLs and signing secrets are in the responses that create them and never in a log.
 */
export function createProvisioningRouter(options: ProvisioningRouterOptions): Router {
  if (options.token.trim() === "") throw new Error("The provisioning API needs a token");
  const { manager, appservice, logger } = options;
  const limitBytes = options.maxBodyBytes ?? DEFAULT_PROVISIONING_BODY_LIMIT_BYTES;
  const tokenMatches = createTokenCheck(options.token);
  const router = new Router({ prefix: PROVISIONING_PREFIX });

  router.use(answerErrors(logger));
  router.use(async (ctx, next) => {
    const token = bearerToken(ctx.get("Authorization") || undefined);
    if (token === undefined) {
      throw new MissingTokenError("Missing token: send Authorization: Bearer <provisioning token>");
    }
    if (!tokenMatches(token)) throw new ForbiddenError("Wrong provisioning token");
    await next();
  });

  const readBody = (ctx: RouterContext, allowEmpty = false) => readJsonBody(ctx, { limitBytes, allowEmpty });

  /** The room of the request, resolved, with the bot joined to it. */
  const roomOf = async (ctx: RouterContext): Promise<string> => {
    const roomId = await resolveRoom(appservice, param(ctx, "roomId"));
    const membership = await membershipOf(appservice.botIntent, roomId, appservice.botUserId);
    if (membership === undefined) {
      throw new NotFoundError(
        `The bridge bot (${appservice.botUserId}) is not in room ${roomId}, or there is no such room: invite the bot first`,
      );
    }
    if (membership !== "join") {
      throw new ForbiddenError(
        `The bridge bot (${appservice.botUserId}) is not joined to room ${roomId} (its membership is "${membership}"): invite it and let it join`,
      );
    }
    return roomId;
  };

  /** Checks the user the automation acts for, if it named one; returns the acting user. */
  const authorise = async (
    ctx: RouterContext,
    roomId: string,
    fromBody?: string,
  ): Promise<string | undefined> => {
    const fromQuery = userIdParam(queryParam(ctx, "userId"), "The userId query parameter");
    if (fromBody !== undefined && fromQuery !== undefined && fromBody !== fromQuery) {
      throw new InvalidParamError("userId in the body and in the query string differ");
    }
    const userId = fromBody ?? fromQuery;
    if (userId === undefined) return undefined;
    const membership = await membershipOf(appservice.botIntent, roomId, userId);
    if (membership !== "join") throw new ForbiddenError(`${userId} is not a member of room ${roomId}`);
    const power = await checkStatePower(appservice.botIntent, roomId, userId, HOOK_STATE_EVENT);
    if (!power.allowed) {
      throw new ForbiddenError(
        `${userId} needs power level ${power.required} in room ${roomId} to manage webhooks, and has ${power.level}`,
      );
    }
    return userId;
  };

  const hooks = "/rooms/:roomId/hooks";
  const hook = `${hooks}/:name`;

  router.get(hooks, async (ctx) => {
    const roomId = await roomOf(ctx);
    ctx.body = { hooks: (await manager.list(roomId)).map(hookView) };
  });

  router.post(hooks, async (ctx) => {
    const request = parseCreateBody(await readBody(ctx));
    const roomId = await roomOf(ctx);
    const userId = await authorise(ctx, roomId, request.userId);
    const createdBy = userId ?? appservice.botUserId;
    let { record, url } = await manager.create(
      roomId,
      request.name,
      createdBy,
      toSettingsPatch(request.settings),
    );
    let signingSecret: string | undefined;
    if (request.signature) {
      signingSecret = await manager.setSignature(roomId, record.name, request.signature);
      record = await manager.get(roomId, record.name);
    }
    logger.info({ roomId, hook: record.name, userId }, "provisioning: webhook created");
    noStore(ctx);
    ctx.status = 201;
    ctx.body = { hook: hookView(record), url, ...(signingSecret === undefined ? {} : { signingSecret }) };
  });

  router.get(hook, async (ctx) => {
    const roomId = await roomOf(ctx);
    ctx.body = { hook: hookView(await manager.get(roomId, param(ctx, "name"))) };
  });

  router.patch(hook, async (ctx) => {
    const request = parseUpdateBody(await readBody(ctx));
    const roomId = await roomOf(ctx);
    const userId = await authorise(ctx, roomId, request.userId);
    const name = param(ctx, "name");
    let record = await manager.get(roomId, name);
    if (Object.keys(request.settings).length > 0) {
      record = await manager.update(roomId, name, toSettingsPatch(request.settings, record));
    }
    let signingSecret: string | undefined;
    if (request.signature !== undefined) {
      signingSecret = await manager.setSignature(roomId, name, request.signature);
      record = await manager.get(roomId, name);
    }
    logger.info({ roomId, hook: name, userId }, "provisioning: webhook updated");
    if (signingSecret !== undefined) noStore(ctx);
    ctx.body = { hook: hookView(record), ...(signingSecret === undefined ? {} : { signingSecret }) };
  });

  router.delete(hook, async (ctx) => {
    const roomId = await roomOf(ctx);
    const userId = await authorise(ctx, roomId);
    const name = param(ctx, "name");
    await manager.remove(roomId, name);
    logger.info({ roomId, hook: name, userId }, "provisioning: webhook removed");
    ctx.status = 204;
  });

  router.post(`${hook}/rotate`, async (ctx) => {
    const bodyUser = parseActorBody(await readBody(ctx, true));
    const roomId = await roomOf(ctx);
    const userId = await authorise(ctx, roomId, bodyUser);
    const name = param(ctx, "name");
    const { record, url } = await manager.rotate(roomId, name);
    logger.info({ roomId, hook: name, userId }, "provisioning: webhook URL rotated");
    noStore(ctx);
    ctx.body = { hook: hookView(record), url };
  });

  // Reached only when no route above has the method: a JSON 405 rather than koa's text one.
  const allowed: [string, string][] = [
    [hooks, "GET, POST"],
    [hook, "GET, PATCH, DELETE"],
    [`${hook}/rotate`, "POST"],
  ];
  for (const [path, methods] of allowed) {
    router.all(path, (ctx) => {
      ctx.set("Allow", methods);
      throw new UnrecognizedError(405, `Method ${ctx.method} is not allowed here`);
    });
  }

  return router;
}

function param(ctx: RouterContext, name: string): string {
  const value = ctx.params[name];
  if (value === undefined || value === "") throw new InvalidParamError(`Missing ${name} in the path`);
  return value;
}

function queryParam(ctx: RouterContext, name: string): string | undefined {
  const value = ctx.query[name];
  if (Array.isArray(value))
    throw new InvalidParamError(`The ${name} query parameter is given more than once`);
  return value;
}

/** A room ID as given, or the room an alias points to. */
async function resolveRoom(appservice: Appservice, idOrAlias: string): Promise<string> {
  if (idOrAlias.startsWith("!") && idOrAlias.length <= 255) return idOrAlias;
  if (!/^#[^:\s]+:\S+$/.test(idOrAlias)) {
    throw new InvalidParamError("roomId must be a room ID (!…) or a room alias (#…:server)");
  }
  try {
    return (await appservice.client.resolveAlias(idOrAlias)).room_id;
  } catch (err) {
    if (isMatrixApiError(err, "M_NOT_FOUND")) throw new NotFoundError(`No room has the alias ${idOrAlias}`);
    throw err;
  }
}

/** The response carries a secret: no cache may keep it. */
function noStore(ctx: RouterContext): void {
  ctx.set("Cache-Control", "no-store");
}

/**
 * Every failure as `{ errcode, error }`: the hook manager's and validation errors keep their
 * status; a homeserver failure is a 502 (its status is not ours to pass on); anything else is a
 * logged 500. The log has the method and route, never a body.
 */
function answerErrors(logger: Logger): RouterMiddleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const error = toHttpError(err);
      const where = { method: ctx.method, path: ctx.path, status: error.httpStatus, errcode: error.errcode };
      if (error.httpStatus >= 500) logger.error({ ...where, err }, "provisioning request failed");
      else logger.warn(where, `provisioning request refused: ${error.message}`);
      ctx.status = error.httpStatus;
      ctx.body = { errcode: error.errcode, error: error.message };
      // The rest of the body was never read; closing is the only way to resync the connection.
      if (error.httpStatus === 413) ctx.set("Connection", "close");
    }
  };
}

function toHttpError(err: unknown): MatrixError {
  if (isMatrixApiError(err)) {
    return new MatrixError(502, "M_UNKNOWN", `The homeserver refused a request (${err.errcode})`);
  }
  if (err instanceof MatrixConnectionError)
    return new MatrixError(502, "M_UNKNOWN", "The homeserver is unreachable");
  if (err instanceof MatrixError) return err;
  return new MatrixError(500, "M_UNKNOWN", "Internal server error");
}
