import type { BuiltinTemplate } from "../rendering/types.js";

/*
 * Prometheus Alertmanager (webhook payload version 4,
 * https://prometheus.io/docs/alerting/latest/configuration/#webhook_config) and Grafana's
 * unified alerting webhook contact point, which extends the same shape with dashboard, panel
 * and silence URLs. One message per group: a headline, then one list item per alert.
 */

const ALERT_HEADLINE =
  '{{status_emoji status}} **{{default labels.alertname "alert"}}**{{#if labels.severity}} ({{labels.severity}}){{/if}}{{#if labels.instance}} on {{code labels.instance}}{{/if}}{{#if annotations.summary}}: {{annotations.summary}}{{/if}}';

const ALERT_TIMES =
  '{{#if (eq status "resolved")}}resolved {{date endsAt}}{{else}}since {{date startsAt}}{{/if}}';

/** One alert as a list item: headline, description, then when and where to look. */
function alertItem(links: string): string {
  return `- ${ALERT_HEADLINE}
{{#if annotations.description}}
  {{annotations.description}}
{{/if}}
{{#if valueString}}
  Values: {{code valueString}}
{{/if}}
  ${ALERT_TIMES}${links}
`;
}

const alertmanagerLinks =
  '{{#if generatorURL}} · {{link "source" generatorURL}}{{/if}}{{#if (eq status "firing")}}{{#with (silence_url @root.externalURL labels)}} · {{link "silence" this}}{{/with}}{{/if}}';

const grafanaLinks =
  '{{#if dashboardURL}} · {{link "dashboard" dashboardURL}}{{/if}}{{#if panelURL}} · {{link "panel" panelURL}}{{/if}}{{#if generatorURL}} · {{link "source" generatorURL}}{{/if}}{{#if (eq status "firing")}}{{#if silenceURL}} · {{link "silence" silenceURL}}{{/if}}{{/if}}';

const TRUNCATED = `{{#if truncatedAlerts}}
… and {{pluralize truncatedAlerts "more alert"}} left out by the sender
{{/if}}
`;

const alertmanagerSource = `{{status_emoji status}} **{{uppercase status}}**{{#if groupLabels.alertname}} {{groupLabels.alertname}}{{/if}} · {{pluralize (len alerts) "alert"}}{{#if receiver}} for {{code receiver}}{{/if}}
{{#each alerts}}
${alertItem(alertmanagerLinks)}{{/each}}
${TRUNCATED}`;

const grafanaSource = `{{status_emoji status}} **{{default title (uppercase status)}}**
{{#each alerts}}
${alertItem(grafanaLinks)}{{else}}
{{message}}
{{/each}}
${TRUNCATED}`;

export const alertmanager: BuiltinTemplate = {
  name: "alertmanager",
  description: "Prometheus Alertmanager: firing and resolved alert groups",
  sources: { default: alertmanagerSource },
};

export const grafana: BuiltinTemplate = {
  name: "grafana",
  description: "Grafana alerting: firing and resolved alerts with dashboard, panel and silence links",
  sources: { default: grafanaSource },
};
