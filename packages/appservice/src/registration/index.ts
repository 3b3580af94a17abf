export {
  escapeRegex,
  type GenerateRegistrationOptions,
  generateRegistration,
  generateToken,
} from "./generate.js";
export { NamespaceMatcher } from "./namespace-matcher.js";
export { compilePythonRegex, matchesAtStart, RegexTranslationError } from "./python-regex.js";
export {
  loadRegistration,
  parseRegistration,
  registrationSchema,
  stringifyRegistration,
  validateRegistration,
  writeRegistration,
} from "./registration-file.js";
export type { NamespaceEntry, Namespaces, Registration } from "./types.js";
