export {
  type BridgeCliOptions,
  DEFAULT_REGISTRATION_PATH,
  ExitCode,
  type RegistrationRequest,
  type RunningBridge,
  runBridgeCli,
  type StartContext,
  usage,
} from "./run-bridge-cli.js";
