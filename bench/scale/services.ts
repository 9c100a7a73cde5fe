import type Docker from "dockerode";
import { stringToHex } from "viem";
import { LABEL } from "../../workers/src/engine/labels.ts";
import { pullImage } from "../../workers/src/engine/pull.ts";
import type { Rig } from "../../workers/src/plane/rig.ts";
import type { Site } from "./grid.ts";
import { mapLimit } from "./stats.ts";

/** The app type every bench service serves and every bench cluster runs. */
export const DRIVER = "driver-profiling";

/**
 * Starts `count` service containers (`svc-<k>`), the k-th on site k mod N, each with CPU and memory limits, after
 * giving every engine the base image (as pre-staging would). Both planes start the same services.
 */
export async function placeServices(rig: Rig, sites: Site[], count: number): Promise<Array<{ name: string; site: number }>> {
  await Promise.all(rig.engines.map((e) => pullImage(e.docker, rig.base)));
  // A few at a time: on a loaded machine one create-and-start takes seconds, and 60 in a row held up every run.
  return mapLimit(Array.from({ length: count }, (_, k) => k), 8, async (k) => {
    const site = sites[k % sites.length]!;
    const name = `svc-${k}`;
    const c = await rig.engines[site.engine]!.docker.createContainer({
      name, Image: rig.base, Cmd: ["sh", "-c", "exec sleep 100000"],
      // The service's id on the container itself (as `blosm up` labels its cars' services), the same for every
      // cluster that lists it: logical clusters share engines here, and an unlabelled container's id is derived
      // from the lister's own address, so a copy still retiring at another cluster on the same engine looked like
      // a stranger's container holding the service's name (one move in a few hundred failed on that name).
      Labels: { [LABEL.appType]: DRIVER, [LABEL.mode]: "stateless", [LABEL.serviceId]: stringToHex(name, { size: 32 }) },
      // 10 millicores each: the bench's logical clusters share four engines of two cores, and a probe counts
      // every container on its engine (60 services at 100 millicores would leave no cluster room to offer).
      HostConfig: { NetworkMode: "none", Memory: 32 * 2 ** 20, NanoCpus: 10_000_000 },
    });
    await c.start();
    return { name, site: site.index };
  });
}

/** The engines on which `name` runs now (by index in the rig). */
export async function runningOn(engines: Array<{ docker: Docker }>, name: string): Promise<number[]> {
  const found: number[] = [];
  for (const [i, e] of engines.entries()) {
    for (const c of await e.docker.listContainers({ filters: { name: [`^/${name}$`] } })) if (c.State === "running") found.push(i);
  }
  return found;
}
