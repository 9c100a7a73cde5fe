import type Docker from "dockerode";
import { afterAll, beforeAll } from "vitest";
import { startRig, type Rig } from "../../workers/src/plane/rig.ts";
import { waitFor } from "../../workers/src/lib/waitFor.ts";

export { startRig, readFileFrom, type Rig } from "../../workers/src/plane/rig.ts";

/**
 * Two real engines and a registry for one describe block: started before its tests, stopped after them.
 * `rig()` is the running rig (tests may replace its registry); `src()` and `dst()` the two engines.
 */
export function useTwoEngineRig(): { rig: () => Rig; src: () => Docker; dst: () => Docker } {
  let rig: Rig | undefined;
  beforeAll(async () => {
    rig = await startRig(2);
  }, 180_000);
  afterAll(async () => rig?.stop(), 120_000);
  const running = () => {
    if (!rig) throw new Error("the rig did not start");
    return rig;
  };
  return { rig: running, src: () => running().engines[0]!.docker, dst: () => running().engines[1]!.docker };
}

/**
 * Runs a shell script inside a running container and waits for it to exit; fails on a non-zero exit. The output
 * stream can end before the engine records the exit, so the exit itself is waited for (CI saw ExitCode null).
 */
export async function execIn(docker: Docker, container: string, script: string): Promise<void> {
  const exec = await docker.getContainer(container).exec({ Cmd: ["sh", "-c", script], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  await new Promise((resolve) => (stream.on("end", resolve), stream.resume()));
  await waitFor(async () => !(await exec.inspect()).Running, { what: `"${script}" to exit`, timeoutMs: 10_000, intervalMs: 20 });
  const { ExitCode } = await exec.inspect();
  if (ExitCode !== 0) throw new Error(`"${script}" exited ${ExitCode}`);
}
