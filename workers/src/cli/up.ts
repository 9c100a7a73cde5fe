import { ConfigError } from "../lib/errors.ts";
import { onStopSignal } from "../lib/shutdown.ts";
import { driveCars } from "../plane/drive.ts";
import { LocalPlane } from "../plane/localPlane.ts";
import { preflight } from "../plane/preflight.ts";
import { createProgress } from "../plane/progress.ts";
import { teardownStalePlane } from "../plane/teardown.ts";
import { APPS, CLUSTERS, type AppName, type PlaneOptions } from "../plane/topology.ts";
import { intFlag, parse, type Command } from "./command.ts";

const commonOptions = {
  speed: { type: "string", default: "100" },
  rate: { type: "string", default: "4" },
  cars: { type: "string", default: "1" },
  app: { type: "string", default: "driver-profiling" },
  busy: { type: "string" },
  bandwidth: { type: "string", default: "0" },
  keep: { type: "boolean", default: false },
} as const;
const commonHelp = {
  speed: "car speed in m/s (time-lapse: a real car is slower)",
  rate: "requests per second each car sends",
  cars: "how many cars drive the route (one service container each), 1-8",
  app: `the service the cars call: ${APPS.join(" or ")}`,
  busy: "a cluster (cluster-a, -b or -c) with no resources left: its gateway forwards every request (BloSM's insufficient-resources case)",
  bandwidth: "shape each cluster's link to this many Mbit/s (0 = unshaped; BloSM used ~40)",
  keep: "stay up after the drive until Ctrl-C",
};

function planeOptions(values: Record<string, unknown>, extra: Pick<PlaneOptions, "every" | "json" | "plot">): PlaneOptions {
  const app = values.app as string;
  if (!(APPS as readonly string[]).includes(app)) throw new ConfigError("--app", `must be one of ${APPS.join(", ")}, got "${app}"`);
  const busy = values.busy as string | undefined;
  if (busy !== undefined && !CLUSTERS.some((c) => c.name === busy)) throw new ConfigError("--busy", `must be one of ${CLUSTERS.map((c) => c.name).join(", ")}, got "${busy}"`);
  return {
    speed: intFlag("speed", values.speed as string, 1, 2000), rate: intFlag("rate", values.rate as string, 1, 50),
    bandwidth: intFlag("bandwidth", values.bandwidth as string, 0, 10_000), cars: intFlag("cars", values.cars as string, 1, 8),
    keep: Boolean(values.keep), app: app as AppName, busy, ...extra,
  };
}

/** Brings the plane up, drives the cars, and stops everything on the way out (also on Ctrl-C: exit 130). */
async function runPlane(o: PlaneOptions): Promise<number> {
  const progress = createProgress(o.json);
  const plane = new LocalPlane(o, progress);
  const signalled = onStopSignal(() => plane.stop(), { graceMs: 120_000 });
  try {
    await plane.start();
    const code = await driveCars(plane, o, progress);
    if (o.keep && !plane.closing) {
      progress.out(`\nThe plane stays up (chain ${plane.chainUrl}; gateways ${plane.gateways.map((g) => g.url).join(", ")}); Ctrl-C stops it.\n`);
      await signalled;
    }
    return plane.closing ? 130 : code; // closing before the finally below: a signal stopped it
  } catch (e) {
    if (plane.closing) return 130;
    throw e;
  } finally {
    await plane.stop();
  }
}

const up: Command = {
  name: "up",
  summary: "Bring up a local edge plane (chain, registry contract, Redis, image registry, 3 clusters with worker and gateway) and drive a car across it",
  options: commonOptions,
  help: commonHelp,
  async run(argv) {
    const { values } = parse(argv, this.options);
    const o = planeOptions(values, { every: false, json: false });
    await preflight("up");
    return runPlane(o);
  },
};

const simulateCommand: Command = {
  name: "simulate",
  summary: "Drive cars across a fresh local edge plane and print every request (end-to-end time, who served it, migration gaps), with a plot",
  options: { ...commonOptions, plot: { type: "string", default: "blosm-simulate.svg" }, json: { type: "boolean", default: false } },
  help: { ...commonHelp, plot: "write the plot of end-to-end time over request number here (SVG)", json: "print one JSON object per request and a JSON summary instead of text" },
  async run(argv) {
    const { values } = parse(argv, this.options);
    const plot = values.plot as string;
    if (!plot.endsWith(".svg")) throw new ConfigError("--plot", `must name an .svg file, got "${plot}"`);
    const o = planeOptions(values, { every: true, json: Boolean(values.json), plot });
    await preflight("simulate");
    return runPlane(o);
  },
};

const down: Command = {
  name: "down",
  summary: "Stop a local edge plane left behind by a killed `blosm up` or `simulate` (engines, namespaces, registry, files)",
  options: {},
  help: {},
  async run(argv) {
    parse(argv, this.options);
    if (process.getuid?.() !== 0) throw new ConfigError("down", "needs root (it removes network namespaces and engines)");
    const did = await teardownStalePlane();
    console.log(did.length > 0 ? did.map((d) => `✓ ${d}`).join("\n") : "nothing to stop: no local plane was left behind");
    return 0;
  },
};

export const planeCommands: Command[] = [up, simulateCommand, down];
