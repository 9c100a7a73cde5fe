import path from "node:path";
import { projectRoot } from "../lib/projectRoot.ts";

/** The local edge plane's fixed layout: three clusters 2.7 km apart on one road, one image registry. */
export const PLANE_DIR = path.join(projectRoot, ".blosm/plane");
/** Hardhat's public test mnemonic: the local chain funds these accounts. Local plane only, never real keys. */
export const TEST_MNEMONIC = "test test test test test test test test test test test junk";
export const REGISTRY_HOST = "10.78.1.1:5000";
export const LAT = 35_885_000;
export const RADIUS_M = 1500;
/** Each cluster's CPU as the chain records it and its gateway allocates (and its containers' cgroup weight). */
export const CLUSTER_CPU_MILLICORES = 2000;
/** The CPU reserved for the plane's daemons (kubelet's --system-reserved): their cgroup's weight (cpuGroup.ts). */
export const DAEMON_CPU_MILLICORES = 250;
/** That cgroup's name, under the CPU controller's root. */
export const DAEMON_GROUP = "blosm-daemons";
export const CLUSTERS = [
  { name: "cluster-a", lonE6: 128_610_000 },
  { name: "cluster-b", lonE6: 128_640_000 },
  { name: "cluster-c", lonE6: 128_670_000 },
] as const;
/** Where the cars start and stop: just outside cluster-a's coverage to just past cluster-c's. */
export const ROUTE = { from: { latE6: LAT, lonE6: 128_598_000 }, to: { latE6: LAT, lonE6: 128_682_000 } };

export const APPS = ["driver-profiling", "image-recognition"] as const;
export type AppName = (typeof APPS)[number];
/** What one request needs while it runs (the gateway's REQ_res); a cluster's own app containers hold 64 MiB each. */
export const NEEDS: Record<AppName, { cpuMillicores: number; memoryMiB: number }> = {
  "driver-profiling": { cpuMillicores: 100, memoryMiB: 64 },
  "image-recognition": { cpuMillicores: 200, memoryMiB: 128 },
};

export type PlaneOptions = {
  speed: number; rate: number; bandwidth: number; keep: boolean; cars: number; app: AppName;
  /** The cars' containers migrate stateful (frozen at the crossing) instead of stateless (make-before-break). */
  stateful: boolean;
  busy?: string; every: boolean; json: boolean; plot?: string;
  /** The cars' routes (plane/routes.ts). */
  scenario: "straight" | "mixed";
};
