/**
 * The "echo" bridge: the smallest complete bridge on @trestle/appservice, and the one the
 * framework guide (docs/framework.md) walks through.
 *
 * - Invite its bot to a room and it joins.
 * - Say something in that room and a ghost, `@_echo_<your localpart>`, joins and echoes it
 *   back, with the ghost message's timestamp set to your message's (`ts` massaging).
 * - Join `#_echo_<anything>:<server>` and the room is created on demand.
 */
import {
  Appservice,
  BRIDGE_INFO_EVENT_TYPES,
  buildBridgeInfo,
  type CoreConfig,
  generateRegistration,
  type Logger,
  type MatrixEvent,
  type Registration,
} from "@trestle/appservice";

export interface EchoConfig extends CoreConfig {
  echo: {
    /** Wait this long before answering; the crash test uses it to kill the bridge mid-event. */
    replyDelayMs: number;
  };
}

export const echoConfigSchema = {
  type: "object",
  properties: {
    echo: {
      type: "object",
      properties: { replyDelayMs: { type: "integer", minimum: 0, default: 0 } },
      additionalProperties: false,
      default: {},
    },
  },
};

const GHOST_PREFIX = "_echo_";

export function echoRegistration(config: EchoConfig, url: string, id?: string): Registration {
  return generateRegistration({
    id: id ?? "echo",
    url,
    senderLocalpart: "echobot",
    userPrefix: GHOST_PREFIX,
    aliasPrefix: GHOST_PREFIX,
    serverName: config.homeserver.domain,
  });
}

export function createEchoBridge(
  config: EchoConfig,
  registration: Registration,
  logger: Logger,
  port: number,
) {
  const appservice: Appservice = new Appservice({
    registration,
    homeserver: config.homeserver,
    dataDir: config.dataDir,
    logger,
    processMetrics: config.metrics.enabled,
    http: { port, bindAddress: config.appservice.bindAddress, maxBodyBytes: config.appservice.maxBodyBytes },
    hooks: {
      onEvent: (event) => onEvent(event),
      // Any @_echo_ ghost exists on demand.
      onUserQuery: async (userId) => ({
        displayName: `Echo of ${localpartOf(userId).slice(GHOST_PREFIX.length)}`,
      }),
      onAliasQuery: async (alias) => {
        const channel = localpartOf(alias).slice(GHOST_PREFIX.length);
        // MSC2346 bridge info, so clients can show what the room is bridged to.
        const info = buildBridgeInfo("org.trestle.echo", {
          bridgebot: appservice.botUserId,
          protocol: { id: "echo", displayname: "Echo" },
          channel: { id: channel, displayname: channel },
        });
        return {
          name: `Echo room ${channel}`,
          preset: "public_chat",
          visibility: "private",
          initialState: BRIDGE_INFO_EVENT_TYPES.map((type) => ({
            type,
            state_key: info.stateKey,
            content: info.content,
          })),
        };
      },
    },
  });

  async function onEvent(event: MatrixEvent): Promise<void> {
    if (event.type === "m.room.member" && event.state_key === appservice.botUserId) {
      if (event.content.membership === "invite") await appservice.botIntent.join(event.room_id);
      return;
    }
    if (event.type !== "m.room.message" || appservice.namespaces.isUserInNamespace(event.sender)) return;
    if (appservice.namespaces.isBot(event.sender)) return;
    const body = event.content.body;
    if (typeof body !== "string") return;

    if (config.echo.replyDelayMs) await new Promise((r) => setTimeout(r, config.echo.replyDelayMs));
    const ghostId = `@${GHOST_PREFIX}${localpartOf(event.sender)}:${appservice.serverName}`;
    const ghost = appservice.intents.getIntent(ghostId);
    await ghost.ensureRegistered();
    await ghost.setDisplayName(`Echo of ${localpartOf(event.sender)}`);
    await ghost.ensureJoined(event.room_id, { inviter: appservice.botIntent });
    await ghost.sendMessage(
      event.room_id,
      { msgtype: "m.notice", body: `echo: ${body}`, "org.trestle.echo_of": event.event_id },
      { ts: event.origin_server_ts },
    );
    logger.debug({ eventId: event.event_id, roomId: event.room_id }, "echoed");
  }

  return appservice;
}

function localpartOf(id: string): string {
  return id.slice(1, id.indexOf(":"));
}
