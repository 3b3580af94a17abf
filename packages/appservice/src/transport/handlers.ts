import type { TransactionSource } from "../transactions/ingest.js";
import type { ParsedTransaction } from "../transactions/types.js";

/** Third-party protocol metadata, as served on `GET /thirdparty/protocol/{protocol}`. */
export interface ThirdPartyProtocol {
  user_fields: string[];
  location_fields: string[];
  icon: string;
  field_types: Record<string, { regexp: string; placeholder: string }>;
  instances: ThirdPartyProtocolInstance[];
}

export interface ThirdPartyProtocolInstance {
  desc: string;
  icon?: string;
  fields: Record<string, unknown>;
  network_id: string;
}

export interface ThirdPartyLocation {
  alias: string;
  protocol: string;
  fields: Record<string, unknown>;
}

export interface ThirdPartyUser {
  userid: string;
  protocol: string;
  fields: Record<string, unknown>;
}

/** Search fields from the query string; a repeated field keeps its first value. */
export type ThirdPartyQuery = Record<string, string>;

/**
 * What the bridge or core implements behind the appservice HTTP API.
 *
 * Throwing a `MatrixError` answers with its status and errcode; any other error
 * answers 500 `M_UNKNOWN`, which makes the homeserver retry later.
 */
export interface AppserviceHttpHandlers {
  /**
   * Resolve once the transaction is durably stored; the 200 is sent only then.
   * The homeserver resends the same txnId when an answer is lost, so this must be idempotent.
   * `source` is the body as received, for `TransactionIngest.accept`.
   */
  onTransaction(txnId: string, txn: ParsedTransaction, source?: TransactionSource): Promise<void>;
  /** True once the user exists (the appservice registered it); false answers 404. */
  onUserQuery(userId: string): Promise<boolean>;
  /** True once the alias exists (the appservice created the room); false answers 404. */
  onAliasQuery(alias: string): Promise<boolean>;
  /** Null for a protocol this appservice does not serve (404). */
  getProtocol?(protocol: string): Promise<ThirdPartyProtocol | null>;
  /** An empty result answers 404, as the spec asks. */
  getLocations?(protocol: string, query: ThirdPartyQuery): Promise<ThirdPartyLocation[]>;
  getUsers?(protocol: string, query: ThirdPartyQuery): Promise<ThirdPartyUser[]>;
  getLocationsByAlias?(alias: string): Promise<ThirdPartyLocation[]>;
  getUsersByUserId?(userId: string): Promise<ThirdPartyUser[]>;
  /** Called on `POST /ping`, with the `transaction_id` the appservice sent in its own ping. */
  onPing?(transactionId?: string): Promise<void>;
}
