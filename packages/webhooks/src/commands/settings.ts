import type { HookSettings } from "../hooks/model.js";
import type { SignatureScheme } from "../ingress/signatures.js";
import { isBuiltinTemplateName } from "../templates/index.js";

/**
 * Checks shared by the room commands and the provisioning API. HookManager validates what it
 * must (msgtype, template, avatar scheme, rate limit); these add what a person typing or an
 * automation posting deserves to hear about before anything is written.
 */

export const SIGNATURE_SCHEMES: readonly SignatureScheme[] = ["github", "gitea", "forgejo", "gitlab"];

export function isSignatureScheme(value: unknown): value is SignatureScheme {
  return typeof value === "string" && (SIGNATURE_SCHEMES as readonly string[]).includes(value);
}

/** Matrix caps a display name at 256 UTF-16 code units in practice (Synapse's limit). */
export const MAX_DISPLAY_NAME_LENGTH = 256;

/** What is wrong with a display name, or undefined when it is fine. */
export function displayNameProblem(name: string): string | undefined {
  if (name.trim() === "") return "The display name is empty";
  if (name.length > MAX_DISPLAY_NAME_LENGTH) {
    return `The display name is ${name.length} characters long; the limit is ${MAX_DISPLAY_NAME_LENGTH}`;
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(name))
    return "The display name must be one line without control characters";
  return undefined;
}

/** `mxc://<server>/<media id>`, as the media repository hands them out. */
const MXC_URI = /^mxc:\/\/[A-Za-z0-9.\-:[\]]+\/[A-Za-z0-9_-]+$/;

export function isMxcUri(value: string): boolean {
  return MXC_URI.test(value);
}

/** What is wrong with an avatar URI, or undefined when it is fine. */
export function avatarUrlProblem(url: string): string | undefined {
  return isMxcUri(url)
    ? undefined
    : "The avatar must be an mxc:// URI (upload the image to Matrix first, e.g. by sending it to a room)";
}

/** A built-in template's name in its canonical (lower) case; anything else as given. */
export function normalizeTemplate(template: string): string {
  const trimmed = template.trim();
  const lower = trimmed.toLowerCase();
  return isBuiltinTemplateName(lower) ? lower : trimmed;
}

/** How a template reads in a list: the built-in's name, or the size of an inline one. */
export function templateSummary(template: string): string {
  return isBuiltinTemplateName(template) ? template : `inline (${[...template].length} characters)`;
}

/** A change to a hook's sender: `null` removes a field, absent keeps it. */
export interface SenderPatch {
  displayName?: string | null;
  avatarUrl?: string | null;
}

export function mergeSender(current: HookSettings["sender"], patch: SenderPatch): HookSettings["sender"] {
  const merged: HookSettings["sender"] = { ...current };
  for (const key of ["displayName", "avatarUrl"] as const) {
    const value = patch[key];
    if (value === null) delete merged[key];
    else if (value !== undefined) merged[key] = value;
  }
  return merged;
}
