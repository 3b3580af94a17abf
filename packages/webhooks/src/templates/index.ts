export {
  BUILTIN_TEMPLATE_NAMES,
  type BuiltinTemplateName,
  builtinTemplates,
  detectBuiltinTemplate,
  isBuiltinTemplateName,
  resolveTemplate,
  type TemplateRef,
} from "./registry.js";
