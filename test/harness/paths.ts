import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, whatever the current directory of the test run. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Everything the harness downloads or builds lives here (git-ignored, reused between runs). */
export const CACHE_DIR = process.env.TRESTLE_CACHE_DIR ?? path.join(REPO_ROOT, ".cache");

/** Per-instance directories and log files of the current run. */
export const RUN_DIR = path.join(
  CACHE_DIR,
  "runs",
  `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`,
);

export const isCI = process.env.CI === "true";
