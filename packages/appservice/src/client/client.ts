import { randomBytes } from "node:crypto";
import type { Registry } from "prom-client";
import { ConfigError } from "../errors.js";
import { type Logger, silentLogger } from "../logging.js";
import { MatrixApiError, MatrixConnectionError, type RequestDescription } from "./errors.js";
import { type ClientMetrics, createClientMetrics, type RequestOutcome, type RetryReason } from "./metrics.js";
import { backoffDelayMs, parseRetryAfterMs, type RetryPolicy, resolveRetryPolicy, sleep } from "./retry.js";
import type {
  CreateRoomBody,
  JoinedMembersResponse,
  PingResponse,
  Profile,
  PutDeviceResult,
  RegisterResponse,
  ResolveAliasResponse,
  WhoamiResponse,
} from "./types.js";

/**
 * Which query parameter name carries the masqueraded device. Matrix v1.17 (MSC4326) made it
 * `device_id`; Synapse before 1.141 only reads `org.matrix.msc3202.device_id`, and Synapse
 * 1.161 stopped reading the unstable name (synapse#20192). Sending both is safe everywhere,
 * because servers that know both read the stable one first; pick "stable" once every
 * homeserver you target is 1.141 or newer.
 */
export type DeviceIdParam = "stable" | "unstable" | "both";

export const UNSTABLE_DEVICE_ID_PARAM = "org.matrix.msc3202.device_id";

export interface HomeserverClientOptions {
  /** Base URL of the client-server API, e.g. `http://127.0.0.1:8008`. A path prefix is kept. */
  homeserverUrl: string;
  asToken: string;
  logger?: Logger;
  /** Where the client registers its metrics; none are kept without one. */
  metrics?: Registry;
  retry?: Partial<RetryPolicy>;
  /** Default "both"; see {@link DeviceIdParam}. */
  deviceIdParam?: DeviceIdParam;
  /** Per-attempt timeout. Default 60 s, the same Synapse allows us for a transaction. */
  requestTimeoutMs?: number;
}

export type QueryValue = string | number | boolean | undefined | readonly string[];

/** Who the request is made as: absent `userId` means the appservice's own `sender_localpart`. */
export interface AsUserOptions {
  userId?: string | undefined;
  deviceId?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface RequestOptions extends AsUserOptions {
  query?: Record<string, QueryValue>;
  /** JSON body. */
  body?: unknown;
  /** Raw body (media upload). Buffers only, not streams, so that a retry can resend it. */
  rawBody?: Uint8Array | string;
  contentType?: string;
  /** Timestamp massaging (MSC3316); homeservers honour it on send and state requests only. */
  ts?: number | undefined;
  /** Per-call retry override; `false` makes exactly one attempt. */
  retry?: Partial<RetryPolicy> | false;
  /**
   * Whether repeating the request is harmless. Defaults to false for POST, true otherwise.
   * Non-idempotent requests are only retried when the homeserver cannot have acted on them
   * (429, 502, 503, connection refused, DNS failure).
   */
  idempotent?: boolean;
  timeoutMs?: number;
  /** Bounded label for metrics; the typed helpers set it, raw calls count as "request". */
  endpoint?: string;
}

export interface MatrixResponse<T> {
  status: number;
  body: T;
}

/** Encodes every interpolated value as one path segment, so IDs with `#`, `/` or `:` stay intact. */
export function matrixPath(strings: TemplateStringsArray, ...values: (string | number)[]): string {
  return strings.reduce(
    (out, s, i) => out + s + (i < values.length ? encodeURIComponent(values[i]!) : ""),
    "",
  );
}

type AttemptResult =
  | { kind: "response"; status: number; headers: Headers; body: unknown; nonJson: string | undefined }
  | { kind: "network"; error: MatrixConnectionError };

interface Failure {
  error: Error;
  outcome: RequestOutcome;
  /** Undefined when the failure must not be retried. */
  reason: RetryReason | undefined;
  /** A wait the homeserver asked for; otherwise the backoff applies. */
  waitMs?: number | undefined;
}

/**
 * A client-server API client that authenticates as an application service and can act as any
 * user in its namespace. One per appservice; share it between intents.
 */
export class HomeserverClient {
  readonly homeserverUrl: string;
  private readonly asToken: string;
  private readonly logger: Logger;
  private readonly metrics: ClientMetrics | undefined;
  private readonly retryDefaults: Partial<RetryPolicy>;
  private readonly deviceIdParam: DeviceIdParam;
  private readonly requestTimeoutMs: number;
  // Transaction IDs must not repeat across restarts for the same user, so a random prefix.
  private readonly txnPrefix = `trestle.${Date.now().toString(36)}.${randomBytes(4).toString("hex")}.`;
  private txnCounter = 0;

  constructor(options: HomeserverClientOptions) {
    let url: URL;
    try {
      url = new URL(options.homeserverUrl);
    } catch {
      throw new ConfigError(`homeserverUrl is not a URL: ${options.homeserverUrl}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConfigError(`homeserverUrl must be http or https: ${options.homeserverUrl}`);
    }
    if (!options.asToken) throw new ConfigError("asToken is required");
    this.homeserverUrl = url.href.replace(/\/+$/, "");
    this.asToken = options.asToken;
    this.logger = options.logger ?? silentLogger();
    this.metrics = options.metrics ? createClientMetrics(options.metrics) : undefined;
    this.retryDefaults = options.retry ?? {};
    this.deviceIdParam = options.deviceIdParam ?? "both";
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  }

  /** A transaction ID unique to this process and, thanks to the random prefix, across restarts. */
  newTxnId(): string {
    this.txnCounter += 1;
    return this.txnPrefix + this.txnCounter;
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<T> {
    return (await this.requestWithStatus<T>(method, path, options)).body;
  }

  /** Like {@link request} but also returns the status, for endpoints where 200 and 201 differ. */
  async requestWithStatus<T>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<MatrixResponse<T>> {
    const policy =
      options.retry === false
        ? { ...resolveRetryPolicy(this.retryDefaults), maxAttempts: 1 }
        : resolveRetryPolicy(this.retryDefaults, options.retry);
    const idempotent = options.idempotent ?? method !== "POST";
    const description: RequestDescription = { method, path };
    const labels = { method, endpoint: options.endpoint ?? "request" };
    const url = this.buildUrl(path, options);
    const init = this.buildInit(method, options);
    const started = performance.now();
    const finish = (outcome: RequestOutcome) => {
      this.metrics?.requests.inc({ ...labels, outcome });
      this.metrics?.duration.observe({ ...labels, outcome }, (performance.now() - started) / 1000);
    };

    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(url, init, options, description);
      if (result.kind === "response" && result.status >= 200 && result.status < 300) {
        if (result.nonJson !== undefined) {
          finish("client_error");
          throw new MatrixApiError(
            result.status,
            "M_NOT_JSON",
            `homeserver answered with non-JSON: ${truncate(result.nonJson)}`,
            description,
          );
        }
        finish("success");
        this.logger.debug(
          { method, path, status: result.status, attempt, ms: Math.round(performance.now() - started) },
          "homeserver request",
        );
        return { status: result.status, body: result.body as T };
      }

      const failure = classify(result, description, idempotent, policy);
      if (failure.reason === undefined) {
        finish(failure.outcome);
        throw failure.error;
      }
      const waitMs = failure.waitMs ?? backoffDelayMs(policy, attempt);
      const elapsed = performance.now() - started;
      if (attempt >= policy.maxAttempts || elapsed + waitMs > policy.maxTotalMs) {
        finish(failure.outcome);
        throw failure.error;
      }
      this.metrics?.retries.inc({ ...labels, reason: failure.reason });
      this.logger.warn(
        { method, path, attempt, reason: failure.reason, waitMs, err: failure.error.message },
        "homeserver request failed, retrying",
      );
      await sleep(waitMs, options.signal);
    }
  }

  private buildUrl(path: string, options: RequestOptions): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) params.append(key, v);
      else params.append(key, String(value));
    }
    if (options.userId !== undefined) params.set("user_id", options.userId);
    if (options.deviceId !== undefined) {
      if (this.deviceIdParam !== "unstable") params.set("device_id", options.deviceId);
      if (this.deviceIdParam !== "stable") params.set(UNSTABLE_DEVICE_ID_PARAM, options.deviceId);
    }
    if (options.ts !== undefined) params.set("ts", String(Math.trunc(options.ts)));
    const qs = params.toString();
    return this.homeserverUrl + path + (qs ? `?${qs}` : "");
  }

  private buildInit(method: string, options: RequestOptions): RequestInit {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.asToken}`,
      accept: "application/json",
    };
    let body: RequestInit["body"];
    if (options.rawBody !== undefined) {
      headers["content-type"] = options.contentType ?? "application/octet-stream";
      body = options.rawBody;
    } else if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    return { method, headers, body };
  }

  private async attempt(
    url: string,
    init: RequestInit,
    options: RequestOptions,
    description: RequestDescription,
  ): Promise<AttemptResult> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.requestTimeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      const res = await fetch(url, { ...init, signal });
      const text = await res.text();
      let body: unknown = {};
      let nonJson: string | undefined;
      if (text.length > 0) {
        try {
          body = JSON.parse(text);
        } catch {
          nonJson = text;
        }
      }
      return { kind: "response", status: res.status, headers: res.headers, body, nonJson };
    } catch (err) {
      // The caller's own abort is final; only our timeout counts as a network failure.
      if (options.signal?.aborted) throw options.signal.reason;
      if (timeout.aborted) {
        return {
          kind: "network",
          error: new MatrixConnectionError(
            "TIMEOUT",
            `${description.method} ${description.path} timed out`,
            description,
            {
              cause: err,
            },
          ),
        };
      }
      const code = errorCode(err) ?? "UNKNOWN";
      const detail = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      return {
        kind: "network",
        error: new MatrixConnectionError(
          code,
          `${description.method} ${description.path}: ${detail}`,
          description,
          {
            cause: err,
          },
        ),
      };
    }
  }

  // ---- typed helpers -------------------------------------------------------------------------

  /** Registers a user in the appservice's namespace without creating a device (MSC4190-safe). */
  register(localpart: string, options: { signal?: AbortSignal } = {}): Promise<RegisterResponse> {
    return this.request<RegisterResponse>("POST", "/_matrix/client/v3/register", {
      body: { type: "m.login.application_service", username: localpart, inhibit_login: true },
      // A repeat is harmless: M_USER_IN_USE is what registering twice looks like.
      idempotent: true,
      endpoint: "register",
      signal: options.signal,
    });
  }

  whoami(as: AsUserOptions = {}): Promise<WhoamiResponse> {
    return this.request<WhoamiResponse>("GET", "/_matrix/client/v3/account/whoami", {
      ...as,
      endpoint: "whoami",
    });
  }

  /** Joins by room ID or alias; `via` names servers to join through (needed for remote rooms). */
  async joinRoom(
    roomIdOrAlias: string,
    options: AsUserOptions & { via?: string[]; reason?: string } = {},
  ): Promise<{ room_id: string }> {
    const { via, reason, ...as } = options;
    return this.request<{ room_id: string }>("POST", matrixPath`/_matrix/client/v3/join/${roomIdOrAlias}`, {
      ...as,
      // `server_name` is the pre-v1.12 spelling of `via`; servers ignore the one they do not know.
      query: via?.length ? { via, server_name: via } : {},
      body: reason === undefined ? {} : { reason },
      idempotent: true,
      endpoint: "join",
    });
  }

  leave(roomId: string, options: AsUserOptions & { reason?: string } = {}): Promise<Record<string, never>> {
    const { reason, ...as } = options;
    return this.membershipAction(roomId, "leave", { reason }, as);
  }

  invite(roomId: string, userId: string, options: AsUserOptions & { reason?: string } = {}) {
    const { reason, ...as } = options;
    return this.membershipAction(roomId, "invite", { user_id: userId, reason }, as);
  }

  kick(roomId: string, userId: string, options: AsUserOptions & { reason?: string } = {}) {
    const { reason, ...as } = options;
    return this.membershipAction(roomId, "kick", { user_id: userId, reason }, as);
  }

  ban(roomId: string, userId: string, options: AsUserOptions & { reason?: string } = {}) {
    const { reason, ...as } = options;
    return this.membershipAction(roomId, "ban", { user_id: userId, reason }, as);
  }

  private membershipAction(
    roomId: string,
    action: "leave" | "invite" | "kick" | "ban",
    body: { user_id?: string; reason?: string | undefined },
    as: AsUserOptions,
  ): Promise<Record<string, never>> {
    return this.request("POST", matrixPath`/_matrix/client/v3/rooms/${roomId}/${action}`, {
      ...as,
      // An undefined `reason` is dropped by JSON.stringify.
      body,
      idempotent: true,
      endpoint: action,
    });
  }

  /** Not retried after the homeserver may have acted: a second attempt could create a second room. */
  createRoom(body: CreateRoomBody, as: AsUserOptions = {}): Promise<{ room_id: string }> {
    return this.request<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", {
      ...as,
      body,
      idempotent: false,
      endpoint: "createRoom",
    });
  }

  /** PUT with a transaction ID, so a retried request is deduplicated by the homeserver. */
  sendEvent(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    options: AsUserOptions & { txnId?: string; ts?: number | undefined } = {},
  ): Promise<{ event_id: string }> {
    const { txnId = this.newTxnId(), ts, ...as } = options;
    return this.request<{ event_id: string }>(
      "PUT",
      matrixPath`/_matrix/client/v3/rooms/${roomId}/send/${type}/${txnId}`,
      { ...as, ts, body: content, endpoint: "send" },
    );
  }

  sendState(
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    options: AsUserOptions & { ts?: number | undefined } = {},
  ): Promise<{ event_id: string }> {
    const { ts, ...as } = options;
    return this.request<{ event_id: string }>(
      "PUT",
      matrixPath`/_matrix/client/v3/rooms/${roomId}/state/${type}/${stateKey}`,
      { ...as, ts, body: content, endpoint: "sendState" },
    );
  }

  /** The content of one state event; throws MatrixApiError 404 `M_NOT_FOUND` when there is none. */
  getState<T = Record<string, unknown>>(
    roomId: string,
    type: string,
    stateKey = "",
    as: AsUserOptions = {},
  ): Promise<T> {
    return this.request<T>("GET", matrixPath`/_matrix/client/v3/rooms/${roomId}/state/${type}/${stateKey}`, {
      ...as,
      endpoint: "getState",
    });
  }

  redact(
    roomId: string,
    eventId: string,
    options: AsUserOptions & { reason?: string; txnId?: string } = {},
  ): Promise<{ event_id: string }> {
    const { reason, txnId = this.newTxnId(), ...as } = options;
    return this.request<{ event_id: string }>(
      "PUT",
      matrixPath`/_matrix/client/v3/rooms/${roomId}/redact/${eventId}/${txnId}`,
      { ...as, body: reason === undefined ? {} : { reason }, endpoint: "redact" },
    );
  }

  /** Sets a user's display name, acting as that user. */
  setDisplayName(userId: string, displayName: string, as: Omit<AsUserOptions, "userId"> = {}) {
    return this.setProfileField(userId, "displayname", displayName, as, "setDisplayName");
  }

  setAvatarUrl(userId: string, avatarUrl: string, as: Omit<AsUserOptions, "userId"> = {}) {
    return this.setProfileField(userId, "avatar_url", avatarUrl, as, "setAvatarUrl");
  }

  private setProfileField(
    userId: string,
    field: "displayname" | "avatar_url",
    value: string,
    as: Omit<AsUserOptions, "userId">,
    endpoint: string,
  ): Promise<Record<string, never>> {
    return this.request("PUT", matrixPath`/_matrix/client/v3/profile/${userId}/${field}`, {
      ...as,
      userId,
      body: { [field]: value },
      endpoint,
    });
  }

  /** Read as the appservice itself: asserting an unregistered user would be refused. */
  getProfile(userId: string, options: { signal?: AbortSignal } = {}): Promise<Profile> {
    return this.request<Profile>("GET", matrixPath`/_matrix/client/v3/profile/${userId}`, {
      signal: options.signal,
      endpoint: "getProfile",
    });
  }

  uploadMedia(
    data: Uint8Array | string,
    options: AsUserOptions & { contentType?: string; filename?: string; timeoutMs?: number } = {},
  ): Promise<{ content_uri: string }> {
    const { contentType, filename, timeoutMs, ...as } = options;
    return this.request<{ content_uri: string }>("POST", "/_matrix/media/v3/upload", {
      ...as,
      query: { filename },
      rawBody: data,
      contentType: contentType ?? "application/octet-stream",
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      // A duplicate upload only costs storage; losing media to a blip costs the message.
      idempotent: true,
      endpoint: "uploadMedia",
    });
  }

  resolveAlias(alias: string, options: { signal?: AbortSignal } = {}): Promise<ResolveAliasResponse> {
    return this.request<ResolveAliasResponse>("GET", matrixPath`/_matrix/client/v3/directory/room/${alias}`, {
      signal: options.signal,
      endpoint: "resolveAlias",
    });
  }

  createAlias(alias: string, roomId: string, as: AsUserOptions = {}): Promise<Record<string, never>> {
    return this.request("PUT", matrixPath`/_matrix/client/v3/directory/room/${alias}`, {
      ...as,
      body: { room_id: roomId },
      endpoint: "createAlias",
    });
  }

  /**
   * Creates (201) or updates (200) a device of the asserted user, MSC4190 / Matrix v1.17.
   * This is how an appservice gets a device for encryption without `/login`.
   */
  async putDevice(
    deviceId: string,
    body: { display_name?: string },
    as: AsUserOptions = {},
  ): Promise<PutDeviceResult> {
    const res = await this.requestWithStatus("PUT", matrixPath`/_matrix/client/v3/devices/${deviceId}`, {
      // Never masquerade as a device here: the device may not exist yet.
      userId: as.userId,
      signal: as.signal,
      body,
      endpoint: "putDevice",
    });
    return { created: res.status === 201 };
  }

  getJoinedMembers(roomId: string, as: AsUserOptions = {}): Promise<JoinedMembersResponse> {
    return this.request<JoinedMembersResponse>(
      "GET",
      matrixPath`/_matrix/client/v3/rooms/${roomId}/joined_members`,
      {
        ...as,
        endpoint: "getJoinedMembers",
      },
    );
  }

  /**
   * Asks the homeserver to ping this appservice back (Matrix v1.7, MSC2659). Made without a
   * user or device: with a device set, Synapse refuses appservice-only endpoints.
   * Not retried by default, so a start-up check reports the first failure; see
   * {@link diagnosePingFailure}.
   */
  ping(
    appserviceId: string,
    transactionId?: string,
    options: { signal?: AbortSignal; retry?: Partial<RetryPolicy> | false } = {},
  ): Promise<PingResponse> {
    return this.request<PingResponse>(
      "POST",
      matrixPath`/_matrix/client/v1/appservice/${appserviceId}/ping`,
      {
        body: transactionId === undefined ? {} : { transaction_id: transactionId },
        retry: options.retry ?? false,
        idempotent: true,
        endpoint: "ping",
        signal: options.signal,
      },
    );
  }
}

function classify(
  result: AttemptResult,
  description: RequestDescription,
  idempotent: boolean,
  policy: RetryPolicy,
): Failure {
  if (result.kind === "network") {
    const retryable = idempotent || result.error.neverSent;
    return {
      error: result.error,
      outcome: "network_error",
      reason: retryable ? "network_error" : undefined,
    };
  }
  const error = toApiError(result, description);
  if (result.status === 429) {
    const waitMs =
      error.retryAfterMs === undefined ? undefined : Math.min(error.retryAfterMs, policy.maxRetryAfterMs);
    return { error, outcome: "rate_limited", reason: "rate_limited", waitMs };
  }
  if (result.status >= 500) {
    // 502 and 503 come from a proxy or a server that refused the work; anything else may have acted.
    const retryable = idempotent || result.status === 502 || result.status === 503;
    return { error, outcome: "server_error", reason: retryable ? "server_error" : undefined };
  }
  return { error, outcome: "client_error", reason: undefined };
}

function toApiError(
  result: Extract<AttemptResult, { kind: "response" }>,
  description: RequestDescription,
): MatrixApiError {
  const body = result.body;
  const fields: Record<string, unknown> =
    result.nonJson === undefined && body && typeof body === "object" && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : {};
  const { errcode, error, ...extra } = fields;
  const message =
    typeof error === "string"
      ? error
      : result.nonJson !== undefined
        ? `HTTP ${result.status}: ${truncate(result.nonJson)}`
        : `HTTP ${result.status}`;
  const retryAfterMs =
    result.status === 429 ? parseRetryAfterMs(fields, result.headers.get("retry-after")) : undefined;
  return new MatrixApiError(
    result.status,
    typeof errcode === "string" ? errcode : "M_UNKNOWN",
    message,
    description,
    extra,
    retryAfterMs,
  );
}

/** The first `code` along an error's cause chain (undici wraps system errors in `TypeError: fetch failed`). */
function errorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current && typeof current === "object"; depth++) {
    const { code, errors, cause } = current as { code?: unknown; errors?: unknown; cause?: unknown };
    if (typeof code === "string") return code;
    if (Array.isArray(errors) && errors.length > 0) {
      const inner = errorCode(errors[0]);
      if (inner) return inner;
    }
    current = cause;
  }
  return undefined;
}

function truncate(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
