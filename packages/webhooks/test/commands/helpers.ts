/**
 * A bridge-shaped harness for the command, DM and provisioning tests: a real Appservice,
 * HookManager, Renderer and DirectMessenger talking to the loopback fake homeserver, with
 * in-memory stores and a logger whose every line is kept for inspection.
 */
import { Writable } from "node:stream";
import {
  Appservice,
  createLogger,
  type Logger,
  type MatrixEvent,
  openNedbStores,
  type Registration,
  type Stores,
} from "@trestle/appservice";
import { type FakeEvent, FakeHomeserver } from "../../../appservice/test/helpers/fake-homeserver.js";
import { WebhookCommands } from "../../src/commands/index.js";
import type { FailedDelivery } from "../../src/delivery/job.js";
import { DirectMessenger } from "../../src/dm.js";
import { HookManager } from "../../src/hooks/hook-manager.js";
import { NedbHookStore } from "../../src/hooks/hook-store.js";
import { Renderer } from "../../src/rendering/index.js";

export const ROOM = "!hooks:fake.test";
export const ALICE = "@alice:fake.test";
export const BOB = "@bob:fake.test";
export const PUBLIC_URL = "https://hooks.example.test";

export interface Harness {
  hs: FakeHomeserver;
  appservice: Appservice;
  stores: Stores<MatrixEvent>;
  hookStore: NedbHookStore;
  manager: HookManager;
  renderer: Renderer;
  dms: DirectMessenger;
  commands: WebhookCommands;
  /** The dead letters the commands see; `settled` records what `retry`/`discard` did. */
  deadLetters: FailedDelivery[];
  settled: string[];
  logger: Logger;
  /** Every log line written so far, as raw JSON text. */
  logText(): string;
  close(): Promise<void>;
}

/** A logger keeping every line (trace and up) in memory. */
export function capturingLogger(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level: "trace", destination }), text: () => lines.join("") };
}

export async function startHarness(): Promise<Harness> {
  const hs = await FakeHomeserver.start();
  answerMemberStateFromMembers(hs);
  const { logger, text } = capturingLogger();
  const registration: Registration = {
    id: hs.appserviceId,
    url: null,
    as_token: hs.asToken,
    hs_token: "hs_token_test",
    sender_localpart: "_bridge_bot",
    namespaces: {
      users: [{ exclusive: true, regex: "@_webhook_.*:fake\\.test" }],
      aliases: [],
      rooms: [],
    },
  };
  const stores = await openNedbStores<MatrixEvent>({ inMemory: true, logger, autocompactionIntervalMs: 0 });
  const appservice = new Appservice({
    registration,
    homeserver: { url: hs.url, domain: hs.serverName },
    hooks: { onEvent: async () => {} },
    stores,
    logger,
    processMetrics: false,
    pingOnStart: false,
    client: { retry: { maxAttempts: 1 } },
  });
  const renderer = new Renderer({ logger });
  const hookStore = await NedbHookStore.open({ inMemory: true, logger });
  const manager = new HookManager({ store: hookStore, appservice, renderer, publicUrl: PUBLIC_URL, logger });
  const dms = new DirectMessenger({ appservice, logger, renderer });
  const deadLetters: FailedDelivery[] = [];
  const settled: string[] = [];
  const settle = (verb: string) => async (jobId: string) => {
    const index = deadLetters.findIndex((job) => job.id === jobId);
    if (index < 0) return false;
    deadLetters.splice(index, 1);
    settled.push(`${verb} ${jobId}`);
    return true;
  };
  const commands = new WebhookCommands({
    appservice,
    manager,
    renderer,
    dms,
    logger,
    deadLetters: { list: async () => [...deadLetters], retry: settle("retry"), discard: settle("discard") },
  });

  const room = hs.room(ROOM);
  room.members.set(hs.botUserId, "join");
  room.members.set(ALICE, "join");
  room.members.set(BOB, "join");
  room.state.set("m.room.power_levels\u0000", {
    users: { [hs.botUserId]: 100, [ALICE]: 50 },
    users_default: 0,
    state_default: 50,
    events: {},
  });
  hs.addUser(ALICE);
  hs.addUser(BOB);

  return {
    hs,
    appservice,
    stores,
    hookStore,
    manager,
    renderer,
    dms,
    commands,
    deadLetters,
    settled,
    logger,
    logText: text,
    close: async () => {
      await stores.close();
      await hookStore.close();
      await hs.close();
    },
  };
}

/**
 * The fake keeps memberships in `members`, not in its state map: answer
 * `GET …/state/m.room.member/<user>` from them, refusing (like Synapse) when the asking bot is
 * not in the room.
 */
function answerMemberStateFromMembers(hs: FakeHomeserver): void {
  hs.route(
    "GET",
    /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/state\/m\.room\.member\/([^/]+)$/,
    (_req, params) => {
      const [roomId, userId] = params as [string, string];
      const room = hs.rooms.get(roomId);
      if (room?.members.get(hs.botUserId) !== "join") {
        return {
          status: 403,
          body: { errcode: "M_FORBIDDEN", error: `User ${hs.botUserId} not in room ${roomId}` },
        };
      }
      const membership = room!.members.get(userId);
      return membership
        ? { status: 200, body: { membership } }
        : { status: 404, body: { errcode: "M_NOT_FOUND", error: "Event not found." } };
    },
  );
}

let eventCounter = 0;

/** An `m.room.message` from `sender`, as a transaction would deliver it. */
export function message(
  sender: string,
  body: string,
  options: { roomId?: string; msgtype?: string; extra?: Record<string, unknown> } = {},
): MatrixEvent {
  eventCounter += 1;
  return {
    type: "m.room.message",
    event_id: `$cmd${eventCounter}`,
    room_id: options.roomId ?? ROOM,
    sender,
    content: { msgtype: options.msgtype ?? "m.text", body, ...options.extra },
    origin_server_ts: Date.now(),
    unsigned: {},
  };
}

/** The bot's messages in a room, oldest first. */
export function botMessages(hs: FakeHomeserver, roomId = ROOM): FakeEvent[] {
  return (hs.rooms.get(roomId)?.events ?? []).filter(
    (e) => e.type === "m.room.message" && e.sender === hs.botUserId,
  );
}

/** The bot's last message in a room. */
export function lastReply(hs: FakeHomeserver, roomId = ROOM): FakeEvent {
  const replies = botMessages(hs, roomId);
  const last = replies[replies.length - 1];
  if (!last) throw new Error(`the bot said nothing in ${roomId}`);
  return last;
}

/** Rooms (other than `except`) where `userId` was invited by the bot: its DM rooms, oldest first. */
export function dmRooms(hs: FakeHomeserver, userId: string, except = ROOM): string[] {
  return [...hs.rooms.entries()]
    .filter(([roomId, room]) => roomId !== except && room.members.has(userId))
    .map(([roomId]) => roomId);
}

/** Everything the bot sent to `userId` by DM, bodies oldest first. */
export function dmBodies(hs: FakeHomeserver, userId: string): string[] {
  return dmRooms(hs, userId).flatMap((roomId) => botMessages(hs, roomId).map((e) => String(e.content.body)));
}

/** The text of every event in the room (messages and state), for "never leaks" checks. */
export function roomText(hs: FakeHomeserver, roomId = ROOM): string {
  return JSON.stringify(hs.rooms.get(roomId)?.events ?? []);
}

/** `https://…/webhooks/v1/<id>/<secret>` in a text → its parts. */
export function findHookUrl(text: string): { url: string; id: string; secret: string } | undefined {
  const match = /https:\/\/hooks\.example\.test\/webhooks\/v1\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)/.exec(text);
  if (!match) return undefined;
  return { url: match[0], id: match[1]!, secret: match[2]! };
}
