import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HEADER, SERVER_TIMING } from "../gateway/protocol.ts";
import { SERVING_V8_FLAGS } from "../lib/servingFlags.ts";
import { simulateOnThread } from "./carsThread.ts";
import type { RequestRecord } from "./simulator.ts";

/**
 * A stand-in gateway on loopback (the gateways' suite drives real ones): it answers as a gateway does and notes what
 * each car sent, so the test sees the cars' requests arrive from their own thread, signed with their keys.
 */
let server: Server;
let url: string;
const seen: Array<{ client: string; position: string; signed: boolean; type: string }> = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume().on("end", () => {
      seen.push({ client: String(req.headers[HEADER.client]), position: String(req.headers[HEADER.position]), signed: Object.keys(req.headers).some((h) => h.includes("signature")), type: String(req.headers["content-type"]) });
      res.writeHead(200, { "content-type": "application/json", [HEADER.servedBy]: "cluster-a", [HEADER.route]: "local", [SERVER_TIMING]: "app;dur=1.5, gateway;dur=2" });
      res.end('{"driverId":1,"confidence":0.5}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const here = { latE6: 35_885_000, lonE6: 128_600_000 };
const input = (carKeys: `0x${string}`[], o: { metres?: number } = {}) => ({
  clusters: [{ name: "cluster-a", gateway: url, location: here, coverageRadiusM: 1500 }],
  carKeys, rate: 20, appType: "driver-profiling", staggerS: 0,
  // 0.001° of longitude is about 90 m here: a second's drive at 90 m/s.
  routes: carKeys.map(() => ({ route: [here, { ...here, lonE6: here.lonE6 + (o.metres ?? 90) / 90 * 1000 }], speedMps: 90 })),
});

describe("simulateOnThread", () => {
  it("drives the cars on their own thread: each request signed with its car's key, recorded as it happens", async () => {
    seen.length = 0;
    const keys = [generatePrivateKey(), generatePrivateKey()];
    const live: RequestRecord[] = [];
    const result = await simulateOnThread(input(keys), { onRecord: (r) => live.push(r) });
    expect(result.cars.map((c) => c.car)).toEqual(["car-1", "car-2"]);
    for (const c of result.cars) expect(c.sent).toBeGreaterThanOrEqual(10);
    expect(result.records.every((r) => r.status === 200 && r.servedBy === "cluster-a" && r.appMs === 1.5 && r.gatewayMs === 2)).toBe(true);
    expect(live).toEqual(result.records); // each one sent on as it happened, nothing after the end
    const addresses = keys.map((k) => privateKeyToAccount(k).address);
    expect(new Set(seen.map((s) => s.client))).toEqual(new Set(addresses));
    expect(seen.every((s) => s.signed && s.type === "text/csv" && /^35\.885\d*,128\.6\d*$/.test(s.position))).toBe(true);
  });

  it("stops the cars when the plane stops", async () => {
    // Stopped once the car has sent (a thread's start under a loaded CI took more than a fixed 300 ms).
    let stop = false;
    let stoppedAt = 0;
    const stopOnFirst = () => void (stop ||= ((stoppedAt = Date.now()), true));
    const result = await simulateOnThread(input([generatePrivateKey()], { metres: 9000 }), { stopped: () => stop, onRecord: stopOnFirst });
    expect(Date.now() - stoppedAt).toBeLessThan(3000); // the route alone takes 100 s
    expect(result.records.length).toBeGreaterThan(0);
  });

  it("starts from a process run with blosm's V8 flags, which a thread refuses and has already", async () => {
    const own = [...process.execArgv];
    try {
      process.execArgv.push(...SERVING_V8_FLAGS); // as ./blosm runs the plane
      const result = await simulateOnThread(input([generatePrivateKey()]));
      expect(result.cars[0]!.sent).toBeGreaterThan(0);
    } finally {
      process.execArgv.splice(0, process.execArgv.length, ...own);
    }
  });

  it("rejects, not throws, when Node refuses to start the thread: the caller's cleanup runs (simulate hung on it)", async () => {
    const own = [...process.execArgv];
    try {
      process.execArgv.push("--max-old-space-size=4096"); // a V8 flag a thread refuses
      let started: Promise<unknown> | undefined;
      expect(() => (started = simulateOnThread(input([generatePrivateKey()])))).not.toThrow();
      await expect(started).rejects.toThrow(/the cars' thread could not start: .*invalid execArgv flags: --max-old-space-size/i);
    } finally {
      process.execArgv.splice(0, process.execArgv.length, ...own);
    }
  });

  it("says why when the cars cannot start", async () => {
    await expect(simulateOnThread(input(["0x1234"]))).rejects.toThrow(/the cars' thread failed: .*private ?key/i);
  });
});
