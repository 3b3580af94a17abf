export { DEFAULT_COMMAND_PREFIX, WebhookCommands, type WebhookCommandsOptions } from "./commands.js";
export { helpText } from "./help.js";
export {
  afterPrefix,
  COMMAND_NAMES,
  type CommandName,
  CommandSyntaxError,
  type CommandToken,
  commandNamed,
  type OptionsPatch,
  parseCommand,
  parseOptions,
  tokenize,
  type WebhookCommand,
} from "./parse.js";
export {
  checkStatePower,
  DEFAULT_STATE_LEVEL,
  hasPrivilegedCreators,
  type PowerCheck,
  type PowerLevelsContent,
  requiredStateLevel,
  userPowerLevel,
} from "./power.js";
export {
  avatarUrlProblem,
  displayNameProblem,
  isMxcUri,
  isSignatureScheme,
  MAX_DISPLAY_NAME_LENGTH,
  mergeSender,
  normalizeTemplate,
  type SenderPatch,
  SIGNATURE_SCHEMES,
} from "./settings.js";
