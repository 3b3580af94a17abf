/** Shapes of the client-server API bodies the appservice client sends and receives. */

export type Membership = "join" | "invite" | "leave" | "ban" | "knock";

export interface StateEventInput {
  type: string;
  state_key?: string;
  content: Record<string, unknown>;
}

/** Body of `POST /_matrix/client/v3/createRoom`, in the wire's own field names. */
export interface CreateRoomBody {
  name?: string;
  topic?: string;
  invite?: string[];
  is_direct?: boolean;
  initial_state?: StateEventInput[];
  room_alias_name?: string;
  power_level_content_override?: Record<string, unknown>;
  visibility?: "public" | "private";
  preset?: "private_chat" | "public_chat" | "trusted_private_chat";
  room_version?: string;
  creation_content?: Record<string, unknown>;
}

export interface RegisterResponse {
  user_id: string;
  home_server?: string;
  access_token?: string;
  device_id?: string;
}

export interface WhoamiResponse {
  user_id: string;
  device_id?: string;
  is_guest?: boolean;
}

export interface Profile {
  displayname?: string | null;
  avatar_url?: string | null;
}

export interface JoinedMembersResponse {
  joined: Record<string, { display_name?: string | null; avatar_url?: string | null }>;
}

export interface ResolveAliasResponse {
  room_id: string;
  servers: string[];
}

export interface PingResponse {
  duration_ms: number;
}

export interface PutDeviceResult {
  /** True when the homeserver created the device (201), false when it already existed (200). */
  created: boolean;
}
