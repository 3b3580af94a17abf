export { TemplateError, type TemplateErrorDetails, type TemplateErrorKind } from "./errors.js";
export { normalizeHeaders } from "./headers.js";
export { HELPER_NAMES } from "./helpers.js";
export { MATRIX_SANITIZE_OPTIONS, sanitizeMatrixHtml } from "./html.js";
export {
  CompiledTemplate,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_TEMPLATE_BYTES,
  type FallbackResult,
  type FromMarkdownOptions,
  Renderer,
  type RendererOptions,
  toEventContent,
} from "./renderer.js";
export type {
  BuiltinTemplate,
  HeaderInput,
  MessageEventContent,
  Msgtype,
  RenderContext,
  RenderedMessage,
  SenderHint,
  WebhookHeaders,
} from "./types.js";
