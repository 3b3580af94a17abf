export * from "./factory.js";
export * from "./intent.js";
export * from "./membership-cache.js";
export * from "./registration.js";
export * from "./serial-queue.js";
