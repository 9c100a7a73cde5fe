import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { stringToHex, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, describe, expect, it } from "vitest";
import { PeerSigner, accountGrant } from "../chain/peerProof.ts";
import type { RegistryView } from "../chain/registryView.ts";
import { silentLogger } from "../lib/log.ts";
import { RegistryNeighbours } from "./neighbours.ts";

const TYPE = "driver-profiling";
const NEEDS = { cpuMillicores: 500, memoryMiB: 256, gpuMemoryMiB: 0 };
const me = privateKeyToAccount(generatePrivateKey());
const OTHER = "0x00000000000000000000000000000000000000bb" as Address;

/** The other cluster: its worker's GET /cluster and its gateway's GET /capacity on one server, answering `free`. */
async function otherCluster(state: { free: typeof NEEDS; status: number; peers: string[] }) {
  let url = "";
  const server = createServer((req, res) => {
    state.peers.push(String(req.headers["x-blosm-peer"] ?? ""));
    const body = req.url === "/cluster" ? { name: "cluster-b", gateway: url }
      : req.url === "/capacity" ? (state.status === 200 ? { name: "cluster-b", free: state.free, inFlight: 0 } : { error: "peer: not an active node" })
      : { error: "no route" };
    res.writeHead(req.url === "/capacity" ? state.status : 200, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, server };
}

const node = (operator: Address, endpoint: string, lonE6: number) => ({
  operator, active: true, endpoint, location: { latE6: 35_885_000, lonE6 }, coverageRadiusM: 1500,
  appTypes: [stringToHex(TYPE, { size: 32 })], free: { cpuMillicores: 0, memoryMiB: 0, gpuMemoryMiB: 0 }, freeReportedAt: 0n,
});

describe("RegistryNeighbours", () => {
  let server: Server | undefined;
  let neighbours: RegistryNeighbours | undefined;
  afterEach(() => {
    neighbours?.stop();
    server?.close();
  });

  it("polls each neighbour's free capacity as a registered node, and keeps the last view when a poll is refused", async () => {
    const state = { free: { cpuMillicores: 2000, memoryMiB: 4096, gpuMemoryMiB: 0 }, status: 200, peers: [] as string[] };
    const other = await otherCluster(state);
    server = other.server;
    const chain = { address: "0x0000000000000000000000000000000000000001", nodes: async () => [node(me.address, "http://127.0.0.1:1", 128_610_000), node(OTHER, other.url, 128_640_000)] } as unknown as RegistryView;
    neighbours = new RegistryNeighbours(chain, me.address, new PeerSigner(me.address, accountGrant(me)), { refreshMs: 60_000, pollMs: 50, log: silentLogger });
    await neighbours.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(neighbours.candidates(TYPE, NEEDS).map((n) => [n.name, n.free?.memoryMiB])).toEqual([["cluster-b", 4096]]);
    expect(state.peers.length).toBeGreaterThan(2);
    expect(state.peers.every((p) => p.toLowerCase() === me.address.toLowerCase())).toBe(true);

    // Full now: it is no candidate for a request that does not fit.
    state.free = { cpuMillicores: 100, memoryMiB: 64, gpuMemoryMiB: 0 };
    await new Promise((r) => setTimeout(r, 150));
    expect(neighbours.candidates(TYPE, NEEDS)).toEqual([]);

    // A refused poll changes nothing it knew.
    state.free = { cpuMillicores: 2000, memoryMiB: 4096, gpuMemoryMiB: 0 };
    state.status = 401;
    await new Promise((r) => setTimeout(r, 150));
    expect(neighbours.candidates(TYPE, NEEDS)).toEqual([]);
    expect(neighbours.byOperator(OTHER)?.free?.memoryMiB).toBe(64);
  });
});
