import { describe, expect, it } from "vitest";
import { LocalCapacity } from "./capacity.ts";
import { parsePosition } from "./protocol.ts";

const need = { cpuMillicores: 500, memoryMiB: 300, gpuMemoryMiB: 0 };

describe("R_rem admission", () => {
  it("admits while the request fits in what is left, refuses the one that does not, and admits again after a release", async () => {
    const cap = new LocalCapacity(async () => ({ cpuMillicores: 2000, memoryMiB: 700, gpuMemoryMiB: 0 }), 60_000);
    await cap.start();
    expect(cap.tryAdmit(need)).toBe(true);
    expect(cap.tryAdmit(need)).toBe(true);
    expect(cap.remaining()).toEqual({ cpuMillicores: 1000, memoryMiB: 100, gpuMemoryMiB: 0 });
    expect(cap.tryAdmit(need)).toBe(false); // 300 MiB > 100 MiB left
    cap.release(need);
    expect(cap.tryAdmit(need)).toBe(true);
    cap.stop();
  });

  it("a waiting request gets the room a finishing one frees, and gives up after its wait", async () => {
    const cap = new LocalCapacity(async () => ({ cpuMillicores: 1000, memoryMiB: 300, gpuMemoryMiB: 8 }), 60_000);
    await cap.start();
    expect(cap.tryAdmit(need)).toBe(true);
    const waiting = cap.admitWithin(need, 2000);
    setTimeout(() => cap.release(need), 50);
    expect(await waiting).toBe(true);
    expect(await cap.admitWithin(need, 30)).toBe(false);
    expect(cap.tryAdmit({ cpuMillicores: 0, memoryMiB: 0, gpuMemoryMiB: 16 })).toBe(false); // GPU memory counts too
    cap.stop();
  });
});

describe("client positions", () => {
  it("parses lat,lon in degrees to fixed point and names what is wrong otherwise", () => {
    expect(parsePosition("35.885,128.64")).toEqual({ latE6: 35_885_000, lonE6: 128_640_000 });
    expect(parsePosition(" -33.8688 , 151.2093 ")).toEqual({ latE6: -33_868_800, lonE6: 151_209_300 });
    expect(() => parsePosition("35.885;128.64")).toThrow(/not "lat,lon"/);
    expect(() => parsePosition("91,0")).toThrow(/latitude 91 is outside/);
    expect(() => parsePosition("0,180.5")).toThrow(/longitude 180.5 is outside/);
    expect(() => parsePosition("NaN,1")).toThrow(/not "lat,lon"/);
  });
});
