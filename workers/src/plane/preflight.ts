import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { BlosmError } from "../lib/errors.ts";

const run = promisify(execFile);

/** The local plane needs root (one dockerd per cluster, each in a network namespace) and the Debian programs. */
export async function preflight(what: string) {
  if (process.getuid?.() !== 0) {
    throw new BlosmError(
      `blosm ${what} needs root on this machine: it runs one dockerd per simulated cluster, each in its own network namespace. ` +
        "(Docker-in-Docker clusters for machines with Docker but no root are not supported: see README, \"Why not Docker-in-Docker\".)",
    );
  }
  for (const bin of ["dockerd", "docker-registry", "redis-server", "ip", "tc", "nsenter"]) {
    await run("sh", ["-c", `command -v ${bin}`]).catch(() => {
      throw new BlosmError(`${bin} is not installed: run bash scripts/bootstrap.sh (as root it installs the Debian packages)`);
    });
  }
}
