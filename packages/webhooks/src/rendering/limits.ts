/*
 * Keeping a message under Matrix's event size limit (65,536 bytes for the whole event as JSON).
 * `body` and `formatted_body` share one budget; when they do not fit, both are cut by the same
 * share of their size, on a UTF-8 safe boundary, and end with a visible marker. Cut HTML is
 * sanitised again, which closes the tags the cut left open.
 */

/** Bytes a string takes inside the event's JSON (escapes included, quotes excluded). */
export function jsonBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text), "utf8") - 2;
}

export function truncationNotice(bytesOver: number): string {
  return `… (truncated: ${bytesOver} bytes over the limit)`;
}

export interface Fitted {
  body: string;
  html: string;
  /** How many bytes the message was over the budget; 0 when it fitted. */
  bytesOver: number;
}

export function fitMessage(
  body: string,
  html: string,
  budget: number,
  sanitize: (html: string) => string,
  alreadyDropped = 0,
): Fitted {
  const bodyBytes = jsonBytes(body);
  const htmlBytes = jsonBytes(html);
  const bytesOver = bodyBytes + htmlBytes + alreadyDropped - budget;
  if (bytesOver <= 0 && alreadyDropped === 0) return { body, html, bytesOver: 0 };
  const over = Math.max(1, bytesOver);
  const bodyBudget = Math.floor((budget * bodyBytes) / Math.max(1, bodyBytes + htmlBytes));
  return {
    body: trimText(body, bodyBudget, over),
    html: trimHtml(html, budget - bodyBudget, over, sanitize),
    bytesOver: over,
  };
}

/** A cut position that does not split a surrogate pair. */
function codePointBoundary(text: string, index: number): number {
  if (index <= 0 || index >= text.length) return Math.max(0, Math.min(index, text.length));
  const previous = text.charCodeAt(index - 1);
  return previous >= 0xd800 && previous <= 0xdbff ? index - 1 : index;
}

/** The largest n in [0, high] with fits(n), assuming fits is (nearly) monotonic; 0 if none. */
function largestFitting(high: number, fits: (n: number) => boolean): number {
  let low = 0;
  let best = 0;
  let top = high;
  while (low <= top) {
    const mid = Math.floor((low + top) / 2);
    if (fits(mid)) {
      best = mid;
      low = mid + 1;
    } else {
      top = mid - 1;
    }
  }
  return best;
}

export function trimText(text: string, limit: number, bytesOver: number): string {
  const marker = `\n\n${truncationNotice(bytesOver)}`;
  const candidate = (n: number) => text.slice(0, codePointBoundary(text, n)).trimEnd() + marker;
  const n = largestFitting(Math.min(text.length, limit), (k) => jsonBytes(candidate(k)) <= limit);
  return n === 0 ? marker.trimStart() : candidate(n);
}

/** A cut position outside any tag or character reference. */
function htmlBoundary(html: string, index: number): number {
  let cut = codePointBoundary(html, index);
  const lastOpen = html.lastIndexOf("<", cut - 1);
  if (lastOpen > html.lastIndexOf(">", cut - 1)) cut = lastOpen;
  const lastAmp = html.lastIndexOf("&", cut - 1);
  if (lastAmp > html.lastIndexOf(";", cut - 1) && cut - lastAmp < 12) cut = lastAmp;
  return cut;
}

export function trimHtml(
  html: string,
  limit: number,
  bytesOver: number,
  sanitize: (html: string) => string,
): string {
  const marker = `<p><em>${truncationNotice(bytesOver)}</em></p>`;
  const candidate = (n: number) => sanitize(html.slice(0, htmlBoundary(html, n))) + marker;
  const n = largestFitting(Math.min(html.length, limit), (k) => jsonBytes(candidate(k)) <= limit);
  return n === 0 ? marker : candidate(n);
}
