#!/usr/bin/env node
// trestle-webhooks -c config.yaml -f registration.yaml [-p PORT]
// trestle-webhooks -c config.yaml -r -u URL [-f registration.yaml]
import { generateRegistration, runBridgeCli } from "@trestle/appservice";
import { WebhooksBridge } from "./bridge.js";
import { type WebhooksConfig, webhooksConfigSchema } from "./config.js";

process.exit(
  await runBridgeCli<WebhooksConfig>({
    name: "trestle-webhooks",
    description: "Generic webhooks into Matrix rooms, with handlebars templates.",
    configSchema: webhooksConfigSchema,
    defaultPort: 9100,
    generateRegistration: (config, request) =>
      generateRegistration({
        id: request.id ?? "webhooks",
        url: request.url,
        senderLocalpart: request.localpart ?? config.webhooks.botLocalpart,
        userPrefix: config.webhooks.userPrefix,
        serverName: config.homeserver.domain,
      }),
    start: async ({ config, registration, port, logger }) => {
      const bridge = new WebhooksBridge({ config, registration, logger, port });
      await bridge.start();
      return bridge;
    },
  }),
);
