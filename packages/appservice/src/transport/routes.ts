import type { ParsedUrlQuery } from "node:querystring";
import type { Router, RouterContext } from "@koa/router";
import { BadJsonError, MatrixError, NotFoundError } from "../errors.js";
import type { Logger } from "../logging.js";
import { parseTransactionDetailed } from "../transactions/parse.js";
import { readJsonBody, readJsonBodyWithBytes } from "./body.js";
import type { AppserviceHttpHandlers, ThirdPartyQuery } from "./handlers.js";
import type { AppserviceHttpMetrics, EventKind } from "./metrics.js";

export const APPSERVICE_PREFIX = "/_matrix/app/v1";
const LEGACY_THIRDPARTY_PREFIX = "/_matrix/app/unstable";

/** Paths that carry the homeserver's hs_token: everything under `/_matrix/app/`. */
export function isAppservicePath(path: string, legacyRoutes: boolean): boolean {
  return path.startsWith("/_matrix/app/") || (legacyRoutes && /^\/(transactions|users|rooms)\//.test(path));
}

export interface AppserviceRouteOptions {
  handlers: AppserviceHttpHandlers;
  logger: Logger;
  metrics: AppserviceHttpMetrics;
  maxBodyBytes: number;
  legacyRoutes: boolean;
}

/** Registers the homeserver → appservice endpoints (spec "Application Service API") on `router`. */
export function addAppserviceRoutes(router: Router, options: AppserviceRouteOptions): void {
  const { handlers, logger: log, metrics, maxBodyBytes } = options;
  // Legacy aliases (spec "Legacy routes"); Synapse stopped falling back to them in 1.90.
  const paths = (v1Suffix: string, legacyPath: string): string[] =>
    options.legacyRoutes ? [APPSERVICE_PREFIX + v1Suffix, legacyPath] : [APPSERVICE_PREFIX + v1Suffix];
  const thirdparty = (suffix: string) =>
    paths(`/thirdparty${suffix}`, `${LEGACY_THIRDPARTY_PREFIX}/thirdparty${suffix}`);

  router.put(paths("/transactions/:txnId", "/transactions/:txnId"), async (ctx) => {
    const txnId = param(ctx, "txnId");
    const { bytes, value } = await readJsonBodyWithBytes(ctx, { limitBytes: maxBodyBytes });
    const { txn, eventsAsSent } = parseTransactionDetailed(value, log, { txnId });
    metrics.transactions.inc();
    countEvents(metrics, "room", txn.events.length);
    countEvents(metrics, "ephemeral", txn.ephemeral.length);
    countEvents(metrics, "to_device", txn.toDevice.length);
    countEvents(metrics, "invalid", txn.dropped);
    await handlers.onTransaction(txnId, txn, { body: bytes, eventsAsSent });
    log.debug(
      { txnId, events: txn.events.length, ephemeral: txn.ephemeral.length, toDevice: txn.toDevice.length },
      "Transaction accepted",
    );
    answerEmptyObject(ctx);
  });

  router.get(paths("/users/:userId", "/users/:userId"), async (ctx) => {
    answerExists(await handlers.onUserQuery(param(ctx, "userId")), ctx, "User");
  });

  router.get(paths("/rooms/:roomAlias", "/rooms/:roomAlias"), async (ctx) => {
    answerExists(await handlers.onAliasQuery(param(ctx, "roomAlias")), ctx, "Room alias");
  });

  router.get(thirdparty("/protocol/:protocol"), async (ctx) => {
    const protocol = param(ctx, "protocol");
    const result = (await handlers.getProtocol?.(protocol)) ?? null;
    if (result === null) throw new NotFoundError(`Unknown protocol '${protocol}'`);
    ctx.body = result;
  });

  router.get(thirdparty("/location/:protocol"), async (ctx) => {
    const protocol = param(ctx, "protocol");
    answerList(ctx, await handlers.getLocations?.(protocol, searchFields(ctx.query)), "locations");
  });

  router.get(thirdparty("/user/:protocol"), async (ctx) => {
    const protocol = param(ctx, "protocol");
    answerList(ctx, await handlers.getUsers?.(protocol, searchFields(ctx.query)), "users");
  });

  router.get(thirdparty("/location"), async (ctx) => {
    const alias = requiredQuery(ctx.query, "alias");
    answerList(ctx, await handlers.getLocationsByAlias?.(alias), "locations");
  });

  router.get(thirdparty("/user"), async (ctx) => {
    const userId = requiredQuery(ctx.query, "userid");
    answerList(ctx, await handlers.getUsersByUserId?.(userId), "users");
  });

  router.post(`${APPSERVICE_PREFIX}/ping`, async (ctx) => {
    const body = await readJsonBody(ctx, { limitBytes: maxBodyBytes, allowEmpty: true });
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new BadJsonError("Ping body must be a JSON object");
    }
    const transactionId = (body as { transaction_id?: unknown }).transaction_id;
    if (transactionId !== undefined && typeof transactionId !== "string") {
      throw new BadJsonError("Ping field 'transaction_id' must be a string");
    }
    await handlers.onPing?.(transactionId);
    log.debug({ transactionId }, "Homeserver ping");
    ctx.body = {};
  });
}

/** `{}`, typed by hand: koa's content-type lookup for an object body costs more than the rest of the answer. */
function answerEmptyObject(ctx: RouterContext): void {
  ctx.set("Content-Type", "application/json; charset=utf-8");
  ctx.body = "{}";
}

function countEvents(metrics: AppserviceHttpMetrics, kind: EventKind, count: number): void {
  if (count > 0) metrics.events.inc({ kind }, count);
}

function param(ctx: RouterContext, name: string): string {
  const value = ctx.params[name];
  // The route pattern guarantees it; a miss is a bug in this file.
  if (value === undefined) throw new Error(`Route has no parameter '${name}'`);
  return value;
}

function answerExists(exists: boolean, ctx: RouterContext, what: string): void {
  if (!exists) throw new NotFoundError(`${what} does not exist`);
  ctx.body = {};
}

/** The spec answers 404 when a third-party lookup finds nothing, or is not supported. */
function answerList(ctx: RouterContext, results: unknown[] | undefined, what: string): void {
  if (results === undefined || results.length === 0) throw new NotFoundError(`No third-party ${what} found`);
  ctx.body = results;
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function requiredQuery(query: ParsedUrlQuery, name: string): string {
  const value = firstValue(query[name]);
  if (value === undefined) throw new MatrixError(400, "M_MISSING_PARAM", `Missing query parameter '${name}'`);
  return value;
}

/** The third-party search fields: every query parameter except the legacy access_token. */
function searchFields(query: ParsedUrlQuery): ThirdPartyQuery {
  const fields: [string, string][] = [];
  for (const [key, value] of Object.entries(query)) {
    const first = firstValue(value);
    if (key !== "access_token" && first !== undefined) fields.push([key, first]);
  }
  return Object.fromEntries(fields);
}
