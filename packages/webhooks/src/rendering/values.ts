/** Small conversions the helpers share: truthiness, text, numbers, dates. */

/** Handlebars' notion of truth: empty arrays are false too. */
export function isTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return Boolean(value);
}

/** Values that mean "nothing here" for `default`. */
export function isBlank(value: unknown): boolean {
  return (
    value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0)
  );
}

/** Text of a value the way `{{value}}` shows it: nothing for null/undefined. */
export function toText(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return String(value);
  if (typeof value === "object" && typeof (value as { toHTML?: unknown }).toHTML === "function") {
    return String(value);
  }
  if (Array.isArray(value)) return value.map(toText).join(", ");
  return JSON.stringify(value) ?? "";
}

export function toNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Characters, not UTF-16 units: an emoji counts as one and is never cut in half. */
export function characters(text: string): string[] {
  return Array.from(text);
}

/**
 * A Date from an ISO-8601 string, an RFC-2822-ish string, or an epoch in seconds or
 * milliseconds (a number or a numeric string; values below 10^11 are taken as seconds).
 */
export function toDate(value: unknown): Date | undefined {
  let date: Date;
  const epoch =
    typeof value === "number" || (typeof value === "string" && /^\d+(\.\d+)?$/.test(value.trim()));
  if (epoch) {
    const n = Number(value);
    date = new Date(Math.abs(n) < 1e11 ? n * 1000 : n);
  } else if (typeof value === "string" && value.trim() !== "") {
    date = new Date(value.trim());
  } else if (value instanceof Date) {
    date = value;
  } else {
    return undefined;
  }
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export type DateFormat = "datetime" | "date" | "time" | "full" | "iso";

/** A readable UTC timestamp: `2024-01-15 14:03 UTC` by default. */
export function formatDate(date: Date, format: DateFormat): string {
  const iso = date.toISOString();
  const day = iso.slice(0, 10);
  const minutes = iso.slice(11, 16);
  switch (format) {
    case "date":
      return day;
    case "time":
      return `${minutes} UTC`;
    case "full":
      return `${day} ${iso.slice(11, 19)} UTC`;
    case "iso":
      return iso;
    default:
      return `${day} ${minutes} UTC`;
  }
}

export function isDateFormat(value: unknown): value is DateFormat {
  return value === "datetime" || value === "date" || value === "time" || value === "full" || value === "iso";
}

/** `3725` → `1h 2m 5s`. */
export function formatDuration(totalSeconds: number): string {
  const seconds = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const parts: string[] = [];
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  if (s || parts.length === 0) parts.push(`${s}s`);
  return parts.join(" ");
}

const STATUS_EMOJI: Record<string, string> = {
  success: "✅",
  succeeded: "✅",
  successful: "✅",
  passed: "✅",
  ok: "✅",
  resolved: "✅",
  normal: "✅",
  failure: "❌",
  failed: "❌",
  error: "❌",
  errored: "❌",
  startup_failure: "❌",
  timed_out: "⏱️",
  firing: "🔥",
  alerting: "🔥",
  cancelled: "🚫",
  canceled: "🚫",
  skipped: "⏭️",
  action_required: "⚠️",
  warning: "⚠️",
  manual: "⏸️",
  neutral: "⚪",
  stale: "💤",
  running: "🔄",
  in_progress: "🔄",
  pending: "⏳",
  queued: "⏳",
  waiting: "⏳",
  waiting_for_resource: "⏳",
  preparing: "⏳",
  requested: "⏳",
  created: "⏳",
  scheduled: "⏳",
  no_data: "❔",
  nodata: "❔",
};

/** ✅ ❌ 🔥 🚫 ⏳ … for CI and alert statuses; ❔ for anything else. */
export function statusEmoji(status: unknown): string {
  if (typeof status !== "string") return "❔";
  return STATUS_EMOJI[status.trim().toLowerCase()] ?? "❔";
}

const NAMED_COLOURS: Record<string, string> = { good: "🟩", warning: "🟨", danger: "🟥" };

/**
 * A coloured square for a Slack attachment colour (`good`/`warning`/`danger` or `#rrggbb`):
 * Matrix messages have no coloured side bar, but a square shows the same signal in any client.
 */
export function colourSquare(colour: unknown): string {
  if (typeof colour !== "string") return "";
  const named = NAMED_COLOURS[colour.trim().toLowerCase()];
  if (named) return named;
  const hex = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(colour.trim())?.[1];
  if (!hex) return "";
  const full = hex.length === 3 ? [...hex].map((c) => c + c).join("") : hex;
  const [r, g, b] = [0, 2, 4].map((i) => Number.parseInt(full.slice(i, i + 2), 16) / 255) as [
    number,
    number,
    number,
  ];
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const lightness = (max + min) / 2;
  if (max - min < 0.15) return lightness > 0.5 ? "⬜" : "⬛";
  let hue: number;
  if (max === r) hue = ((g - b) / (max - min) + 6) % 6;
  else if (max === g) hue = (b - r) / (max - min) + 2;
  else hue = (r - g) / (max - min) + 4;
  hue *= 60;
  if (hue < 15 || hue >= 345) return "🟥";
  if (hue < 45) return "🟧";
  if (hue < 70) return "🟨";
  if (hue < 170) return "🟩";
  if (hue < 260) return "🟦";
  return "🟪";
}
