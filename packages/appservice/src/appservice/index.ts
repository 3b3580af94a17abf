export * from "./appservice.js";
