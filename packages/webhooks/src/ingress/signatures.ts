import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { SignatureError } from "./errors.js";
import { type HeaderBag, readHeader } from "./headers.js";

/**
 * How a hook authenticates its sender, on top of the secret in its URL:
 *
 * - `github`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
 * - `gitea` / `forgejo` (the same scheme): `X-Gitea-Signature` and/or `X-Forgejo-Signature`:
 *   `<hex HMAC-SHA256 of the raw body>`. Forgejo sends both; every one present must verify.
 * - `gitlab`: `X-Gitlab-Token: <the secret itself>`.
 */
export type SignatureScheme = "github" | "gitea" | "forgejo" | "gitlab";

export interface HookSignatureConfig {
  scheme: SignatureScheme;
  /** The HMAC key (github, gitea, forgejo) or the expected token (gitlab). Never logged. */
  secret: string;
}

export interface VerifiedSignature {
  scheme: SignatureScheme;
  /** The headers that were checked, as the sender spells them. */
  headers: string[];
}

const GITHUB_HEADER = "X-Hub-Signature-256";
const GITEA_HEADER = "X-Gitea-Signature";
const FORGEJO_HEADER = "X-Forgejo-Signature";
const GITLAB_HEADER = "X-Gitlab-Token";

const GITHUB_FORMAT = /^sha256=([0-9a-f]{64})$/i;
const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/**
 * Checks a request against its hook's signature setting; a hook without one (`config` undefined)
 * needs nothing and gets `undefined`. Throws SignatureError (403 `M_FORBIDDEN`) naming the header
 * that is missing, malformed or wrong, never its value. Every comparison is constant-time over
 * equal-length buffers.
 *
 * `rawBody` must be the bytes as received: any re-serialisation of a parsed body changes the HMAC.
 */
export function verifyWebhookSignature(
  config: HookSignatureConfig | undefined,
  headers: HeaderBag,
  rawBody: Buffer,
): VerifiedSignature | undefined {
  if (!config) return undefined;
  // An empty key is a key everyone knows: refuse the setting rather than accept forgeries.
  if (config.secret === "") throw new RangeError(`A ${config.scheme} signing secret must not be empty`);
  switch (config.scheme) {
    case "github": {
      const value = requireHeader(headers, GITHUB_HEADER);
      const hex = GITHUB_FORMAT.exec(value.trim())?.[1];
      if (!hex) throw new SignatureError(GITHUB_HEADER, "malformed", "expected sha256=<64 hex digits>");
      checkHmac(GITHUB_HEADER, hex, config.secret, rawBody);
      return { scheme: config.scheme, headers: [GITHUB_HEADER] };
    }
    case "gitea":
    case "forgejo": {
      const names = [GITEA_HEADER, FORGEJO_HEADER];
      const present = names.filter((name) => readHeader(headers, name).state !== "absent");
      if (present.length === 0) {
        const primary = config.scheme === "gitea" ? GITEA_HEADER : FORGEJO_HEADER;
        throw new SignatureError(
          primary,
          "missing",
          `either ${GITEA_HEADER} or ${FORGEJO_HEADER} is required`,
        );
      }
      for (const name of present) {
        const hex = requireHeader(headers, name).trim();
        if (!HEX_SHA256.test(hex)) throw new SignatureError(name, "malformed", "expected 64 hex digits");
        checkHmac(name, hex, config.secret, rawBody);
      }
      return { scheme: config.scheme, headers: present };
    }
    case "gitlab": {
      const token = requireHeader(headers, GITLAB_HEADER);
      // Hashing first makes the buffers equal in length, so the comparison leaks nothing, not even
      // the length of the expected token.
      if (!timingSafeEqual(sha256(token), sha256(config.secret))) {
        throw new SignatureError(GITLAB_HEADER, "mismatch", "wrong token");
      }
      return { scheme: config.scheme, headers: [GITLAB_HEADER] };
    }
    default:
      // Never fail open: a scheme this code does not know is a misconfiguration, not "no check".
      throw new RangeError(
        `Unknown signature scheme ${JSON.stringify((config as { scheme: unknown }).scheme)}`,
      );
  }
}

function requireHeader(headers: HeaderBag, name: string): string {
  const read = readHeader(headers, name);
  if (read.state === "absent") throw new SignatureError(name, "missing");
  if (read.state === "ambiguous") throw new SignatureError(name, "ambiguous", "send it once");
  return read.value;
}

/** `hex` has been checked to be 64 hex digits, so both buffers are 32 bytes. */
function checkHmac(header: string, hex: string, secret: string, rawBody: Buffer): void {
  const expected = createHmac("sha256", secret).update(rawBody).digest();
  if (!timingSafeEqual(Buffer.from(hex, "hex"), expected)) {
    throw new SignatureError(header, "mismatch", "HMAC-SHA256 of the body with this hook's secret differs");
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
