import { connect } from "node:net";
import type Docker from "dockerode";
import { BlosmError } from "../lib/errors.ts";
import { createOptions, type ContainerSpec } from "./containerSpec.ts";
import { LABEL } from "../engine/labels.ts";
import { engineMessage } from "../engine/engineMessage.ts";
import { restoreVolumes } from "./volumes.ts";
import type { RegistryAuth } from "../engine/push.ts";

/** The container started but did not become ready: it exited, turned unhealthy, or did not answer in time. */
export class ContainerNotReadyError extends BlosmError {
  override name = "ContainerNotReadyError";
}

export type Restored = { containerId: string; name: string; timings: { createMs: number; startMs: number; readyMs: number } };

/**
 * Destination side: recreates the container from the pinned image with the source's configuration, starts it
 * and waits until it is ready. On any failure it removes what it created and rethrows.
 */
export async function restoreContainer(
  docker: Docker,
  spec: ContainerSpec,
  image: string,
  opts: { name?: string; gpuDeviceIds?: string[]; migrationId?: string; serviceId?: string; readyTimeoutMs?: number; probe?: string; steadyMs?: number; auth?: RegistryAuth } = {},
): Promise<Restored> {
  const t0 = performance.now();
  const name = opts.name ?? spec.name;
  const volumes = await restoreVolumes(docker, spec.volumes, image, opts.migrationId, opts.auth);
  const created = await docker
    .createContainer(createOptions(spec, image, {
      name, gpuDeviceIds: opts.gpuDeviceIds,
      // The service id travels as a label, so the container is found (and reconciled) by it wherever it runs.
      extraLabels: {
        ...(opts.migrationId ? { [LABEL.migration]: opts.migrationId, [LABEL.role]: "incoming" } : {}),
        ...(opts.serviceId ? { [LABEL.serviceId]: opts.serviceId } : {}),
      },
    }))
    .catch(async (e: Error) => {
      for (const v of volumes) await docker.getVolume(v).remove({ force: true }).catch(() => {});
      throw new BlosmError(`create of "${name}" failed: ${engineMessage(e)}`, { cause: e });
    });
  const t1 = performance.now();
  try {
    await created.start().catch((e: Error) => {
      // e.g. a GPU request on a host without the NVIDIA runtime: 'could not select device driver "" with capabilities: [[gpu]]'
      throw new BlosmError(`start of "${name}" failed: ${engineMessage(e)}`, { cause: e });
    });
    const t2 = performance.now();
    await waitReady(docker, created.id, { timeoutMs: opts.readyTimeoutMs ?? 60_000, probe: opts.probe ?? spec.labels[LABEL.probe], steadyMs: opts.steadyMs });
    return { containerId: created.id, name, timings: { createMs: t1 - t0, startMs: t2 - t1, readyMs: performance.now() - t2 } };
  } catch (e) {
    await created.remove({ force: true, v: false }).catch(() => {});
    for (const v of volumes) await docker.getVolume(v).remove({ force: true }).catch(() => {});
    throw e;
  }
}

/**
 * Ready means: healthy, if the image has a healthcheck; else the probe answers (tcp://host:port or
 * http(s)://…, 2xx/3xx); else running for a moment without exiting.
 */
export async function waitReady(docker: Docker, id: string, opts: { timeoutMs: number; probe?: string; pollMs?: number; steadyMs?: number }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const poll = opts.pollMs ?? 20;
  let runningSince: number | undefined;
  for (;;) {
    const info = await docker.getContainer(id).inspect();
    if (!info.State.Running) {
      throw new ContainerNotReadyError(`container ${info.Name} exited (code ${info.State.ExitCode}) before it was ready${info.State.Error ? `: ${info.State.Error}` : ""}`);
    }
    const health = info.State.Health?.Status;
    if (health === "unhealthy") throw new ContainerNotReadyError(`container ${info.Name} is unhealthy`);
    if (health !== undefined) {
      if (health === "healthy") return;
    } else if (opts.probe) {
      if (await probe(opts.probe)) return;
    } else {
      runningSince ??= Date.now();
      if (Date.now() - runningSince >= (opts.steadyMs ?? 200)) return;
    }
    if (Date.now() > deadline) throw new ContainerNotReadyError(`container ${info.Name} not ready after ${opts.timeoutMs} ms`, { retryable: true });
    await new Promise((r) => setTimeout(r, poll));
  }
}

async function probe(target: string): Promise<boolean> {
  const url = new URL(target);
  if (url.protocol === "tcp:") {
    return new Promise((resolve) => {
      const socket = connect({ host: url.hostname, port: Number(url.port) });
      socket.setTimeout(500);
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => (socket.destroy(), resolve(false)));
    });
  }
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.status < 400;
  } catch {
    return false;
  }
}
