export * from "./errors.js";
export * from "./namespaced.js";
export * from "./nedb/index.js";
export type * from "./types.js";
