import type { BuiltinTemplate } from "../rendering/types.js";
import { forgeSources, forgeVariant } from "./forge.js";

/**
 * Gitea and Forgejo (https://docs.gitea.com/usage/webhooks). Both send `X-Gitea-Event` (Forgejo
 * also `X-Forgejo-Event`) besides GitHub-compatible `X-GitHub-Event` headers.
 */

const sources = forgeSources("Gitea", "x-gitea-event");

const variants = Object.keys(sources);

export const gitea: BuiltinTemplate = {
  name: "gitea",
  description: "Gitea and Forgejo: push, pull requests, issues, releases",
  sources,
  detect: (headers, payload) =>
    forgeVariant(
      headers["x-gitea-event"] ?? headers["x-forgejo-event"] ?? headers["x-gogs-event"],
      payload,
      variants,
    ),
};
