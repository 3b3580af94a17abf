/**
 * Leading characters that identify an event id that is a reference hash. Since room version 3 an
 * event id is `$` and the base64 of the event's SHA-256 (43 characters, no `:`), which no one can
 * choose: its first characters are as random as all of it. Ids of older rooms
 * (`$opaque:server.name`, chosen by the sending server; a homeserver refuses them without the
 * `:`) count whole.
 */
const REFERENCE_HASH_PREFIX = 16;

/**
 * How many leading characters of `id` a hash of it needs to read: 16 of a reference hash, all of
 * any other id. Hashing 16 characters instead of 44 is most of the cost of hashing an event id.
 */
export function hashedIdLength(id: string): number {
  return id.length > REFERENCE_HASH_PREFIX && id.indexOf(":") === -1 ? REFERENCE_HASH_PREFIX : id.length;
}
