import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { BlosmError } from "../lib/errors.ts";

export type Gpu = { index: number; uuid: string; name: string; memoryTotalMiB: number; memoryUsedMiB: number; utilizationPct: number };

/** The query the worker runs; the parser below reads exactly these columns in this order. */
export const NVIDIA_SMI_ARGS = ["--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu", "--format=csv,noheader,nounits"];

/**
 * Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu --format=csv,noheader,nounits`.
 * Fields a GPU cannot report come back as "[N/A]" or "[Not Supported]" (e.g. utilization on some Jetsons); those
 * read as 0 for utilization, and make memory unknown, which the evaluation treats as unusable.
 */
export function parseNvidiaSmiCsv(text: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const [lineNo, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "") continue;
    const cells = line.split(",").map((c) => c.trim());
    if (cells.length !== 6) throw new BlosmError(`nvidia-smi output line ${lineNo + 1}: expected 6 columns, got ${cells.length}: "${line}"`);
    const [index, uuid, name, total, used, util] = cells as [string, string, string, string, string, string];
    const num = (v: string, what: string, fallback?: number) => {
      if (/^\[(N\/A|Not Supported)\]$/.test(v) || v === "N/A") {
        if (fallback !== undefined) return fallback;
        throw new BlosmError(`nvidia-smi output line ${lineNo + 1}: ${what} is ${v}`);
      }
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new BlosmError(`nvidia-smi output line ${lineNo + 1}: ${what} "${v}" is not a number`);
      return n;
    };
    if (!/^GPU-[0-9a-f-]+$/i.test(uuid) && !/^MIG-/.test(uuid)) throw new BlosmError(`nvidia-smi output line ${lineNo + 1}: "${uuid}" is not a GPU UUID`);
    gpus.push({
      index: num(index, "index"), uuid, name,
      memoryTotalMiB: num(total, "memory.total"), memoryUsedMiB: num(used, "memory.used"),
      utilizationPct: num(util, "utilization.gpu", 0),
    });
  }
  return gpus;
}

const run = promisify(execFile);

/**
 * Reads the node's GPUs: from a file replaying real recorded output (BLOSM_NVIDIA_SMI_FILE, for hosts without
 * GPUs such as CI), else from nvidia-smi itself; no nvidia-smi means no GPUs.
 */
export async function probeGpus(opts: { file?: string; command?: string } = {}): Promise<Gpu[]> {
  if (opts.file) return parseNvidiaSmiCsv(await readFile(opts.file, "utf8"));
  try {
    const { stdout } = await run(opts.command ?? "nvidia-smi", NVIDIA_SMI_ARGS, { timeout: 10_000 });
    return parseNvidiaSmiCsv(stdout);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    if (e instanceof BlosmError) throw e;
    throw new BlosmError(`nvidia-smi failed: ${(e as Error).message.split("\n")[0]}`, { cause: e, retryable: true });
  }
}
