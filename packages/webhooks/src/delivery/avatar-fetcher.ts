import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import type { AvatarFetcher } from "./poster.js";

export interface HttpAvatarFetcherOptions {
  /** Whole fetch, redirects included (default 5 s). */
  timeoutMs?: number;
  /** Largest image accepted (default 1 MiB). */
  maxBytes?: number;
  /** Redirects followed, each checked like the first URL (default 3). */
  maxRedirects?: number;
  /**
   * Fetch from loopback, private, link-local and other non-public addresses. Off by default:
   * anyone holding a hook's URL chooses `icon_url`, and the bridge must not become their way into
   * the network it runs in (the fetched image would be shown in the room).
   */
  allowPrivateAddresses?: boolean;
}

/**
 * Raster images only: an SVG is a document (scripts, external references) that every client of
 * the room would be handed as the sender's avatar.
 */
const AVATAR_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

/** Why an avatar was not fetched; the poster logs it and keeps the hook's own avatar. */
export class AvatarFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AvatarFetchError";
  }
}

/** Address ranges that are not the public internet (IANA special-purpose registries). */
function nonPublicAddresses(): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10],
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.0.0.0", 24],
    ["192.168.0.0", 16],
    ["198.18.0.0", 15],
    ["224.0.0.0", 4],
    ["240.0.0.0", 4],
  ] as const)
    list.addSubnet(net, prefix, "ipv4");
  for (const [net, prefix] of [
    ["::", 128],
    ["::1", 128],
    ["::ffff:0:0", 96],
    ["64:ff9b::", 96],
    ["fc00::", 7],
    ["fe80::", 10],
    ["ff00::", 8],
  ] as const)
    list.addSubnet(net, prefix, "ipv6");
  return list;
}

/**
 * Fetches avatar images over http(s) for the poster (a Slack payload's `icon_url`): bounded in
 * time, size and redirects, images only, and by default never from a non-public address. The
 * address is checked after DNS resolution and the connection goes to that checked address, so a
 * name that resolves differently on the second lookup (DNS rebinding) cannot slip through.
 */
export function createHttpAvatarFetcher(options: HttpAvatarFetcherOptions = {}): AvatarFetcher {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  const maxRedirects = options.maxRedirects ?? 3;
  const blocked = options.allowPrivateAddresses ? undefined : nonPublicAddresses();

  const isBlocked = (address: string, family: number) =>
    blocked?.check(address, family === 6 ? "ipv6" : "ipv4") ?? false;

  const checkedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    dnsLookup(hostname, { ...lookupOptions, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 0);
      const allowed = addresses.filter((a) => !isBlocked(a.address, a.family));
      if (allowed.length === 0) {
        return callback(new AvatarFetchError(`${hostname} is not a public address`), "", 0);
      }
      if (lookupOptions.all) return callback(null, allowed as unknown as string, 0);
      const first = allowed[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };

  const get = (url: URL, signal: AbortSignal): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const literal = isIP(url.hostname.replace(/^\[|\]$/g, ""));
      if (literal && isBlocked(url.hostname.replace(/^\[|\]$/g, ""), literal)) {
        reject(new AvatarFetchError(`${url.hostname} is not a public address`));
        return;
      }
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const req = send(url, { method: "GET", lookup: checkedLookup, signal, headers: { accept: "image/*" } });
      req.once("response", resolve);
      req.once("error", reject);
      req.end();
    });

  return async (source) => {
    let url: URL;
    try {
      url = new URL(source);
    } catch {
      throw new AvatarFetchError("not a URL");
    }
    const signal = AbortSignal.timeout(timeoutMs);
    for (let redirects = 0; ; redirects++) {
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new AvatarFetchError(`${url.protocol} URLs are not fetched`);
      }
      const response = await get(url, signal);
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        if (redirects >= maxRedirects) throw new AvatarFetchError(`more than ${maxRedirects} redirects`);
        url = new URL(response.headers.location, url);
        continue;
      }
      if (status !== 200) {
        response.resume();
        throw new AvatarFetchError(`the server answered ${status}`);
      }
      const contentType = (response.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
      if (!AVATAR_TYPES.has(contentType)) {
        response.resume();
        throw new AvatarFetchError(`not an image (${contentType || "no content type"})`);
      }
      const declared = Number(response.headers["content-length"]);
      if (Number.isFinite(declared) && declared > maxBytes) {
        response.destroy();
        throw new AvatarFetchError(`larger than ${maxBytes} bytes`);
      }
      return { data: await readAtMost(response, maxBytes), contentType };
    }
  };
}

async function readAtMost(response: IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      response.destroy();
      throw new AvatarFetchError(`larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
