import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, describe, expect, it } from "vitest";
import { ClientSigner } from "../gateway/clientSigner.ts";
import { HEADER, SERVER_TIMING } from "../gateway/protocol.ts";
import { simulate, startDelayMs } from "./simulator.ts";

describe("startDelayMs", () => {
  it("starts each car a stagger after the one before, at a phase of its own within the request interval", () => {
    const interval = 250; // 4 requests a second; the default stagger of 2 s is 8 whole intervals
    for (let cars = 2; cars <= 20; cars++) {
      const delays = Array.from({ length: cars }, (_, k) => startDelayMs(k, 2, interval));
      delays.forEach((d, k) => expect(d - k * 2000).toBeGreaterThanOrEqual(0));
      delays.forEach((d, k) => expect(d - k * 2000).toBeLessThan(interval));
      // No two cars' requests fall closer together than 0.38 of the interval shared among the cars.
      const phases = delays.map((d) => d % interval).sort((a, b) => a - b);
      const gaps = phases.map((p, i) => (i + 1 < phases.length ? phases[i + 1]! - p : interval - p + phases[0]!));
      expect(Math.min(...gaps), `${cars} cars: ${phases.join(" ")}`).toBeGreaterThanOrEqual(Math.floor((0.38 * interval) / cars));
    }
  });
});

describe("simulate", () => {
  const servers: Server[] = [];
  afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));
  /** A stand-in gateway on loopback: answers each request with what `answer` says. */
  async function gateway(answer: (n: number) => { status: number; headers: Record<string, string>; body: string }): Promise<string> {
    let n = 0;
    const server = createServer((req, res) => {
      req.resume().on("end", () => {
        const a = answer(n++);
        res.writeHead(a.status, a.headers).end(a.body);
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("follows the gateway an answer points it at, reads Server-Timing, and records an answer without 2xx as lost, with its text", async () => {
    const b = await gateway(() => ({ status: 503, headers: { [HEADER.servedBy]: "cluster-b" }, body: "no room here" }));
    const a = await gateway(() => ({
      status: 200, headers: { [HEADER.servedBy]: "cluster-a", [HEADER.route]: "local", [HEADER.gateway]: b, [SERVER_TIMING]: "app;dur=1.5, gateway;dur=2" }, body: "{}",
    }));
    const here = { latE6: 35_885_000, lonE6: 128_600_000 };
    let sent = 0;
    const { records, cars } = await simulate({
      clusters: [{ name: "cluster-a", gateway: a, location: here, coverageRadiusM: 1500 }],
      cars: [new ClientSigner(privateKeyToAccount(generatePrivateKey()))], rate: 50, appType: "driver-profiling",
      routes: [{ route: [here, { ...here, lonE6: here.lonE6 + 1000 }], speedMps: 10 }], body: () => ({ body: "1,2,3", contentType: "text/csv" }),
      stopped: () => sent >= 3, onRecord: () => sent++,
    });
    expect(records.map((r) => [r.calledGateway, r.status, r.servedBy])).toEqual([[a, 200, "cluster-a"], [b, 503, "cluster-b"], [b, 503, "cluster-b"]]);
    expect(records[0]).toMatchObject({ route: "local", appMs: 1.5, gatewayMs: 2 });
    expect(records[0]!.error).toBeUndefined();
    expect(records[1]).toMatchObject({ route: "?", error: "no room here" });
    expect(cars[0]).toMatchObject({ sent: 3, ok: 1, lost: 2 });
  });

  it("records a gateway that cannot be reached as lost, with the reason", async () => {
    const closed = await gateway(() => ({ status: 200, headers: {}, body: "" }));
    await new Promise((r) => servers.pop()!.close(r)); // nothing listens there now
    const here = { latE6: 35_885_000, lonE6: 128_600_000 };
    let sent = 0;
    const { records } = await simulate({
      clusters: [{ name: "cluster-a", gateway: closed, location: here, coverageRadiusM: 1500 }],
      cars: [new ClientSigner(privateKeyToAccount(generatePrivateKey()))], rate: 50, appType: "driver-profiling",
      routes: [{ route: [here, { ...here, lonE6: here.lonE6 + 1000 }], speedMps: 10 }], body: () => ({ body: "1", contentType: "text/csv" }),
      stopped: () => sent >= 1, onRecord: () => sent++,
    });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: 0, servedBy: "-" });
    expect(records[0]!.error).toMatch(/ECONNREFUSED/);
  });
});
