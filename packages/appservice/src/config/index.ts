export {
  type CoreConfig,
  coreConfigProperties,
  coreConfigRequired,
  coreConfigSchema,
  extendCoreConfigSchema,
} from "./core-schema.js";
export { type DeepPartial, type LoadConfigOptions, loadConfig, parseConfig } from "./load-config.js";
export type { JSONSchema } from "./validation.js";
