import type { BuiltinTemplate } from "../rendering/types.js";

/** GitLab project and group webhooks (https://docs.gitlab.com/user/project/integrations/webhook_events/). */

const PROJECT = "{{link project.path_with_namespace project.web_url}}";
const ZERO_SHA = "0000000000000000000000000000000000000000";
const USER = "**{{default user_username user_name}}**";

const push = `{{#if (eq after "${ZERO_SHA}")}}
🗑️ ${USER} deleted {{ref_type ref}} {{code (ref_name ref)}} in ${PROJECT}
{{else if (eq object_kind "tag_push")}}
🏷️ ${USER} pushed tag {{code (ref_name ref)}} to ${PROJECT}
{{else}}
${USER} pushed {{pluralize total_commits_count "commit"}} to {{#if (eq before "${ZERO_SHA}")}}new {{/if}}branch {{code (ref_name ref)}} of ${PROJECT}{{#if (ne before "${ZERO_SHA}")}} ({{link "compare" (concat project.web_url "/-/compare/" before "..." after)}}){{/if}}
{{#each (first commits 10)}}
- {{link (code (short_sha id)) url}} {{default title (first_line message)}} — {{author.name}}
{{/each}}
{{#if (gt total_commits_count (len (first commits 10)))}}
- … and {{pluralize (sub total_commits_count (len (first commits 10))) "more commit"}}
{{/if}}
{{/if}}
`;

const MR = "object_attributes";
const mergeRequest = `{{#with ${MR}}}
{{#if (eq action "merge")}}🟣 {{else if (eq action "open")}}🔀 {{else if (eq action "close")}}🔴 {{/if}}**{{default @root.user.username @root.user.name}}** {{#if (eq action "open")}}opened{{else if (eq action "close")}}closed{{else if (eq action "reopen")}}reopened{{else if (eq action "update")}}updated{{else if (eq action "merge")}}merged{{else if (eq action "approval")}}approved{{else if (eq action "unapproval")}}unapproved{{else}}{{default action "updated"}}{{/if}} merge request {{link (concat "!" iid " " title) url}} ({{code source_branch}} → {{code target_branch}}) in {{link @root.project.path_with_namespace @root.project.web_url}}
{{/with}}
`;

const PIPELINE_URL = `(default ${MR}.url (concat project.web_url "/-/pipelines/" ${MR}.id))`;
const pipeline = `{{status_emoji ${MR}.status}} Pipeline {{link (concat "#" ${MR}.id) ${PIPELINE_URL}}} **{{${MR}.status}}** on {{code ${MR}.ref}} in ${PROJECT}{{#if ${MR}.duration}} after {{duration ${MR}.duration}}{{/if}}
{{#if commit}}
{{link (code (short_sha commit.id)) commit.url}} {{default commit.title (first_line commit.message)}} — {{commit.author.name}}
{{/if}}
{{#each builds}}
{{#if (eq status "failed")}}
- ❌ job **{{name}}** (stage {{stage}}) failed
{{/if}}
{{/each}}
`;

const unknown = `GitLab event **{{default object_kind @headers.[x-gitlab-event] "webhook"}}**{{#if project}} in ${PROJECT}{{/if}}{{#if user}} by **{{default user.username user.name}}**{{/if}}
`;

const BY_HEADER: Record<string, string> = {
  "Push Hook": "push",
  "Tag Push Hook": "push",
  "Merge Request Hook": "merge_request",
  "Pipeline Hook": "pipeline",
};

const BY_KIND: Record<string, string> = {
  push: "push",
  tag_push: "push",
  merge_request: "merge_request",
  pipeline: "pipeline",
};

export const gitlab: BuiltinTemplate = {
  name: "gitlab",
  description: "GitLab: push and tag push, merge requests, pipelines",
  sources: { default: unknown, unknown, push, merge_request: mergeRequest, pipeline },
  detect(headers, payload) {
    const kind =
      payload && typeof payload === "object" ? (payload as { object_kind?: unknown }).object_kind : undefined;
    if (typeof kind === "string") return BY_KIND[kind] ?? "unknown";
    const event = headers["x-gitlab-event"];
    return (event && BY_HEADER[event]) || "unknown";
  },
};
