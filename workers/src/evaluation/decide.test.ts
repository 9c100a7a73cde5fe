import { describe, expect, it } from "vitest";
import { decide, type NodeState, type Request } from "./decide.ts";
import { distanceM } from "../lib/geo.ts";
import { placeableGpus } from "./probeNode.ts";

const node = (over: Partial<NodeState> = {}): NodeState => ({
  appTypes: ["driver-profiling", "image-recognition"], architecture: "amd64",
  cpuFreeMillicores: 4000, memoryFreeMiB: 8192, cpuTotalMillicores: 8000, memoryTotalMiB: 16384,
  gpus: [{ id: "GPU-a", memoryFreeMiB: 20000, memoryTotalMiB: 24000 }, { id: "GPU-b", memoryFreeMiB: 6000, memoryTotalMiB: 24000 }],
  diskFreeBytes: 50e9, position: { latE6: 35_885_000, lonE6: 128_640_000 }, coverageRadiusM: 1500, ...over,
});
const req = (over: Partial<Request> & { r?: Partial<Request["requirements"]> } = {}): Request => ({
  appType: "driver-profiling", baseImagePresent: false,
  requirements: { cpuMillicores: 1000, memoryMiB: 2048, gpuCount: 1, gpuMemoryMiB: 8000, snapshotSizeBytes: 264_000_000n, ...over.r },
  ...over,
});

describe("self-evaluation", () => {
  it("offers when everything fits and picks GPUs that have the memory", () => {
    const d = decide(req(), node());
    expect(d.offer).toBe(true);
    expect(d.gpuIds).toEqual(["GPU-a"]); // GPU-b has only 6000 MiB free
    expect(d.score).toBeGreaterThan(0);
    expect(d.score).toBeLessThanOrEqual(1_000_000);
  });

  it("refuses under the strict policy when any single resource is short, naming it", () => {
    const cases: Array<[Parameters<typeof req>[0], Partial<NodeState>, RegExp]> = [
      [{ appType: "lidar-fusion" }, {}, /app type lidar-fusion is not run here/],
      [{ r: { cpuMillicores: 5000 } }, {}, /CPU: needs 5000m, 4000m free/],
      [{ r: { memoryMiB: 9000 } }, {}, /memory: needs 9000 MiB, 8192 MiB free/],
      [{ r: { gpuCount: 2, gpuMemoryMiB: 16000 } }, {}, /GPU: needs 2 with 8000 MiB free each, 1 of 2 usable/],
      [{}, { gpus: [] }, /GPU: needs 1 with 8000 MiB free each, 0 of 0 usable/],
      [{ imageArchitecture: "arm64" }, {}, /architecture: image is arm64, node is amd64/],
      [{ r: { snapshotSizeBytes: 40_000_000_000n } }, {}, /disk: needs 80000000000 bytes/],
    ];
    for (const [r, n, reason] of cases) {
      const d = decide(req(r), node(n), "strict");
      expect(d.offer, String(reason)).toBe(false);
      expect(d.reasons.join("; ")).toMatch(reason);
    }
  });

  it("keeps BloSM's own rule as a named policy: one short resource is tolerated, two are not, type never", () => {
    expect(decide(req({ r: { memoryMiB: 9000 } }), node(), "blosm").offer).toBe(true); // strict says no
    expect(decide(req({ r: { memoryMiB: 9000 } }), node(), "strict").offer).toBe(false);
    expect(decide(req({ r: { memoryMiB: 9000, cpuMillicores: 5000 } }), node(), "blosm").offer).toBe(false);
    expect(decide(req({ appType: "other" }), node(), "blosm").offer).toBe(false);
  });

  it("scores more headroom, pre-staged layers and a nearer client higher", () => {
    const base = decide(req(), node()).score;
    expect(decide(req({ r: { memoryMiB: 6000 } }), node()).score).toBeLessThan(base);
    expect(decide(req({ baseImagePresent: true }), node()).score).toBeGreaterThan(base);
    const near = decide(req({ clientPosition: { latE6: 35_885_000, lonE6: 128_641_000 } }), node());
    const far = decide(req({ clientPosition: { latE6: 35_885_000, lonE6: 128_700_000 } }), node());
    expect(near.score).toBeGreaterThan(far.score);
  });

  it("measures distance on the sphere", () => {
    // 0.03° of longitude at 35.885° N ≈ 2.70 km
    expect(distanceM({ latE6: 35_885_000, lonE6: 128_610_000 }, { latE6: 35_885_000, lonE6: 128_640_000 })).toBeCloseTo(2704, -1);
  });

  it("never lets two migrations count on the same free GPU", () => {
    const raw = [{ index: 0, uuid: "GPU-only", name: "H100", memoryTotalMiB: 81559, memoryUsedMiB: 0, utilizationPct: 0 }];
    const first = decide(req(), node({ gpus: placeableGpus(raw, true, []) }));
    expect(first).toMatchObject({ offer: true, gpuIds: ["GPU-only"] });
    const reserved = [{ cpuMillicores: 1000, memoryMiB: 2048, gpuIds: first.gpuIds, gpuMemoryMiB: 8000 }];
    const second = decide(req(), node({ gpus: placeableGpus(raw, true, reserved) }));
    expect(second.offer).toBe(false);
    expect(second.reasons.join(" ")).toMatch(/GPU: needs 1 with 8000 MiB free each, 0 of 0 usable/);
    // Without the NVIDIA runtime nothing nvidia-smi shows is placeable.
    expect(placeableGpus(raw, false, [])).toEqual([]);
  });
});
