import type { BuiltinTemplate } from "../rendering/types.js";
import { forgeSources, forgeVariant } from "./forge.js";

/** GitHub repository and organisation webhooks (https://docs.github.com/webhooks/webhook-events-and-payloads). */

const REPO = "{{link repository.full_name repository.html_url}}";

const workflowRun = `{{#if (eq action "completed")}}
{{status_emoji workflow_run.conclusion}} Workflow **{{default workflow.name workflow_run.name}}** finished with **{{default workflow_run.conclusion "no result"}}** on {{code workflow_run.head_branch}} in ${REPO} ({{link (concat "run #" workflow_run.run_number) workflow_run.html_url}}{{#if workflow_run.display_title}}: {{first_line workflow_run.display_title}}{{/if}})
{{else}}
{{status_emoji workflow_run.status}} Workflow **{{default workflow.name workflow_run.name}}** {{replace action "_" " "}} on {{code workflow_run.head_branch}} in ${REPO} ({{link (concat "run #" workflow_run.run_number) workflow_run.html_url}})
{{/if}}
`;

const checkRun = `{{#if (eq action "completed")}}
{{status_emoji check_run.conclusion}} Check **{{check_run.name}}** finished with **{{default check_run.conclusion "no result"}}** on {{code (short_sha check_run.head_sha)}}{{#if check_run.check_suite.head_branch}} ({{code check_run.check_suite.head_branch}}){{/if}} in ${REPO} · {{link "details" check_run.html_url}}
{{else}}
{{status_emoji check_run.status}} Check **{{check_run.name}}** {{replace action "_" " "}} on {{code (short_sha check_run.head_sha)}} in ${REPO} · {{link "details" check_run.html_url}}
{{/if}}
`;

const ping = `🏓 GitHub webhook {{hook_id}} is set up for {{#if repository}}${REPO}{{else}}**{{organization.login}}**{{/if}}{{#if hook.events}} (events: {{join hook.events}}){{/if}}
> {{zen}}
`;

const sources = {
  ...forgeSources("GitHub", "x-github-event"),
  workflow_run: workflowRun,
  check_run: checkRun,
  ping,
};

const variants = Object.keys(sources);

export const github: BuiltinTemplate = {
  name: "github",
  description: "GitHub: push, pull requests, issues, releases, workflow runs, check runs, ping",
  sources,
  detect: (headers, payload) => forgeVariant(headers["x-github-event"], payload, variants),
};
