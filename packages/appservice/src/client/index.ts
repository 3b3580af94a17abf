export * from "./client.js";
export * from "./errors.js";
export * from "./metrics.js";
export * from "./ping.js";
export * from "./retry.js";
export type * from "./types.js";
