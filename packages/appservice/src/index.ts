export * from "./errors.js";
export * from "./logging.js";
