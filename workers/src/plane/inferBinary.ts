import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "../lib/projectRoot.ts";

const run = promisify(execFile);

/** The sample apps' inference server (one long-running process per container): its C source in the checkout. */
export const INFER_SOURCE = path.join(projectRoot, "docker/sample-app/infer.c");

let built: Promise<string> | undefined;

/**
 * The sample apps' server built as one static binary (gcc -static: the busybox image has no libc), compiled once per
 * source version into .blosm/build/ and reused: tests and `./blosm up` build the apps' images many times. Throws
 * naming what is missing when the machine has no C compiler or static libc (bootstrap installs both).
 */
export function inferBinary(): Promise<string> {
  built ??= compile().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return built;
}

async function compile(): Promise<string> {
  const source = await readFile(INFER_SOURCE);
  const out = path.join(projectRoot, ".blosm/build", `infer-${createHash("sha256").update(source).digest("hex").slice(0, 16)}`);
  await mkdir(path.dirname(out), { recursive: true });
  // Older versions' binaries go (another process's build in progress, a .partial, stays).
  for (const f of await readdir(path.dirname(out))) {
    if (/^infer-[0-9a-f]{16}$/.test(f) && f !== path.basename(out)) await rm(path.join(path.dirname(out), f), { force: true });
  }
  if (existsSync(out)) return out;
  // Written beside and renamed: test files build images side by side, and none may run a half-written binary.
  const partial = `${out}.${process.pid}.partial`;
  try {
    await run("gcc", ["-static", "-O2", "-s", "-o", partial, INFER_SOURCE, "-lm"]);
    await rename(partial, out);
  } catch (err) {
    await rm(partial, { force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new Error("building the sample apps needs gcc, which is not installed (Debian: apt-get install gcc libc6-dev; scripts/bootstrap.sh installs them)");
    throw new Error(`compiling ${path.relative(projectRoot, INFER_SOURCE)} failed (a static build needs libc6-dev): ${e.stderr?.trim() || e.message}`);
  }
  return out;
}
