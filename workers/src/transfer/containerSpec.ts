import type Docker from "dockerode";
import { LABEL } from "../engine/labels.ts";
import { BlosmError } from "../lib/errors.ts";
import type { VolumeCopy } from "./volumes.ts";

export function encodeSpec(spec: ContainerSpec): string {
  return Buffer.from(JSON.stringify(spec)).toString("base64");
}

/** The spec a snapshot image carries, or an error naming what is wrong with it. */
export function decodeSpec(labels: Record<string, string> | undefined, image: string): ContainerSpec {
  const raw = labels?.[LABEL.spec];
  if (!raw) throw new BlosmError(`image ${image} carries no ${LABEL.spec} label: not a blosm snapshot`);
  try {
    const spec = JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as ContainerSpec;
    if (typeof spec.name !== "string" || !Array.isArray(spec.env) || !Array.isArray(spec.gpus)) throw new Error("missing fields");
    return spec;
  } catch (e) {
    throw new BlosmError(`image ${image} has a malformed ${LABEL.spec} label: ${(e as Error).message}`);
  }
}

export type GpuRequest = { driver: string; count: number; deviceIds: string[]; capabilities: string[][]; options: Record<string, string> };

/** Everything needed to recreate a container elsewhere with the same behaviour. */
export type ContainerSpec = {
  name: string;
  image: string;
  cmd: string[] | null;
  entrypoint: string[] | null;
  env: string[];
  labels: Record<string, string>;
  workingDir: string;
  user: string;
  stopSignal: string | undefined;
  exposedPorts: Record<string, object>;
  portBindings: Record<string, Array<{ HostIp?: string; HostPort?: string }>>;
  restartPolicy: { Name: string; MaximumRetryCount?: number };
  networkMode: string;
  nanoCpus: number;
  cpuQuota: number;
  cpuPeriod: number;
  cpusetCpus: string;
  memory: number;
  memorySwap: number;
  gpus: GpuRequest[];
  /** Named volumes (name → container path); bind mounts cannot move between hosts and are refused.
   * `copies` (set by the snapshot): the volume's content as registry images, full copy then delta. */
  volumes: Array<{ name: string; target: string; readOnly: boolean; copies?: VolumeCopy[] }>;
  healthcheck: Docker.HealthConfig | undefined;
  mode: "stateless" | "stateful";
};

function withoutSpec(labels: Record<string, string>) {
  const { [LABEL.spec]: _spec, ...rest } = labels;
  return rest;
}

export async function inspectSpec(docker: Docker, container: string): Promise<ContainerSpec> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await docker.getContainer(container).inspect();
  } catch (e) {
    throw new BlosmError(`container "${container}" not found on this engine`, { cause: e });
  }
  const hc = info.HostConfig;
  const binds = (info.Mounts ?? []).filter((m) => m.Type === "bind");
  if (binds.length > 0) {
    throw new BlosmError(`container "${container}" has bind mounts (${binds.map((b) => b.Destination).join(", ")}); only named volumes can migrate`);
  }
  const labels = info.Config.Labels ?? {};
  const mode = labels[LABEL.mode] ?? "stateless";
  if (mode !== "stateless" && mode !== "stateful") {
    throw new BlosmError(`container "${container}": label ${LABEL.mode} must be "stateless" or "stateful", got "${mode}"`);
  }
  return {
    name: info.Name.replace(/^\//, ""),
    image: info.Config.Image,
    cmd: info.Config.Cmd ?? null,
    entrypoint: (info.Config.Entrypoint as string[] | null | undefined) ?? null,
    env: info.Config.Env ?? [],
    labels: withoutSpec(labels),
    workingDir: info.Config.WorkingDir ?? "",
    user: info.Config.User ?? "",
    stopSignal: (info.Config as { StopSignal?: string }).StopSignal,
    exposedPorts: info.Config.ExposedPorts ?? {},
    portBindings: (hc.PortBindings as ContainerSpec["portBindings"]) ?? {},
    restartPolicy: (hc.RestartPolicy as ContainerSpec["restartPolicy"]) ?? { Name: "no" },
    networkMode: hc.NetworkMode ?? "default",
    nanoCpus: hc.NanoCpus ?? 0,
    cpuQuota: hc.CpuQuota ?? 0,
    cpuPeriod: hc.CpuPeriod ?? 0,
    cpusetCpus: hc.CpusetCpus ?? "",
    memory: hc.Memory ?? 0,
    memorySwap: hc.MemorySwap ?? 0,
    gpus: ((hc as { DeviceRequests?: Array<Record<string, unknown>> }).DeviceRequests ?? []).map((r) => ({
      driver: (r.Driver as string) ?? "",
      count: (r.Count as number) ?? 0,
      deviceIds: (r.DeviceIDs as string[] | null) ?? [],
      capabilities: (r.Capabilities as string[][] | null) ?? [],
      options: (r.Options as Record<string, string> | null) ?? {},
    })),
    volumes: (info.Mounts ?? [])
      .filter((m) => m.Type === "volume" && m.Name)
      .map((m) => ({ name: m.Name!, target: m.Destination, readOnly: !m.RW })),
    healthcheck: info.Config.Healthcheck,
    mode,
  };
}

/**
 * Create options for the same container at the destination, from the pinned image. GPU requests keep their
 * driver, count and capabilities; explicit device ids are replaced by the GPUs this node reserved for it.
 */
export function createOptions(
  spec: ContainerSpec,
  image: string,
  opts: { name?: string; gpuDeviceIds?: string[]; extraLabels?: Record<string, string> } = {},
): Docker.ContainerCreateOptions {
  let gpuIds = opts.gpuDeviceIds ? [...opts.gpuDeviceIds] : undefined;
  const deviceRequests = spec.gpus.map((g) => {
    let deviceIds = g.deviceIds;
    if (deviceIds.length > 0 && gpuIds) {
      if (gpuIds.length < deviceIds.length) {
        throw new BlosmError(`container needs GPUs ${deviceIds.join(",")} but this node reserved only ${gpuIds.length}`);
      }
      deviceIds = gpuIds.splice(0, deviceIds.length);
    }
    return { Driver: g.driver, Count: deviceIds.length > 0 ? 0 : g.count, DeviceIDs: deviceIds.length > 0 ? deviceIds : null, Capabilities: g.capabilities, Options: g.options };
  });
  return {
    name: opts.name ?? spec.name,
    Image: image,
    Cmd: spec.cmd ?? undefined,
    Entrypoint: spec.entrypoint ?? undefined,
    Env: spec.env,
    Labels: { ...withoutSpec(spec.labels), ...opts.extraLabels },
    WorkingDir: spec.workingDir,
    User: spec.user,
    StopSignal: spec.stopSignal,
    ExposedPorts: spec.exposedPorts,
    Healthcheck: spec.healthcheck,
    HostConfig: {
      PortBindings: spec.portBindings,
      RestartPolicy: spec.restartPolicy,
      NetworkMode: spec.networkMode,
      NanoCpus: spec.nanoCpus || undefined,
      CpuQuota: spec.cpuQuota || undefined,
      CpuPeriod: spec.cpuPeriod || undefined,
      CpusetCpus: spec.cpusetCpus || undefined,
      Memory: spec.memory || undefined,
      MemorySwap: spec.memorySwap || undefined,
      DeviceRequests: deviceRequests.length > 0 ? deviceRequests : undefined,
      Mounts: spec.volumes.map((v) => ({ Type: "volume" as const, Source: v.name, Target: v.target, ReadOnly: v.readOnly })),
    },
  } as Docker.ContainerCreateOptions;
}
