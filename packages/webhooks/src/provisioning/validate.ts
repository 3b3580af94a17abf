import { BadJsonError, isJsonObject, type JsonObject, MatrixError } from "@trestle/appservice";
import {
  avatarUrlProblem,
  displayNameProblem,
  isSignatureScheme,
  mergeSender,
  normalizeTemplate,
  type SenderPatch,
  SIGNATURE_SCHEMES,
} from "../commands/settings.js";
import type { HookMsgtype, HookRecord, HookSettings } from "../hooks/model.js";
import type { SignatureScheme } from "../ingress/signatures.js";

/**
 * Request bodies of the provisioning API, checked field by field. Errors name the field:
 * 400 `M_BAD_JSON` for a wrong shape or type, `M_INVALID_PARAM` for a well-typed but
 * unacceptable value, `M_MISSING_PARAM` for a required field left out.
 */

export class InvalidParamError extends MatrixError {
  constructor(message: string) {
    super(400, "M_INVALID_PARAM", message);
  }
}

export class MissingParamError extends MatrixError {
  constructor(message: string) {
    super(400, "M_MISSING_PARAM", message);
  }
}

/** Settings as the API takes them; `rateLimit: null` means the bridge's default. */
export interface SettingsInput {
  template?: string;
  msgtype?: HookMsgtype;
  sender?: SenderPatch;
  allowSenderOverride?: boolean;
  allowGet?: boolean;
  wait?: boolean;
  rateLimit?: HookSettings["rateLimit"] | null;
}

export interface CreateHookRequest {
  name: string;
  settings: SettingsInput;
  /** Turn signature checks on at once; the signing secret comes back in the response. */
  signature?: SignatureScheme | null;
  /** The Matrix user the automation acts for; must be allowed to manage the room's hooks. */
  userId?: string;
}

export interface UpdateHookRequest {
  settings: SettingsInput;
  signature?: SignatureScheme | null;
  userId?: string;
}

const SETTINGS_FIELDS = [
  "template",
  "msgtype",
  "sender",
  "allowSenderOverride",
  "allowGet",
  "wait",
  "rateLimit",
] as const;

const USER_ID = /^@[^:\s]+:\S+$/;

function expectObject(value: unknown, what: string, allowed: readonly string[]): JsonObject {
  if (!isJsonObject(value)) throw new BadJsonError(`${what} must be a JSON object`);
  const unknown = Object.keys(value).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    throw new BadJsonError(
      `Unknown field ${JSON.stringify(unknown)} in ${what}; the fields are ${allowed.join(", ")}`,
    );
  }
  return value;
}

function has(body: JsonObject, key: string): boolean {
  return Object.hasOwn(body, key) && body[key] !== undefined;
}

function boolean(body: JsonObject, key: string): boolean | undefined {
  if (!has(body, key)) return undefined;
  const value = body[key];
  if (typeof value !== "boolean") throw new BadJsonError(`${key} must be true or false`);
  return value;
}

function nonEmptyString(value: unknown, field: string): string {
  if (typeof value !== "string") throw new BadJsonError(`${field} must be a string`);
  if (value.trim() === "") throw new InvalidParamError(`${field} must not be empty`);
  return value;
}

/** A Matrix user ID, or undefined when absent. */
export function userIdParam(value: unknown, field = "userId"): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new BadJsonError(`${field} must be a string`);
  if (!USER_ID.test(value)) throw new InvalidParamError(`${field} must be a Matrix user ID (@user:server)`);
  return value;
}

function senderPatch(value: unknown): SenderPatch {
  const input = expectObject(value, "sender", ["displayName", "avatarUrl"]);
  const patch: SenderPatch = {};
  for (const key of ["displayName", "avatarUrl"] as const) {
    if (!Object.hasOwn(input, key) || input[key] === undefined) continue;
    const field = input[key];
    if (field === null) {
      patch[key] = null;
      continue;
    }
    if (typeof field !== "string") throw new BadJsonError(`sender.${key} must be a string or null`);
    const problem = key === "displayName" ? displayNameProblem(field) : avatarUrlProblem(field);
    if (problem) throw new InvalidParamError(`sender.${key}: ${problem}`);
    patch[key] = field;
  }
  return patch;
}

function rateLimit(value: unknown): HookSettings["rateLimit"] | null {
  if (value === null) return null;
  const input = expectObject(value, "rateLimit", ["perMinute", "burst"]);
  const { perMinute, burst } = input;
  if (typeof perMinute !== "number") throw new BadJsonError("rateLimit.perMinute must be a number");
  if (typeof burst !== "number") throw new BadJsonError("rateLimit.burst must be a number");
  if (!(perMinute > 0 && Number.isFinite(perMinute))) {
    throw new InvalidParamError("rateLimit.perMinute must be greater than 0");
  }
  if (!(Number.isInteger(burst) && burst >= 1)) {
    throw new InvalidParamError("rateLimit.burst must be a whole number, at least 1");
  }
  return { perMinute, burst };
}

function signature(value: unknown): SignatureScheme | null {
  if (value === null || isSignatureScheme(value)) return value;
  throw new InvalidParamError(`signature must be one of ${SIGNATURE_SCHEMES.join(", ")}, or null`);
}

function settingsInput(body: JsonObject): SettingsInput {
  const settings: SettingsInput = {};
  if (has(body, "template")) settings.template = normalizeTemplate(nonEmptyString(body.template, "template"));
  if (has(body, "msgtype")) {
    const msgtype = body.msgtype;
    if (msgtype !== "m.text" && msgtype !== "m.notice") {
      throw new InvalidParamError("msgtype must be m.text or m.notice");
    }
    settings.msgtype = msgtype;
  }
  if (has(body, "sender")) settings.sender = senderPatch(body.sender);
  for (const key of ["allowSenderOverride", "allowGet", "wait"] as const) {
    const value = boolean(body, key);
    if (value !== undefined) settings[key] = value;
  }
  if (Object.hasOwn(body, "rateLimit") && body.rateLimit !== undefined) {
    settings.rateLimit = rateLimit(body.rateLimit);
  }
  return settings;
}

export function parseCreateBody(value: unknown): CreateHookRequest {
  const body = expectObject(value, "The body", ["name", ...SETTINGS_FIELDS, "signature", "userId"]);
  if (!has(body, "name")) throw new MissingParamError("name is required");
  const request: CreateHookRequest = {
    name: nonEmptyString(body.name, "name"),
    settings: settingsInput(body),
  };
  if (has(body, "signature")) request.signature = signature(body.signature);
  const userId = userIdParam(body.userId);
  if (userId !== undefined) request.userId = userId;
  return request;
}

export function parseUpdateBody(value: unknown): UpdateHookRequest {
  const body = expectObject(value, "The body", [...SETTINGS_FIELDS, "signature", "userId"]);
  const request: UpdateHookRequest = { settings: settingsInput(body) };
  if (has(body, "signature")) request.signature = signature(body.signature);
  const userId = userIdParam(body.userId);
  if (userId !== undefined) request.userId = userId;
  if (Object.keys(request.settings).length === 0 && request.signature === undefined) {
    throw new MissingParamError(
      `Nothing to change: give at least one of ${SETTINGS_FIELDS.join(", ")}, signature`,
    );
  }
  return request;
}

/** A body with nothing but an optional `userId` (rotate). */
export function parseActorBody(value: unknown): string | undefined {
  return userIdParam(expectObject(value, "The body", ["userId"]).userId);
}

/** The settings to hand HookManager: a sender patch merged onto `current`, `null`s removed. */
export function toSettingsPatch(input: SettingsInput, current?: HookRecord): Partial<HookSettings> {
  const { sender, rateLimit: limit, ...rest } = input;
  const patch: Partial<HookSettings> = { ...rest };
  if (sender !== undefined) patch.sender = mergeSender(current?.sender ?? {}, sender);
  if (limit !== undefined) patch.rateLimit = limit ?? undefined;
  return patch;
}

/** A hook as the API shows it: an allow-list of fields, so no secret or hash can slip in. */
export type HookView = Pick<
  HookRecord,
  | "id"
  | "name"
  | "roomId"
  | "template"
  | "msgtype"
  | "sender"
  | "allowSenderOverride"
  | "allowGet"
  | "wait"
  | "createdBy"
  | "createdAt"
  | "updatedAt"
> & {
  signature: SignatureScheme | null;
  rateLimit: NonNullable<HookSettings["rateLimit"]> | null;
};

export function hookView(record: HookRecord): HookView {
  const sender: HookView["sender"] = {};
  if (record.sender.displayName !== undefined) sender.displayName = record.sender.displayName;
  if (record.sender.avatarUrl !== undefined) sender.avatarUrl = record.sender.avatarUrl;
  return {
    id: record.id,
    name: record.name,
    roomId: record.roomId,
    template: record.template,
    msgtype: record.msgtype,
    sender,
    allowSenderOverride: record.allowSenderOverride,
    allowGet: record.allowGet,
    wait: record.wait,
    signature: record.signature?.scheme ?? null,
    rateLimit: record.rateLimit
      ? { perMinute: record.rateLimit.perMinute, burst: record.rateLimit.burst }
      : null,
    createdBy: record.createdBy,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}
