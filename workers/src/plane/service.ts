import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import { BlosmError } from "../lib/errors.ts";
import { waitFor } from "../lib/waitFor.ts";

export type Service = {
  process: ChildProcess;
  /** The last few KB the process printed (stdout and stderr together), for errors. */
  output: () => string;
  exited: () => boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop: (graceMs?: number) => Promise<void>;
};

const TAIL = 8192;

/**
 * Spawns a helper program of the local plane (dockerd, docker-registry, redis-server, the chain node), in a
 * network namespace when asked, and waits until `ready` answers. Both of its output pipes are always read: a
 * pipe nobody reads fills up (64 KiB) and blocks the program on its next log line — docker-registry's access
 * log did exactly that after about 15 migrations. Only a bounded tail is kept.
 */
export async function startService(
  name: string,
  command: string,
  args: string[],
  opts: {
    netns?: string; cwd?: string; env?: NodeJS.ProcessEnv; ready: () => Promise<unknown>; timeoutMs: number; intervalMs?: number; hint?: string;
    /** Everything it prints, as it prints it (a log file), besides the kept tail. */
    output?: (chunk: Buffer | string) => void;
    /** Run at this niceness (`nice -n`, which then runs the program itself: its pid and name stay the program's). */
    nice?: number;
    /**
     * Run in this CPU cgroup: the `cgroup.procs` file it joins before the program starts (a shell writes its own pid
     * and then runs the program in its place), so all the program forks, from its first instruction on, stays there.
     */
    cgroup?: string;
  },
): Promise<Service> {
  const niced = opts.nice ? ["nice", "-n", String(opts.nice), command, ...args] : [command, ...args];
  if (opts.cgroup) {
    const cgroup = opts.cgroup;
    await access(cgroup, constants.W_OK).catch((e: NodeJS.ErrnoException) => {
      throw new BlosmError(`cannot start ${name} in the CPU group ${path.dirname(cgroup)}: ${e.code ?? e.message} on ${cgroup}`);
    });
  }
  const grouped = opts.cgroup ? ["sh", "-c", 'echo $$ > "$0" && exec "$@"', opts.cgroup, ...niced] : niced;
  // nsenter, not `ip netns exec`: the latter also remounts /sys privately, hiding the cgroup mounts dockerd needs.
  const argv = opts.netns ? ["nsenter", `--net=/var/run/netns/${opts.netns}`, ...grouped] : grouped;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], cwd: opts.cwd, env: opts.env });
  let tail = "";
  const keep = (d: Buffer | string) => {
    tail = (tail + d).slice(-TAIL);
    opts.output?.(d);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.on("error", (e) => keep(`${e}\n`));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const lastLines = () => tail.trim().split("\n").slice(-3).join(" | ");
  const stop = async (graceMs = 3000) => {
    if (exited()) return;
    const gone = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await gone;
    clearTimeout(timer);
  };
  try {
    await waitFor(async () => (await opts.ready(), true), {
      what: `${name} to answer`, timeoutMs: opts.timeoutMs, intervalMs: opts.intervalMs,
      abortIf: () => (exited() ? `it exited (${child.exitCode ?? child.signalCode})${opts.hint ? `; ${opts.hint}` : ""}` : undefined),
      detail: lastLines,
    });
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return { process: child, output: () => tail, exited, stop };
}
