/** One namespace rule: a Python-syntax regex the homeserver applies with `re.match`. */
export interface NamespaceEntry {
  exclusive: boolean;
  regex: string;
}

export interface Namespaces {
  users: NamespaceEntry[];
  aliases: NamespaceEntry[];
  rooms: NamespaceEntry[];
}

/**
 * An appservice registration file, as the homeserver reads it. Keys this type does not
 * name (homeserver extensions such as Synapse's `ip_range_whitelist`, future MSC opt-ins)
 * are kept as they are, so a load-and-write round trip loses nothing.
 */
export interface Registration {
  id: string;
  /** Where the homeserver pushes transactions; `null` means it sends none. */
  url: string | null;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  /** Lists missing from the file are read as empty. */
  namespaces: Namespaces;
  rate_limited?: boolean;
  protocols?: string[];
  /** Stable MSC2409 opt-in (spec v1.13): `ephemeral` in transactions. */
  receive_ephemeral?: boolean;
  /** Unstable MSC2409 opt-in that Synapse still reads: `de.sorunome.msc2409.ephemeral` and `.to_device`. */
  "de.sorunome.msc2409.push_ephemeral"?: boolean;
  /** MSC3202 transaction extensions: device lists and one-time-key counts. */
  "org.matrix.msc3202"?: boolean;
  /** MSC4190 device management: register with `inhibit_login`, create devices with PUT /devices. */
  "io.element.msc4190"?: boolean;
  [extra: string]: unknown;
}
