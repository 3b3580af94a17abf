export * from "./errors.js";
export * from "./journal/index.js";
export * from "./namespaced.js";
export * from "./nedb/index.js";
export { openStores, type StoresOptions } from "./open.js";
export { openTogether } from "./together.js";
export type * from "./types.js";
