import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Address, Hex } from "viem";
import { afterEach, describe, expect, it } from "vitest";
import { State, type RegistryView } from "../chain/registryView.ts";
import { silentLogger } from "../lib/log.ts";
import type { AppSource, AppTarget } from "./apps.ts";
import { Mobility, oldCopyServesMs } from "./mobility.ts";
import type { Neighbour, NeighbourSource, Position } from "./neighbours.ts";

const CAR = "0x00000000000000000000000000000000000000c1" as Address;
const TYPE = "driver-profiling";
const HERE: Position = { latE6: 35_885_000, lonE6: 128_640_000 };
const C: Neighbour = { operator: "0x00000000000000000000000000000000000000cc", name: "c", gateway: "http://c.example", location: { latE6: 35_885_000, lonE6: 128_670_000 }, coverageRadiusM: 1500, appTypes: [TYPE], freeAt: 0, avoidUntil: 0 };
/** At this latitude one metre east is about 11.09 millionths of a degree of longitude. */
const east = (m: number): Position => ({ latE6: HERE.latE6, lonE6: HERE.lonE6 + Math.round(m * 11.09) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** This cluster's worker, as far as the gateway's mobility uses it: POST /migrate answers 202 with what it was told. */
async function workerAnswering(answer: Record<string, unknown>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume().on("end", () => {
      res.writeHead(req.url === "/migrate" ? 202 : 404, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function mobilityWith(worker: string, old: { paused?: boolean; stateful?: boolean } = {}) {
  const local: AppTarget = { id: "old-copy", host: "127.0.0.1", port: 8080, path: "/infer", paused: old.paused ?? false, stateful: old.stateful ?? false };
  const apps: AppSource = { find: async () => local, dedicated: async (_s: Hex) => local, invalidate: () => {} };
  const neighbours = { self: () => ({ location: HERE, coverageRadiusM: 1500 }), covering: () => C, byOperator: () => C } as unknown as NeighbourSource;
  // The move completes as soon as it is asked for: the chain's part is not what this tests.
  const chain = { state: async () => State.Completed, migration: async () => ({ destination: C.operator }) } as unknown as RegistryView;
  return new Mobility({
    apps, neighbours, chain, worker: { url: worker }, log: silentLogger, pollMs: 10, holdTimeoutMs: 1000,
    // A lead of a minute: a car 1 km from the edge at 50 m/s is due at once.
    prediction: { enabled: true, minSpeedMps: 2, minFixes: 2, minSpanMs: 50, expectedMigrationS: 40, marginS: 0, switchLeadS: 3 },
  });
}

/** The car 500 m east of the centre heading east at about 50 m/s; its service moved ahead of the crossing. */
async function movedAhead(m: Mobility) {
  m.track(CAR, east(497));
  await sleep(60);
  m.track(CAR, east(500));
  await m.observe(CAR, TYPE, east(500));
  expect(m.migrationsPredicted).toBe(1);
}

describe("Mobility after a stateless move: the old copy serves until its client crosses", () => {
  let server: Server | undefined;
  afterEach(() => server?.close());
  /** A Mobility whose worker answers /migrate with `answer`, after the car's service moved ahead (the last server closed). */
  async function movedWith(answer: Record<string, unknown>, old: { paused?: boolean; stateful?: boolean } = {}) {
    server?.close();
    const w = await workerAnswering({ id: "7", held: false, ...answer });
    server = w.server;
    const m = mobilityWith(w.url, old);
    await movedAhead(m);
    return m;
  }

  it("serves from the old copy while the car is inside, points it on as it crosses, and stays pointed", async () => {
    const m = await movedWith({ retireGraceMs: 5000 });
    // The first request the old copy serves is also copied to the new cluster (warmAhead), once.
    expect(await m.route(CAR, TYPE)).toEqual({ kind: "moved", gateway: C.gateway, name: "c", oldCopy: { pointAway: false, warmAhead: true } });
    expect(await m.route(CAR, TYPE)).toEqual({ kind: "moved", gateway: C.gateway, name: "c", oldCopy: { pointAway: false, warmAhead: false } });
    m.track(CAR, east(1510)); // out of the coverage
    expect(await m.route(CAR, TYPE)).toEqual({ kind: "moved", gateway: C.gateway, name: "c", oldCopy: { pointAway: true, warmAhead: false } });
    m.track(CAR, east(1400)); // GPS noise back inside: the car was sent on already
    expect(await m.route(CAR, TYPE)).toEqual({ kind: "moved", gateway: C.gateway, name: "c", oldCopy: { pointAway: true, warmAhead: false } });
  });

  it("points a car that turns back (or stops) at the new copy at once: the new cluster must see it to move the service back", async () => {
    const m = await movedWith({ retireGraceMs: 5000 });
    expect(await m.route(CAR, TYPE)).toMatchObject({ oldCopy: { pointAway: false } });
    for (const x of [490, 480, 470]) {
      await sleep(30);
      m.track(CAR, east(x)); // heading back towards the centre
    }
    expect(await m.route(CAR, TYPE)).toMatchObject({ oldCopy: { pointAway: true } });
  });

  it("stops serving from the old copy well before the source retires it, and never from a frozen or unknown one", async () => {
    // Retired 1.6 s after completion: the old copy serves 0.1 s of it.
    let m = await movedWith({ retireGraceMs: 1600 });
    expect((await m.route(CAR, TYPE)) as object).toHaveProperty("oldCopy");
    await sleep(150);
    expect(await m.route(CAR, TYPE)).toEqual({ kind: "moved", gateway: C.gateway, name: "c" });

    // A stateful source's old copy is frozen: requests follow the service at once.
    m = await movedWith({ retireGraceMs: 5000 }, { paused: true });
    expect(await m.route(CAR, TYPE)).toEqual({ kind: "moved", gateway: C.gateway, name: "c" });

    // A worker that does not say how long it keeps the old copy: nothing is assumed.
    m = await movedWith({});
    expect(await m.route(CAR, TYPE)).toEqual({ kind: "moved", gateway: C.gateway, name: "c" });
  });

  it("points the car on a second before the old copy's time ends, so its next request goes straight to the new copy", async () => {
    // Retired 3.2 s after completion: the old copy serves for 1.7 s, and points the car on after 0.7 s of it.
    const m = await movedWith({ retireGraceMs: 3200 });
    expect(await m.route(CAR, TYPE)).toMatchObject({ oldCopy: { pointAway: false } });
    await sleep(900);
    expect(await m.route(CAR, TYPE)).toMatchObject({ oldCopy: { pointAway: true } });
  });

  it("never copies a request of a service labelled stateful (it would run twice on its state)", async () => {
    const m = await movedWith({ retireGraceMs: 5000 }, { stateful: true });
    expect(await m.route(CAR, TYPE)).toMatchObject({ oldCopy: { warmAhead: false } });
  });

  it("lets the old copy serve until 1.5 s before the source retires it", () => {
    expect([5000, 3000, 1600, 1000, 0, undefined, Number.NaN].map(oldCopyServesMs)).toEqual([3500, 1500, 100, 0, 0, 0, 0]);
  });
});
