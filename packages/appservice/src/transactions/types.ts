/**
 * Typed shapes of what a homeserver pushes in `PUT /_matrix/app/v1/transactions/{txnId}`.
 * Fields not listed here are kept on the objects at runtime but are not typed.
 */

/** A room event (ClientEvent). State events are told apart by the presence of `state_key`. */
export interface MatrixEvent {
  type: string;
  event_id: string;
  room_id: string;
  sender: string;
  state_key?: string;
  content: Record<string, unknown>;
  origin_server_ts: number;
  /** Always present after parsing: `{}` when the homeserver sent none. */
  unsigned: Record<string, unknown>;
}

/** An EDU pushed under MSC2409 / `receive_ephemeral`: `m.typing`, `m.receipt`, `m.presence`. */
export interface EphemeralEvent {
  type: string;
  content: Record<string, unknown>;
  /** Set on room-scoped EDUs (`m.typing`, `m.receipt`). */
  room_id?: string;
  /** Set on `m.presence`. */
  sender?: string;
}

/** A to-device message addressed to one of the appservice's users (MSC2409 / MSC4203). */
export interface ToDeviceEvent {
  type: string;
  sender: string;
  content: Record<string, unknown>;
  to_user_id: string;
  to_device_id: string;
}

/** MSC3202: users whose device lists changed, or who no longer share a room with us. */
export interface DeviceLists {
  changed: string[];
  left: string[];
}

/** MSC3202: `{ userId: { deviceId: { algorithm: count } } }`. */
export type DeviceOneTimeKeysCount = Record<string, Record<string, Record<string, number>>>;

/** MSC3202: `{ userId: { deviceId: [algorithm] } }`. */
export type DeviceUnusedFallbackKeyTypes = Record<string, Record<string, string[]>>;

export interface ParsedTransaction {
  events: MatrixEvent[];
  ephemeral: EphemeralEvent[];
  toDevice: ToDeviceEvent[];
  deviceLists: DeviceLists;
  deviceOneTimeKeysCount: DeviceOneTimeKeysCount;
  deviceUnusedFallbackKeyTypes: DeviceUnusedFallbackKeyTypes;
  /** How many room, ephemeral and to-device events were dropped as malformed. */
  dropped: number;
}
