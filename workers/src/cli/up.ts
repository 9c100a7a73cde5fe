import { ConfigError } from "../lib/errors.ts";
import { onStopSignal } from "../lib/shutdown.ts";
import { driveCars } from "../plane/drive.ts";
import { LocalPlane } from "../plane/localPlane.ts";
import { preflight } from "../plane/preflight.ts";
import { createProgress } from "../plane/progress.ts";
import { teardownStalePlane } from "../plane/teardown.ts";
import { APPS, CLUSTERS, type AppName, type PlaneOptions } from "../plane/topology.ts";
import { intFlag, printJson, type Runner } from "./command.ts";

function planeOptions(values: Record<string, unknown>, extra: Pick<PlaneOptions, "every" | "json" | "plot">): PlaneOptions {
  const app = values.app as string;
  if (!(APPS as readonly string[]).includes(app)) throw new ConfigError("--app", `must be one of ${APPS.join(", ")}, got "${app}"`);
  const busy = values.busy as string | undefined;
  const scenario = values.scenario as string;
  if (scenario !== "straight" && scenario !== "mixed") throw new ConfigError("--scenario", `must be straight or mixed, got "${scenario}"`);
  if (busy !== undefined && !CLUSTERS.some((c) => c.name === busy)) throw new ConfigError("--busy", `must be one of ${CLUSTERS.map((c) => c.name).join(", ")}, got "${busy}"`);
  return {
    speed: intFlag("speed", values.speed as string, 1, 2000), rate: intFlag("rate", values.rate as string, 1, 50),
    bandwidth: intFlag("bandwidth", values.bandwidth as string, 0, 10_000),
    // The mixed scenario has its three cars (their routes); --cars is for the straight one.
    cars: scenario === "mixed" ? 3 : intFlag("cars", values.cars as string, 1, 8), scenario,
    keep: Boolean(values.keep), stateful: Boolean(values.stateful), app: app as AppName, busy, ...extra,
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

export const runUp: Runner = async ({ values }) => {
  const o = planeOptions(values, { every: false, json: false });
  await preflight("up");
  return runPlane(o);
};

export const runSimulate: Runner = async ({ values }) => {
  const plot = values.plot as string;
  if (!plot.endsWith(".svg")) throw new ConfigError("--plot", `must name an .svg file, got "${plot}"`);
  const o = planeOptions(values, { every: true, json: Boolean(values.json), plot });
  await preflight("simulate");
  return runPlane(o);
};

export const runDown: Runner = async ({ values }) => {
  if (process.getuid?.() !== 0) throw new ConfigError("down", "needs root (it removes network namespaces and engines)");
  const did = await teardownStalePlane();
  if (values.json) printJson({ stopped: did });
  else console.log(did.length > 0 ? did.map((d) => `✓ ${d}`).join("\n") : "nothing to stop: no local plane was left behind");
  return 0;
};

