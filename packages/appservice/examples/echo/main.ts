#!/usr/bin/env node
// `echo-bridge -c config.yaml -f registration.yaml`, or `-r -u URL` to write a registration.
import { runBridgeCli } from "@trestle/appservice";
import { createEchoBridge, type EchoConfig, echoConfigSchema, echoRegistration } from "./echo-bridge.js";

process.exit(
  await runBridgeCli<EchoConfig>({
    name: "echo-bridge",
    description: "The example echo bridge of @trestle/appservice.",
    configSchema: echoConfigSchema,
    defaultPort: 9000,
    generateRegistration: (config, request) => echoRegistration(config, request.url, request.id),
    start: async ({ config, registration, port, logger }) => {
      const bridge = createEchoBridge(config, registration, logger, port);
      await bridge.start();
      return bridge;
    },
  }),
);
