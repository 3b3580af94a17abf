export {
  createProvisioningRouter,
  DEFAULT_PROVISIONING_BODY_LIMIT_BYTES,
  PROVISIONING_PREFIX,
  type ProvisioningRouterOptions,
} from "./router.js";
export {
  type CreateHookRequest,
  type HookView,
  hookView,
  InvalidParamError,
  MissingParamError,
  parseCreateBody,
  parseUpdateBody,
  type SettingsInput,
  type UpdateHookRequest,
} from "./validate.js";
