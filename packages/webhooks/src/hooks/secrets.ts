import { createHmac, hash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * A hook's URL is `/webhooks/v1/{hookId}/{secret}`. The id names the hook (lookups, logs, metrics)
 * and is not a credential; the secret is, and is stored only as a hash.
 */

const SECRET_BYTES = 32;
const HOOK_ID_BYTES = 12;
const SALT_BYTES = 16;

/** A new hook secret: 256 random bits, base64url (43 characters). */
export function generateHookSecret(): string {
  return randomBytes(SECRET_BYTES).toString("base64url");
}

/**
 * A new hook id: 96 random bits, base64url (16 characters). Random rather than sequential so ids
 * reveal neither how many hooks exist nor the id of anyone else's hook.
 */
export function generateHookId(): string {
  return randomBytes(HOOK_ID_BYTES).toString("base64url");
}

export interface SecretHashOptions {
  /**
   * A server-side key kept out of the database (config or environment). With it, a stolen database
   * alone does not even allow checking a guessed secret. Hashes made with a pepper record that
   * they need one, and verifying them without it throws instead of failing every request quietly.
   */
  pepper?: string;
}

/**
 * The stored form of a hook secret: `sha256$<salt>$<digest>` (or `hmac-sha256$…` with a pepper),
 * salt and digest in base64url, digest = SHA-256(salt ‖ secret) or HMAC-SHA256(pepper, salt ‖ secret).
 *
 * Why no slow KDF (bcrypt, scrypt, argon2): those make each guess expensive so that a low-entropy,
 * human-chosen password survives an offline dictionary attack. A hook secret is 256 bits from the
 * CSPRNG: there is no dictionary, and 2^256 guesses are out of reach at any hash speed, so slowing
 * each guess down adds nothing. It would cost on every request instead: the endpoint verifies a
 * secret per delivery, and a deliberately slow hash there hands anyone a cheap CPU-exhaustion lever.
 * The per-hash random salt makes equal secrets hash differently and the hashes of different hooks
 * incomparable.
 */
export function hashSecret(secret: string, options: SecretHashOptions = {}): string {
  const salt = randomBytes(SALT_BYTES);
  const scheme = options.pepper === undefined ? "sha256" : "hmac-sha256";
  return [
    scheme,
    salt.toString("base64url"),
    digest(scheme, salt, secret, options.pepper).toString("base64url"),
  ].join("$");
}

/**
 * Whether `secret` is the one `storedHash` was made from, compared in constant time. Throws (a
 * configuration or storage fault, not a wrong secret) when `storedHash` is malformed or needs a
 * pepper that was not given.
 */
export function verifySecret(secret: string, storedHash: string, options: SecretHashOptions = {}): boolean {
  const [scheme, saltText, digestText, ...rest] = storedHash.split("$");
  if (
    (scheme !== "sha256" && scheme !== "hmac-sha256") ||
    saltText === undefined ||
    digestText === undefined
  ) {
    throw new Error("Stored hook secret hash is malformed");
  }
  const salt = Buffer.from(saltText, "base64url");
  const expected = Buffer.from(digestText, "base64url");
  if (rest.length > 0 || salt.length !== SALT_BYTES || expected.length !== 32) {
    throw new Error("Stored hook secret hash is malformed");
  }
  if (scheme === "hmac-sha256" && options.pepper === undefined) {
    throw new Error("Stored hook secret hash needs the server's secret pepper, which is not configured");
  }
  return timingSafeEqual(digest(scheme, salt, secret, options.pepper), expected);
}

function digest(
  scheme: "sha256" | "hmac-sha256",
  salt: Buffer,
  secret: string,
  pepper: string | undefined,
): Buffer {
  // One-shot hashing for the common case: a hash object per request shows on the ack path.
  if (scheme === "sha256")
    return hash("sha256", Buffer.concat([salt, Buffer.from(secret, "utf8")]), "buffer") as unknown as Buffer;
  return createHmac("sha256", pepper ?? "")
    .update(salt)
    .update(secret, "utf8")
    .digest();
}

const REDACTED = "<redacted>";
/** `/webhooks/v1/` then the hook id; everything after the id is secret. */
const WEBHOOK_PATH = /(\/webhooks\/v1\/[^/?#]*)\/[^?#]*/i;

/**
 * A webhook URL or path that is safe to log: `/webhooks/v1/<id>/<redacted>`. Everything after the
 * hook id goes, and so do a query string, a fragment and URL credentials, which could carry a
 * token too. Works on absolute URLs and on bare paths (koa's `ctx.url`), under any mount prefix.
 */
export function redactWebhookUrl(url: string): string {
  let absolute: URL | undefined;
  try {
    absolute = /^[a-z][a-z0-9+.-]*:/i.test(url) ? new URL(url) : undefined;
  } catch {
    absolute = undefined;
  }
  if (absolute) {
    const origin = `${absolute.protocol}//${absolute.username || absolute.password ? `${REDACTED}@` : ""}${absolute.host}`;
    return origin + redactPath(absolute.pathname, absolute.search + absolute.hash);
  }
  const cut = url.search(/[?#]/);
  return cut === -1 ? redactPath(url, "") : redactPath(url.slice(0, cut), url.slice(cut));
}

function redactPath(pathname: string, tail: string): string {
  return pathname.replace(WEBHOOK_PATH, `$1/${REDACTED}`) + (tail === "" ? "" : `?${REDACTED}`);
}
