import { execFile, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { access, cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { CACHE_DIR } from "./paths.js";

const execFileAsync = promisify(execFile);

/** Pinned versions: a change here re-provisions on the next run. */
export const SYNAPSE_VERSION = "1.163.2";
/** Ergo tags v2.x under a v1 module path, so the Go toolchain can only name it by commit (v2.19.1). */
export const ERGO_VERSION = "2.19.1";
export const ERGO_COMMIT = "63c743a70644f0f19109508ade8580bf37f7d23d";
export const ERGO_MODULE = "github.com/ergochat/ergo";

export type Tool =
  | { available: true; name: string; version: string; binary: string }
  | {
      available: false;
      name: string;
      reason: string;
      /** The package registry refused it outright: it cannot be had on this machine, whoever runs the tests. */
      refusedByRegistry?: boolean;
    };

const PROVISION_LOG = path.join(CACHE_DIR, "provision.log");

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Runs a command, appending its output to the provisioning log; rejects with the log tail on failure. */
async function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  await mkdir(CACHE_DIR, { recursive: true });
  const log = createWriteStream(PROVISION_LOG, { flags: "a" });
  log.write(`\n$ ${command} ${args.join(" ")}\n`);
  let output = "";
  const code = await new Promise<number>((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      log.write(chunk);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.once("error", (err) => {
      output += err.message;
      resolve(127);
    });
    child.once("exit", (c) => resolve(c ?? 1));
  });
  await new Promise((r) => log.end(r));
  if (code !== 0) {
    const tail = output.trim().split("\n").slice(-15).join("\n");
    throw new Error(`${command} ${args.slice(0, 3).join(" ")} exited ${code}:\n${tail}`);
  }
  return output;
}

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => {
    result ??= fn();
    return result;
  };
}

/** Synapse from PyPI, pinned, in a venv under .cache/. */
export const ensureSynapse = memo(async (): Promise<Tool> => {
  const venv = path.join(CACHE_DIR, `synapse-${SYNAPSE_VERSION}`);
  const python = path.join(venv, "bin", "python");
  const marker = path.join(venv, ".installed");
  try {
    if (!(await exists(marker))) {
      await rm(venv, { recursive: true, force: true });
      const python3 = process.env.PYTHON ?? "python3";
      await run(python3, ["-m", "venv", venv]);
      await run(python, [
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        `matrix-synapse==${SYNAPSE_VERSION}`,
      ]);
      await writeFile(marker, `${SYNAPSE_VERSION}\n`);
    }
    const { stdout } = await execFileAsync(python, [
      "-c",
      "from importlib.metadata import version; print(version('matrix-synapse'))",
    ]);
    return { available: true, name: "Synapse", version: stdout.trim(), binary: python };
  } catch (err) {
    return {
      available: false,
      name: "Synapse",
      reason: `could not install matrix-synapse==${SYNAPSE_VERSION}: ${(err as Error).message}`,
    };
  }
});

async function ergoVersion(binary: string): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync(binary, ["--version"], { timeout: 5000 });
    // Debian's `ergo` is a quantum chemistry program; the IRC server answers "ergo-2.x.y".
    const match = /^ergo-(\d+\.\d+\.\d+\S*)/m.exec(stdout);
    return match?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Ergo, the IRC server with RELAYMSG, built from its Go module into .cache/bin/ergo.
 * Where the module proxy will not serve it, an Ergo IRCd already on PATH (or at
 * $TRESTLE_ERGO_BIN) is used; otherwise Ergo is reported unavailable with the reason.
 */
export const ensureErgo = memo(async (): Promise<Tool> => {
  const binary = path.join(CACHE_DIR, "bin", "ergo");
  const cached = await ergoVersion(binary);
  if (cached === ERGO_VERSION) return { available: true, name: "Ergo", version: cached, binary };

  let buildError: string;
  try {
    const gopath = path.join(CACHE_DIR, "go");
    const env = { GOPATH: gopath, GOMODCACHE: path.join(gopath, "pkg", "mod"), GOFLAGS: "-mod=mod" };
    const download = await run("go", ["mod", "download", "-json", `${ERGO_MODULE}@${ERGO_COMMIT}`], { env });
    const moduleDir = (JSON.parse(download) as { Dir?: string }).Dir;
    if (!moduleDir) throw new Error("go mod download gave no module directory");
    // The module cache is read-only; build from a writable copy with Ergo's vendored dependencies.
    const src = path.join(CACHE_DIR, "ergo-src");
    await rm(src, { recursive: true, force: true });
    await cp(moduleDir, src, { recursive: true });
    await run("chmod", ["-R", "u+w", src]);
    await mkdir(path.dirname(binary), { recursive: true });
    await run("go", ["build", "-mod=vendor", "-o", binary, "."], { cwd: src, env: { ...env, GOFLAGS: "" } });
    const built = await ergoVersion(binary);
    if (built) return { available: true, name: "Ergo", version: built, binary };
    buildError = "the built binary did not report an Ergo version";
  } catch (err) {
    buildError = (err as Error).message.split("\n").slice(0, 4).join(" ");
  }

  for (const candidate of [process.env.TRESTLE_ERGO_BIN, ...(await whichAll("ergo"))]) {
    if (!candidate) continue;
    const version = await ergoVersion(candidate);
    if (version) return { available: true, name: "Ergo", version, binary: candidate };
  }
  return {
    available: false,
    name: "Ergo",
    refusedByRegistry: /403 Forbidden|not available/.test(buildError),
    reason: `building ${ERGO_MODULE}@${ERGO_COMMIT} (v${ERGO_VERSION}) failed: ${buildError}; and no Ergo IRCd is on PATH or at $TRESTLE_ERGO_BIN`,
  };
});

async function whichAll(name: string): Promise<string[]> {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  const found: string[] = [];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    if (await exists(file)) found.push(file);
  }
  return found;
}

/** InspIRCd from Debian (no RELAYMSG), installed with apt-get when missing and we are root. */
export const ensureInspircd = memo(async (): Promise<Tool> => {
  const binary = "/usr/sbin/inspircd";
  try {
    if (!(await exists(binary))) {
      if (process.getuid?.() !== 0)
        throw new Error("inspircd is not installed and we are not root to apt-get it");
      await run("apt-get", ["install", "-y", "-q", "inspircd"], {
        env: { DEBIAN_FRONTEND: "noninteractive" },
      }).catch(async () => {
        await run("apt-get", ["update", "-q"]);
        await run("apt-get", ["install", "-y", "-q", "inspircd"], {
          env: { DEBIAN_FRONTEND: "noninteractive" },
        });
      });
    }
    const { stdout } = await execFileAsync(
      "dpkg-query",
      ["-W", "-f=$" + "{Version}", "inspircd"] /* dpkg-query format, not a template */,
    );
    return { available: true, name: "InspIRCd", version: stdout.trim(), binary };
  } catch (err) {
    return { available: false, name: "InspIRCd", reason: (err as Error).message };
  }
});

export async function provisionAll(): Promise<Tool[]> {
  return Promise.all([ensureSynapse(), ensureErgo(), ensureInspircd()]);
}

export async function provisionLogTail(): Promise<string> {
  return (await readFile(PROVISION_LOG, "utf8").catch(() => "")).split("\n").slice(-30).join("\n");
}
