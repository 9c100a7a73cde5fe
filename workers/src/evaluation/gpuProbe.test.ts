import { describe, expect, it } from "vitest";
import { parseNvidiaSmiCsv } from "./gpuProbe.ts";

// CONSTRUCTED, not recorded: laid out per nvidia-smi's documented `--format=csv,noheader,nounits` output for
// the query in NVIDIA_SMI_ARGS (a 2-GPU H100 box; an idle and a busy GPU). A real recording from a GPU host is
// still to be added as a fixture; the device tool was not lent to the session that wrote this.
const CONSTRUCTED_H100 = [
  "0, GPU-5b2c7a10-0000-4000-8000-000000000001, NVIDIA H100 80GB HBM3, 81559, 1, 0",
  "1, GPU-5b2c7a10-0000-4000-8000-000000000002, NVIDIA H100 80GB HBM3, 81559, 40960, 87",
  "",
].join("\n");

describe("nvidia-smi CSV probe", () => {
  it("reads index, uuid, name, memory and utilization per GPU", () => {
    expect(parseNvidiaSmiCsv(CONSTRUCTED_H100)).toEqual([
      { index: 0, uuid: "GPU-5b2c7a10-0000-4000-8000-000000000001", name: "NVIDIA H100 80GB HBM3", memoryTotalMiB: 81559, memoryUsedMiB: 1, utilizationPct: 0 },
      { index: 1, uuid: "GPU-5b2c7a10-0000-4000-8000-000000000002", name: "NVIDIA H100 80GB HBM3", memoryTotalMiB: 81559, memoryUsedMiB: 40960, utilizationPct: 87 },
    ]);
  });

  it("treats unsupported utilization as 0 but refuses unknown memory or malformed lines", () => {
    expect(parseNvidiaSmiCsv("0, GPU-1234abcd, Orin, 30536, 2048, [Not Supported]")[0]?.utilizationPct).toBe(0);
    expect(() => parseNvidiaSmiCsv("0, GPU-1234abcd, Orin, [N/A], 2048, 0")).toThrow("nvidia-smi output line 1: memory.total is [N/A]");
    expect(() => parseNvidiaSmiCsv("0, GPU-1234abcd, Orin, 30536")).toThrow(/expected 6 columns, got 4/);
    expect(() => parseNvidiaSmiCsv("0, not-a-uuid, X, 1, 1, 1")).toThrow(/is not a GPU UUID/);
    expect(() => parseNvidiaSmiCsv("x, GPU-12, X, 1, 1, 1")).toThrow(/index "x" is not a number/);
  });
});
