/**
 * An in-process, loopback-only stand-in for a homeserver's client-server API as an appservice
 * sees it. It keeps a small model (users, devices, profiles, rooms, aliases), records every
 * request, and lets a test script one-shot answers (429s, 5xx, dropped connections, delays)
 * ahead of the model. Behaviour follows what Synapse was observed to do; see
 * /work/shared/research/spec-and-hs.md §1.4–1.6.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

export interface RecordedRequest {
  method: string;
  /** Raw (still percent-encoded) path, without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the body was JSON, otherwise undefined (see rawBody). */
  body: unknown;
  rawBody: Buffer;
  receivedAt: number;
}

export interface ScriptedResponse {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Destroy the connection without answering: a network error for the client. */
  drop?: boolean;
}

/** `params` are the decoded `:name` segments of the pattern, in order. */
export type Handler = (
  req: RecordedRequest,
  params: string[],
) => ScriptedResponse | Promise<ScriptedResponse>;

export interface FakeEvent {
  event_id: string;
  type: string;
  sender: string;
  state_key?: string;
  content: Record<string, unknown>;
  origin_server_ts: number;
}

export interface FakeRoom {
  members: Map<string, string>;
  state: Map<string, Record<string, unknown>>;
  /** Events in the order the server committed them (after any delay), like a room DAG. */
  events: FakeEvent[];
}

export interface FakeHomeserverOptions {
  asToken?: string;
  serverName?: string;
  appserviceId?: string;
  senderLocalpart?: string;
  /** Which device ID parameter the server reads: 1.141–1.160 read both, 1.161+ only "stable". */
  readsDeviceIdParam?: "stable" | "unstable" | "both";
}

interface Route {
  method: string;
  regex: RegExp;
  handler: Handler;
}

interface Script {
  method: string;
  regex: RegExp;
  responses: ScriptedResponse[];
}

const json = (status: number, body: unknown): ScriptedResponse => ({ status, body });
const err = (status: number, errcode: string, error: string, extra: Record<string, unknown> = {}) =>
  json(status, { errcode, error, ...extra });

/** `"/rooms/:roomId/send"` → a regex over the raw path; a RegExp is used as given. */
function toRegex(pattern: string | RegExp): RegExp {
  if (pattern instanceof RegExp) return pattern;
  return new RegExp(`^${pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:\w+/g, "([^/]*)")}$`);
}

export class FakeHomeserver {
  readonly asToken: string;
  readonly serverName: string;
  readonly appserviceId: string;
  readonly botUserId: string;
  readonly requests: RecordedRequest[] = [];
  readonly users = new Set<string>();
  readonly devices = new Map<string, Set<string>>();
  readonly profiles = new Map<string, { displayname?: string; avatar_url?: string }>();
  readonly rooms = new Map<string, FakeRoom>();
  readonly aliases = new Map<string, string>();
  readonly media = new Map<string, { contentType: string; data: Buffer }>();
  /** Delay before a send is committed and answered; a function so tests can randomise it. */
  sendDelayMs: (() => number) | undefined;

  private readonly readsDeviceIdParam: "stable" | "unstable" | "both";
  private readonly routes: Route[] = [];
  private readonly scripts: Script[] = [];
  private readonly txns = new Map<string, string>();
  private counter = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    options: FakeHomeserverOptions,
  ) {
    this.asToken = options.asToken ?? "as_token_test";
    this.serverName = options.serverName ?? "fake.test";
    this.appserviceId = options.appserviceId ?? "trestle-test";
    this.botUserId = `@${options.senderLocalpart ?? "_bridge_bot"}:${this.serverName}`;
    this.readsDeviceIdParam = options.readsDeviceIdParam ?? "both";
    // The sender exists from the start, as Synapse creates it when loading the registration.
    this.users.add(this.botUserId);
    this.installModel();
  }

  static async start(options: FakeHomeserverOptions = {}): Promise<FakeHomeserver> {
    let instance: FakeHomeserver | undefined;
    const server = createServer((req, res) => {
      void instance!.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    instance = new FakeHomeserver(server, `http://127.0.0.1:${port}`, options);
    return instance;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Queue one-shot answers for matching requests, used in order before the model answers. */
  script(method: string, pattern: string | RegExp, ...responses: ScriptedResponse[]): void {
    this.scripts.push({ method, regex: toRegex(pattern), responses });
  }

  /** Replace the model's answer for matching requests until the server closes. */
  route(method: string, pattern: string | RegExp, handler: Handler): void {
    this.routes.unshift({ method, regex: toRegex(pattern), handler });
  }

  requestsTo(method: string, pattern: string | RegExp): RecordedRequest[] {
    const regex = toRegex(pattern);
    return this.requests.filter((r) => r.method === method && regex.test(r.path));
  }

  room(roomId: string): FakeRoom {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = { members: new Map(), state: new Map(), events: [] };
      this.rooms.set(roomId, room);
    }
    return room;
  }

  addUser(userId: string): void {
    this.users.add(userId);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", "http://fake");
    let body: unknown;
    if ((req.headers["content-type"] ?? "").includes("json") && rawBody.length > 0) {
      try {
        body = JSON.parse(rawBody.toString("utf8"));
      } catch {
        body = undefined;
      }
    }
    const recorded: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body,
      rawBody,
      receivedAt: Date.now(),
    };
    this.requests.push(recorded);

    let response: ScriptedResponse;
    const script = this.scripts.find(
      (s) => s.method === recorded.method && s.regex.test(recorded.path) && s.responses.length > 0,
    );
    if (script) {
      response = script.responses.shift()!;
    } else {
      response = await this.answer(recorded);
    }
    if (response.delayMs) await delay(response.delayMs);
    if (response.drop) {
      req.socket.destroy();
      return;
    }
    const payload = response.body === undefined ? "" : JSON.stringify(response.body);
    res.writeHead(response.status ?? 200, {
      ...(payload ? { "content-type": "application/json" } : {}),
      ...response.headers,
    });
    res.end(payload);
  }

  private async answer(req: RecordedRequest): Promise<ScriptedResponse> {
    for (const route of this.routes) {
      if (route.method !== req.method) continue;
      const match = route.regex.exec(req.path);
      if (match)
        return route.handler(
          req,
          match.slice(1).map((p) => decodeURIComponent(p ?? "")),
        );
    }
    return err(404, "M_UNRECOGNIZED", "Unrecognized request");
  }

  /** Checks the token and identity assertion the way Synapse does; returns the acting user. */
  private authenticate(req: RecordedRequest, assertIdentity = true): { userId: string } | ScriptedResponse {
    const header = req.headers.authorization;
    if (!header) return err(401, "M_MISSING_TOKEN", "Missing access token.");
    if (header !== `Bearer ${this.asToken}`)
      return err(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.");
    const asserted = req.query.get("user_id");
    if (!assertIdentity || asserted === null) return { userId: this.botUserId };
    if (!asserted.endsWith(`:${this.serverName}`)) {
      return err(403, "M_FORBIDDEN", "Application service cannot masquerade as this user");
    }
    if (!this.users.has(asserted)) {
      return err(403, "M_FORBIDDEN", `Application service has not registered this user (${asserted})`);
    }
    const device = this.assertedDevice(req);
    if (device !== undefined && !this.devices.get(asserted)?.has(device)) {
      return err(400, "M_UNKNOWN_DEVICE", "Unknown device");
    }
    return { userId: asserted };
  }

  private assertedDevice(req: RecordedRequest): string | undefined {
    const stable = req.query.get("device_id");
    const unstable = req.query.get("org.matrix.msc3202.device_id");
    if (this.readsDeviceIdParam === "stable") return stable ?? undefined;
    if (this.readsDeviceIdParam === "unstable") return unstable ?? undefined;
    return stable ?? unstable ?? undefined;
  }

  private nextId(prefix: string): string {
    this.counter += 1;
    return `${prefix}${this.counter}`;
  }

  /** Wraps a handler with authentication and hands it the acting user. */
  private authed(
    method: string,
    pattern: string | RegExp,
    handler: (
      req: RecordedRequest,
      params: string[],
      sender: string,
    ) => ScriptedResponse | Promise<ScriptedResponse>,
    assertIdentity = true,
  ): void {
    this.route(method, pattern, (req, params) => {
      const auth = this.authenticate(req, assertIdentity);
      if (!("userId" in auth)) return auth;
      return handler(req, params, auth.userId);
    });
  }

  private commit(roomId: string, event: Omit<FakeEvent, "event_id" | "origin_server_ts">, ts: string | null) {
    const full: FakeEvent = {
      ...event,
      event_id: `$${this.nextId("ev")}`,
      origin_server_ts: ts === null ? Date.now() : Number(ts),
    };
    this.room(roomId).events.push(full);
    return full;
  }

  private installModel(): void {
    const C = "/_matrix/client/v3";
    const bodyOf = (req: RecordedRequest) => (req.body ?? {}) as Record<string, unknown>;

    this.authed(
      "POST",
      `${C}/register`,
      (req) => {
        const b = bodyOf(req);
        if (b.type !== "m.login.application_service") return err(400, "M_BAD_JSON", "wrong login type");
        const userId = `@${String(b.username)}:${this.serverName}`;
        if (this.users.has(userId)) return err(400, "M_USER_IN_USE", "User ID already taken.");
        this.users.add(userId);
        return json(200, { user_id: userId, home_server: this.serverName });
      },
      false,
    );

    this.authed("GET", `${C}/account/whoami`, (req, _p, sender) => {
      const device = this.assertedDevice(req);
      return json(200, { user_id: sender, is_guest: false, ...(device ? { device_id: device } : {}) });
    });

    this.authed("POST", `${C}/join/:room`, (_req, [target], sender) => {
      const roomId = target!.startsWith("#") ? this.aliases.get(target!) : target!;
      if (!roomId) return err(404, "M_NOT_FOUND", "Room alias not found");
      this.setMembership(roomId, sender, sender, "join");
      return json(200, { room_id: roomId });
    });

    this.authed("POST", `${C}/rooms/:room/leave`, (_req, [roomId], sender) => {
      this.setMembership(roomId!, sender, sender, "leave");
      return json(200, {});
    });

    const targeted: [string, string][] = [
      ["invite", "invite"],
      ["kick", "leave"],
      ["ban", "ban"],
    ];
    for (const [action, membership] of targeted) {
      this.authed("POST", `${C}/rooms/:room/${action}`, (req, [roomId], sender) => {
        const target = bodyOf(req).user_id;
        if (typeof target !== "string") return err(400, "M_MISSING_PARAM", "user_id missing");
        this.setMembership(roomId!, sender, target, membership);
        return json(200, {});
      });
    }

    this.authed("POST", `${C}/createRoom`, (req, _p, sender) => {
      const b = bodyOf(req);
      const roomId = `!${this.nextId("room")}:${this.serverName}`;
      this.setMembership(roomId, sender, sender, "join");
      for (const invitee of (b.invite as string[] | undefined) ?? []) {
        this.setMembership(roomId, sender, invitee, "invite");
      }
      const room = this.room(roomId);
      for (const s of (b.initial_state as {
        type: string;
        state_key?: string;
        content: Record<string, unknown>;
      }[]) ?? []) {
        room.state.set(`${s.type}\u0000${s.state_key ?? ""}`, s.content);
      }
      if (typeof b.name === "string") room.state.set("m.room.name\u0000", { name: b.name });
      if (typeof b.topic === "string") room.state.set("m.room.topic\u0000", { topic: b.topic });
      if (typeof b.room_alias_name === "string") {
        this.aliases.set(`#${b.room_alias_name}:${this.serverName}`, roomId);
      }
      return json(200, { room_id: roomId });
    });

    this.authed("PUT", `${C}/rooms/:room/send/:type/:txn`, async (req, [roomId, type, txnId], sender) => {
      const txnKey = `${sender}\u0000${txnId}`;
      const known = this.txns.get(txnKey);
      if (known) return json(200, { event_id: known });
      if (this.sendDelayMs) await delay(this.sendDelayMs());
      const event = this.commit(roomId!, { type: type!, sender, content: bodyOf(req) }, req.query.get("ts"));
      this.txns.set(txnKey, event.event_id);
      return json(200, { event_id: event.event_id });
    });

    this.authed(
      "PUT",
      /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/state\/([^/]+)\/?([^/]*)$/,
      (req, params, sender) => {
        const [roomId, type, stateKey = ""] = params as [string, string, string?];
        const content = bodyOf(req);
        this.room(roomId).state.set(`${type}\u0000${stateKey}`, content);
        const event = this.commit(
          roomId,
          { type, sender, state_key: stateKey, content },
          req.query.get("ts"),
        );
        return json(200, { event_id: event.event_id });
      },
    );

    this.authed(
      "GET",
      /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/state\/([^/]+)\/?([^/]*)$/,
      (_req, params) => {
        const [roomId, type, stateKey = ""] = params as [string, string, string?];
        const content = this.rooms.get(roomId)?.state.get(`${type}\u0000${stateKey}`);
        return content ? json(200, content) : err(404, "M_NOT_FOUND", "Event not found.");
      },
    );

    this.authed("PUT", `${C}/rooms/:room/redact/:event/:txn`, (req, [roomId, eventId], sender) => {
      const event = this.commit(
        roomId!,
        { type: "m.room.redaction", sender, content: { redacts: eventId, ...bodyOf(req) } },
        null,
      );
      return json(200, { event_id: event.event_id });
    });

    this.authed("GET", `${C}/rooms/:room/joined_members`, (_req, [roomId]) => {
      const joined: Record<string, { display_name?: string; avatar_url?: string }> = {};
      for (const [userId, membership] of this.rooms.get(roomId!)?.members ?? []) {
        if (membership !== "join") continue;
        const profile = this.profiles.get(userId) ?? {};
        joined[userId] = {
          ...(profile.displayname ? { display_name: profile.displayname } : {}),
          ...(profile.avatar_url ? { avatar_url: profile.avatar_url } : {}),
        };
      }
      return json(200, { joined });
    });

    this.authed("GET", `${C}/profile/:user`, (_req, [userId]) => {
      if (!this.users.has(userId!)) return err(404, "M_NOT_FOUND", "Profile was not found");
      return json(200, this.profiles.get(userId!) ?? {});
    });

    for (const field of ["displayname", "avatar_url"] as const) {
      this.authed("PUT", `${C}/profile/:user/${field}`, (req, [userId], sender) => {
        if (userId !== sender) return err(403, "M_FORBIDDEN", "Cannot set another user's profile");
        const value = bodyOf(req)[field];
        if (typeof value !== "string") return err(400, "M_BAD_JSON", `${field} missing`);
        this.profiles.set(sender, { ...this.profiles.get(sender), [field]: value });
        return json(200, {});
      });
    }

    this.authed("POST", "/_matrix/media/v3/upload", (req) => {
      const mediaId = this.nextId("media");
      this.media.set(mediaId, {
        contentType: String(req.headers["content-type"] ?? "application/octet-stream"),
        data: req.rawBody,
      });
      return json(200, { content_uri: `mxc://${this.serverName}/${mediaId}` });
    });

    this.authed("GET", `${C}/directory/room/:alias`, (_req, [alias]) => {
      const roomId = this.aliases.get(alias!);
      return roomId
        ? json(200, { room_id: roomId, servers: [this.serverName] })
        : err(404, "M_NOT_FOUND", `Room alias ${alias} not found`);
    });

    this.authed("PUT", `${C}/directory/room/:alias`, (req, [alias]) => {
      if (this.aliases.has(alias!)) return err(409, "M_UNKNOWN", "Room alias already exists");
      this.aliases.set(alias!, String(bodyOf(req).room_id));
      return json(200, {});
    });

    // MSC4190: only appservices may create a device by PUTting an unknown ID; 201 means created.
    this.authed("PUT", `${C}/devices/:device`, (_req, [deviceId], sender) => {
      let devices = this.devices.get(sender);
      if (!devices) {
        devices = new Set();
        this.devices.set(sender, devices);
      }
      const created = !devices.has(deviceId!);
      devices.add(deviceId!);
      return json(created ? 201 : 200, {});
    });

    this.authed(
      "POST",
      "/_matrix/client/v1/appservice/:id/ping",
      (_req, [id]) =>
        id === this.appserviceId
          ? json(200, { duration_ms: 3 })
          : err(403, "M_FORBIDDEN", "Mismatching application service ID in path"),
      false,
    );
  }

  private setMembership(roomId: string, sender: string, target: string, membership: string): void {
    this.room(roomId).members.set(target, membership);
    this.commit(roomId, { type: "m.room.member", sender, state_key: target, content: { membership } }, null);
  }
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected the promise to reject");
}
