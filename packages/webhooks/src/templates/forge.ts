/*
 * Templates for GitHub-style forge events. Gitea and Forgejo send payloads shaped like
 * GitHub's for these events (same `action`, `pull_request.merged`, `release.tag_name`…), so
 * both built-ins share them; where the shapes differ the template takes either field
 * (`compare` on GitHub, `compare_url` on Gitea).
 */

const REPO = "{{link repository.full_name repository.html_url}}";

const forgePush = `{{#if deleted}}
🗑️ **{{sender.login}}** deleted {{ref_type ref}} {{code (ref_name ref)}} in ${REPO}
{{else if (eq (ref_type ref) "tag")}}
🏷️ **{{sender.login}}** pushed tag {{code (ref_name ref)}} to ${REPO}
{{else}}
**{{sender.login}}** {{#if forced}}force-pushed{{else}}pushed{{/if}} {{pluralize (len commits) "commit"}} to {{#if created}}new {{/if}}branch {{code (ref_name ref)}} of ${REPO}{{#if (default compare compare_url)}} ({{link "compare" (default compare compare_url)}}){{/if}}
{{#each (first commits 10)}}
- {{link (code (short_sha id)) url}} {{first_line message}} — {{default author.username author.name}}
{{/each}}
{{#if (gt (len commits) 10)}}
- … and {{pluralize (sub (len commits) 10) "more commit"}}
{{/if}}
{{/if}}
`;

const PR_LINK = `{{link (concat "#" pull_request.number " " pull_request.title) pull_request.html_url}}`;

const forgePullRequest = `{{#if (and (eq action "closed") pull_request.merged)}}
🟣 **{{sender.login}}** merged pull request ${PR_LINK}{{#if (ne sender.login pull_request.user.login)}} by **{{pull_request.user.login}}**{{/if}} into {{code pull_request.base.ref}} of ${REPO}
{{else if (eq action "opened")}}
🔀 **{{sender.login}}** opened {{#if pull_request.draft}}draft {{/if}}pull request ${PR_LINK} ({{code pull_request.head.ref}} → {{code pull_request.base.ref}}) in ${REPO}
{{else}}
{{#if (eq action "closed")}}🔴 {{else if (eq action "reopened")}}🔁 {{/if}}**{{sender.login}}** {{replace action "_" " "}} pull request ${PR_LINK}{{#if (ne sender.login pull_request.user.login)}} by **{{pull_request.user.login}}**{{/if}} in ${REPO}
{{/if}}
`;

const forgeIssues = `{{#if (eq action "opened")}}🐛 {{else if (eq action "closed")}}✔️ {{else if (eq action "reopened")}}🔁 {{/if}}**{{sender.login}}** {{replace action "_" " "}} issue {{link (concat "#" issue.number " " issue.title) issue.html_url}} in ${REPO}
`;

const forgeRelease = `🚀 **{{sender.login}}** {{replace action "_" " "}} {{#if release.prerelease}}pre-release{{else}}release{{/if}} {{link (default release.name release.tag_name) release.html_url}}{{#if (and release.name (ne release.name release.tag_name))}} ({{code release.tag_name}}){{/if}} in ${REPO}
`;

/** A short line for events without a template of their own. */
function forgeUnknown(service: string, eventHeader: string): string {
  return `${service} event **{{default @headers.[${eventHeader}] "webhook"}}**{{#if action}} ({{replace action "_" " "}}){{/if}}{{#if repository.full_name}} in ${REPO}{{/if}}{{#if sender.login}} by **{{sender.login}}**{{/if}}
`;
}

/** The templates GitHub and Gitea share; `unknown` (also the default) names the service. */
export function forgeSources(service: string, eventHeader: string) {
  const unknown = forgeUnknown(service, eventHeader);
  return {
    default: unknown,
    unknown,
    push: forgePush,
    pull_request: forgePullRequest,
    issues: forgeIssues,
    release: forgeRelease,
  };
}

type ForgeEvent = "push" | "pull_request" | "issues" | "release" | "workflow_run" | "check_run" | "ping";

/** What a GitHub-style payload is when no event header came with it. */
export function guessForgeEvent(payload: unknown): ForgeEvent | undefined {
  if (!payload || typeof payload !== "object") return undefined;
  const has = (key: string) => key in payload;
  if (has("zen") && has("hook_id")) return "ping";
  if (has("pull_request") && has("action") && !has("comment") && !has("review")) return "pull_request";
  if (has("issue") && has("action") && !has("comment")) return "issues";
  if (has("release") && has("action")) return "release";
  if (has("workflow_run") && has("action")) return "workflow_run";
  if (has("check_run") && has("action")) return "check_run";
  if (has("commits") && has("ref") && (has("pusher") || has("compare") || has("compare_url"))) return "push";
  return undefined;
}

/** The variant for a forge event: the header's event if there is a template for it, else a guess, else `unknown`. */
export function forgeVariant(
  event: string | undefined,
  payload: unknown,
  variants: readonly string[],
): string {
  if (event) return variants.includes(event) ? event : "unknown";
  const guess = guessForgeEvent(payload);
  return guess && variants.includes(guess) ? guess : "unknown";
}
