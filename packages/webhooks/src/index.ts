export * from "./config.js";
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
export * from "./ingress/index.js";
export * from "./rendering/index.js";
export * from "./templates/index.js";
