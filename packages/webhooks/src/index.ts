export * from "./bridge.js";
export * from "./commands/index.js";
export * from "./config.js";
export * from "./delivery/index.js";
export { type DirectMessage, DirectMessenger, type DirectMessengerOptions, membershipOf } from "./dm.js";
export * from "./hooks/errors.js";
export * from "./hooks/hook-manager.js";
export * from "./hooks/hook-store.js";
export * from "./hooks/model.js";
export {
  generateHookId,
  generateHookSecret,
  hashSecret,
  redactWebhookUrl,
  type SecretHashOptions,
  verifySecret,
} from "./hooks/secrets.js";
export * from "./http/errors.js";
export { createWebhookRouter, WEBHOOK_ROUTE, type WebhookRouterDeps } from "./http/webhook-routes.js";
export * from "./ingress/index.js";
export * from "./provisioning/index.js";
export * from "./rendering/index.js";
export * from "./templates/index.js";
