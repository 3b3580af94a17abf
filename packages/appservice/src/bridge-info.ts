/**
 * Bridge information state (MSC2346): tells clients which remote channel a room is bridged to.
 * Written under the stable-to-be `m.bridge` and the unstable `uk.half-shot.bridge` type, since
 * clients read one or the other.
 */

export const BRIDGE_INFO_EVENT_TYPES = ["m.bridge", "uk.half-shot.bridge"] as const;

export interface BridgeInfoSection {
  /** Stable identifier on the remote side. The MSC treats it as case-insensitive: pass it normalised. */
  id: string;
  displayname?: string;
  avatar_url?: string;
  external_url?: string;
  /** Vendor keys, prefixed with the bridge's reverse-DNS name. */
  [vendorKey: string]: unknown;
}

export interface BridgeInfoContent {
  /** The bridge bot; the sender of the event is not always the bot. */
  bridgebot: string;
  /** Who set up the bridge, when known. */
  creator?: string;
  protocol: BridgeInfoSection;
  /** Omitted for protocols without networks. */
  network?: BridgeInfoSection;
  channel: BridgeInfoSection;
  [vendorKey: string]: unknown;
}

export interface BridgeInfo {
  stateKey: string;
  content: BridgeInfoContent;
}

/** Anything that can send state: an Intent (usually the bot's) fits. */
export interface StateSender {
  sendState(
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
  ): Promise<string>;
}

/**
 * `<prefix>://<protocol>/<network>/<channel>`, or without the network segment when there is
 * none. Each ID is escaped so that it stays one segment: `%` first (keeping the escaping
 * reversible), then `/` as the MSC asks, and control characters.
 */
export function bridgeInfoStateKey(
  bridgePrefix: string,
  ids: { protocol: string; network?: string | undefined; channel: string },
): string {
  if (!/^[A-Za-z0-9._-]+$/.test(bridgePrefix)) {
    throw new TypeError(`bridge prefix must be a reverse-DNS name like org.example.bridge: ${bridgePrefix}`);
  }
  const segments = [ids.protocol, ...(ids.network === undefined ? [] : [ids.network]), ids.channel];
  return `${bridgePrefix}://${segments.map(escapeSegment).join("/")}`;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we escape.
const UNSAFE_IN_SEGMENT = /[%/\u0000-\u001f\u007f]/g;

function escapeSegment(id: string): string {
  if (id.length === 0) throw new TypeError("bridge info IDs must not be empty");
  return id.replace(
    UNSAFE_IN_SEGMENT,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`,
  );
}

/** Builds the content and its state key; optional fields left undefined are omitted. */
export function buildBridgeInfo(bridgePrefix: string, content: BridgeInfoContent): BridgeInfo {
  const stateKey = bridgeInfoStateKey(bridgePrefix, {
    protocol: content.protocol.id,
    network: content.network?.id,
    channel: content.channel.id,
  });
  return { stateKey, content: JSON.parse(JSON.stringify(content)) as BridgeInfoContent };
}

/** Writes both event types into the room; resolves to their event IDs in BRIDGE_INFO_EVENT_TYPES order. */
export async function writeBridgeInfo(
  sender: StateSender,
  roomId: string,
  bridgePrefix: string,
  content: BridgeInfoContent,
): Promise<string[]> {
  const info = buildBridgeInfo(bridgePrefix, content);
  const eventIds: string[] = [];
  for (const type of BRIDGE_INFO_EVENT_TYPES) {
    eventIds.push(await sender.sendState(roomId, type, info.stateKey, info.content));
  }
  return eventIds;
}
