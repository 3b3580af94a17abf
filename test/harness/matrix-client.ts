import { randomUUID } from "node:crypto";

export interface ClientEvent {
  type: string;
  event_id: string;
  sender: string;
  room_id?: string;
  state_key?: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
  unsigned?: Record<string, unknown>;
}

const SYNC_FILTER = JSON.stringify({ room: { timeline: { limit: 1000 } } });

interface SyncResponse {
  next_batch: string;
  rooms?: {
    join?: Record<string, { timeline?: { events?: ClientEvent[]; limited?: boolean; prev_batch?: string } }>;
    invite?: Record<string, unknown>;
  };
}

/**
 * A real Matrix user as a test sees it: plain client-server API calls with its own
 * access token, and /sync to read what arrived. Deliberately independent of Trestle's
 * own client, so e2e tests check our code against the homeserver, not against itself.
 */
export class MatrixTestClient {
  private since?: string;
  private readonly seen: ClientEvent[] = [];
  readonly invites = new Set<string>();

  constructor(
    readonly baseUrl: string,
    readonly userId: string,
    readonly accessToken: string,
  ) {}

  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.accessToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json().catch(() => ({}))) as T & { errcode?: string; error?: string };
    if (!res.ok) {
      throw new MatrixRequestError(
        res.status,
        json.errcode ?? "",
        `${method} ${path} → ${res.status} ${JSON.stringify(json)}`,
      );
    }
    return json;
  }

  async createRoom(options: Record<string, unknown> = {}): Promise<string> {
    const { room_id } = await this.request<{ room_id: string }>(
      "POST",
      "/_matrix/client/v3/createRoom",
      options,
    );
    return room_id;
  }

  async invite(roomId: string, userId: string): Promise<void> {
    await this.request("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, {
      user_id: userId,
    });
  }

  async join(roomIdOrAlias: string): Promise<string> {
    const { room_id } = await this.request<{ room_id: string }>(
      "POST",
      `/_matrix/client/v3/join/${encodeURIComponent(roomIdOrAlias)}`,
      {},
    );
    return room_id;
  }

  async sendMessage(roomId: string, body: string, extra: Record<string, unknown> = {}): Promise<string> {
    return this.sendEvent(roomId, "m.room.message", { msgtype: "m.text", body, ...extra });
  }

  async sendEvent(roomId: string, type: string, content: Record<string, unknown>): Promise<string> {
    const { event_id } = await this.request<{ event_id: string }>(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${encodeURIComponent(type)}/${randomUUID()}`,
      content,
    );
    return event_id;
  }

  async joinedMembers(roomId: string): Promise<string[]> {
    const { joined } = await this.request<{ joined: Record<string, unknown> }>(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`,
    );
    return Object.keys(joined);
  }

  /** One /sync round; collects timeline events and invites. */
  async sync(timeoutMs = 0): Promise<ClientEvent[]> {
    const params = new URLSearchParams({ timeout: String(timeoutMs) });
    if (this.since) params.set("since", this.since);
    // On every sync: without it an incremental sync returns at most 10 events per room
    // ("limited"), and a burst would silently lose events.
    params.set("filter", SYNC_FILTER);
    const res = await this.request<SyncResponse>("GET", `/_matrix/client/v3/sync?${params}`);
    const previous = this.since;
    this.since = res.next_batch;
    const fresh: ClientEvent[] = [];
    for (const [roomId, room] of Object.entries(res.rooms?.join ?? {})) {
      const timeline = room.timeline?.events ?? [];
      // A "limited" timeline skipped events: fetch the gap, so no test misses one.
      const gap =
        room.timeline?.limited && room.timeline.prev_batch && previous !== undefined
          ? await this.backfill(roomId, room.timeline.prev_batch)
          : [];
      for (const event of [...gap, ...timeline]) fresh.push({ ...event, room_id: roomId });
    }
    for (const roomId of Object.keys(res.rooms?.invite ?? {})) this.invites.add(roomId);
    this.seen.push(...fresh);
    return fresh;
  }

  /** Events before `from` back to the newest one already seen, oldest first. */
  private async backfill(roomId: string, from: string): Promise<ClientEvent[]> {
    const known = new Set(this.seen.map((e) => e.event_id));
    const gap: ClientEvent[] = [];
    let token: string | undefined = from;
    for (let page = 0; token && page < 20; page++) {
      const params: URLSearchParams = new URLSearchParams({ from: token, dir: "b", limit: "500" });
      const res: { chunk: ClientEvent[]; end?: string } = await this.request<{
        chunk: ClientEvent[];
        end?: string;
      }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?${params}`);
      for (const event of res.chunk) {
        if (known.has(event.event_id)) return gap.reverse();
        gap.push(event);
      }
      token = res.chunk.length ? res.end : undefined;
    }
    return gap.reverse();
  }

  /** Every event this client has seen through /sync so far. */
  get events(): readonly ClientEvent[] {
    return this.seen;
  }

  /** Syncs until an event matching `predicate` has arrived (or was already seen). */
  async waitForEvent(predicate: (event: ClientEvent) => boolean, timeoutMs = 15_000): Promise<ClientEvent> {
    const found = this.seen.find(predicate);
    if (found) return found;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const fresh = await this.sync(Math.min(2000, Math.max(0, deadline - Date.now())));
      const match = fresh.find(predicate);
      if (match) return match;
    }
    throw new Error(`${this.userId}: no matching event within ${timeoutMs} ms`);
  }

  /** Syncs until `predicate` holds over everything seen (e.g. "300 messages arrived"). */
  async waitUntil(predicate: (seen: readonly ClientEvent[]) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.seen)) {
      if (Date.now() > deadline) throw new Error(`${this.userId}: condition not met within ${timeoutMs} ms`);
      await this.sync(Math.min(2000, Math.max(0, deadline - Date.now())));
    }
  }

  async waitForInvite(roomId: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.invites.has(roomId)) {
      if (Date.now() > deadline)
        throw new Error(`${this.userId}: no invite to ${roomId} within ${timeoutMs} ms`);
      await this.sync(1000);
    }
  }
}

export class MatrixRequestError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
  ) {
    super(message);
  }
}
