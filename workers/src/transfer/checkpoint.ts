import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type Docker from "dockerode";

const run = promisify(execFile);

export type CheckpointSupport = { supported: boolean; reason: string };

/**
 * Whether this engine can checkpoint and restore a running process (CRIU): Docker's checkpoint API needs an
 * experimental daemon and a working `criu` on the host. On these development machines `criu check` fails on the
 * kernel's vDSO, so migrations use freeze + commit (stateful) or live commit (stateless) instead; the answer is
 * logged at start so an operator knows which path a node takes.
 */
export async function detectCheckpointSupport(docker: Docker, criu = "criu"): Promise<CheckpointSupport> {
  const info = (await docker.info()) as { ExperimentalBuild?: boolean };
  if (!info.ExperimentalBuild) return { supported: false, reason: "the Docker daemon is not experimental (checkpoints need --experimental)" };
  try {
    await run(criu, ["check"], { timeout: 10_000 });
    return { supported: true, reason: "criu check passed" };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") return { supported: false, reason: "criu is not installed" };
    return { supported: false, reason: `criu check failed: ${(err.stderr ?? err.message).trim().split("\n").slice(-1)[0]}` };
  }
}
