import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Hex } from "viem";
import { projectRoot } from "../lib/projectRoot.ts";
import { withoutServingFlags } from "../lib/servingFlags.ts";
import type { CarSummary, Handover, RequestRecord, SimulateOptions } from "./simulator.ts";

/** What the cars' thread needs: everything of SimulateOptions that can cross a thread, and the cars' keys. */
export type CarsThreadInput = Omit<SimulateOptions, "cars" | "body" | "stopped" | "onRecord" | "onHandover"> & { carKeys: Hex[] };

export type CarsThreadMessage =
  | { type: "record"; record: RequestRecord }
  | { type: "handover"; handover: Handover }
  | { type: "done"; cars: CarSummary[] }
  | { type: "failed"; message: string };

/**
 * The cars of `simulate` on a thread of their own, as cars are devices of their own: their requests are timed on an
 * event loop that nothing of the plane's shares (its chain watch, its printing, its garbage collection), so a slow
 * answer is the clusters' doing. Records and handovers arrive as they happen; the result when the cars stop.
 */
export function simulateOnThread(
  input: CarsThreadInput,
  o: { stopped?: () => boolean; onRecord?: (r: RequestRecord) => void; onHandover?: (h: Handover) => void } = {},
): Promise<{ records: RequestRecord[]; cars: CarSummary[] }> {
  const records: RequestRecord[] = []; // as they arrive: the thread sends each once
  return new Promise((resolve, reject) => {
    // A thread Node refuses to start (bad execArgv, say) rejects like one that fails later: callers clean up on both.
    let worker: Worker;
    try {
      worker = new Worker(entry(), { workerData: input, execArgv: execArgv() });
    } catch (e) {
      return reject(new Error(`the cars' thread could not start: ${(e as Error).message}`));
    }
    let settled = false;
    const watch = setInterval(() => {
      if (o.stopped?.()) worker.postMessage("stop");
    }, 100);
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      f();
    };
    worker.on("message", (m: CarsThreadMessage) => {
      if (m.type === "record") records.push(m.record), o.onRecord?.(m.record);
      else if (m.type === "handover") o.onHandover?.(m.handover);
      else if (m.type === "done") settle(() => resolve({ records, cars: m.cars }));
      else settle(() => reject(new Error(`the cars' thread failed: ${m.message}`)));
    });
    worker.on("error", (err) => settle(() => reject(new Error(`the cars' thread failed: ${err.message}`))));
    worker.on("exit", (code) => settle(() => reject(new Error(`the cars' thread ended (code ${code}) before the cars stopped`))));
  });
}

const fromSources = import.meta.url.endsWith(".ts");

function entry(): URL {
  return new URL(fromSources ? "./carsThreadEntry.ts" : "./carsThreadEntry.js", import.meta.url);
}

/**
 * Compiled (dist/), or with tsx's loader already in this process: nothing, so the thread inherits this process's
 * options, V8 flags included (given explicitly, Node refuses those: "invalid execArgv flags"). From the sources
 * without the loader: this process's options with it added, less the V8 flags ./blosm gives every process.
 */
function execArgv(): string[] | undefined {
  if (!fromSources || process.execArgv.some((a) => a.includes("tsx"))) return undefined;
  return [...withoutServingFlags(process.execArgv), "--import", pathToFileURL(path.join(projectRoot, "node_modules/tsx/dist/loader.mjs")).href];
}
