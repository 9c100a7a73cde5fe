import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../lib/log.ts";
import { StaticApps } from "./apps.ts";
import { LocalCapacity } from "./capacity.ts";
import { StaticNeighbours } from "./neighbours.ts";
import { Gateway } from "./server.ts";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { PeerSigner, PeerVerifier, accountGrant } from "../chain/peerProof.ts";
import { ClientSigner } from "./clientSigner.ts";
import { PROOF_HEADER } from "./clientProof.ts";
import { Upstream } from "./upstream.ts";

const member = privateKeyToAccount(generatePrivateKey());
const stranger = privateKeyToAccount(generatePrivateKey());
const peerOf = (a: typeof member) => new PeerSigner(a.address, accountGrant(a));

const DRIVER = "driver-profiling";

describe("the gateway's HTTP server on bad input", () => {
  let gateway: Gateway;
  beforeAll(async () => {
    const capacity = new LocalCapacity(async () => ({ cpuMillicores: 1000, memoryMiB: 1024, gpuMemoryMiB: 0 }), 60_000);
    await capacity.start();
    gateway = new Gateway(
      { name: "cluster-t", apps: { [DRIVER]: { needs: { cpuMillicores: 100, memoryMiB: 64, gpuMemoryMiB: 0 }, timeoutMs: 1000 } }, holdTimeoutMs: 100, queueTimeoutMs: 0, maxBodyBytes: 1024 },
      {
        apps: new StaticApps({}), capacity, neighbours: new StaticNeighbours([]), log: silentLogger,
        // The registry, as far as this test goes: `member` is an active node, `stranger` is not.
        peers: { signer: peerOf(member), verifier: new PeerVerifier(async (node) => node === member.address) },
      },
    );
    await gateway.listen("127.0.0.1", 0);
  });
  afterAll(() => gateway?.close());

  it("answers a malformed percent-encoding in the path with 400 naming it, not 500", async () => {
    const res = await fetch(`${gateway.url}/apps/%E0%A4%A/infer`, { method: "POST", body: "x" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/app type in the path is not valid percent-encoding/);
    expect((await fetch(`${gateway.url}/clients/%ZZ/position`, { method: "POST", body: "{}" })).status).toBe(400);
  });

  it("answers an oversized body with 413", async () => {
    const res = await fetch(`${gateway.url}/apps/${DRIVER}/infer`, { method: "POST", body: "x".repeat(2048) });
    expect(res.status).toBe(413);
  });

  it("serves capacity and forwarded requests only to active registered nodes proving their key (401 naming why)", async () => {
    const error = async (res: Response) => `${res.status} ${((await res.json()) as { error: string }).error}`;
    expect(await error(await fetch(`${gateway.url}/capacity`))).toMatch(/^401 peer: x-blosm-peer is missing/);
    expect(await error(await fetch(`${gateway.url}/capacity`, { headers: await peerOf(stranger).headers("GET", "/capacity") }))).toMatch(/^401 peer: 0x[0-9a-fA-F]{40} is not an active node/);
    const forwardedBody = Buffer.from("1,2,3");
    const strangerForward = await fetch(`${gateway.url}/apps/${DRIVER}/infer`, {
      method: "POST", body: forwardedBody, headers: { "x-blosm-forwarded-from": "x", ...(await peerOf(stranger).headers("POST", `/apps/${DRIVER}/infer`, forwardedBody)) },
    });
    expect(await error(strangerForward)).toMatch(/^401 peer: .* is not an active node/);
    const unsigned = await fetch(`${gateway.url}/apps/${DRIVER}/infer`, { method: "POST", body: forwardedBody, headers: { "x-blosm-forwarded-from": "x" } });
    expect(unsigned.status).toBe(401);
    // A member's proof for another path does not open this one.
    const wrongPath = await fetch(`${gateway.url}/capacity`, { headers: await peerOf(member).headers("GET", "/healthz") });
    expect(await error(wrongPath)).toMatch(/^401 peer: the signature does not match/);
    expect((await fetch(`${gateway.url}/capacity`, { headers: await peerOf(member).headers("GET", "/capacity") })).status).toBe(200);
  });

  it("takes a client's session grant handed on by a registered cluster (POST /sessions), and names what is wrong", async () => {
    const upstream = new Upstream();
    try {
      const car = new ClientSigner(privateKeyToAccount(generatePrivateKey()));
      const other = new ClientSigner(privateKeyToAccount(generatePrivateKey()));
      const sessionOf = async (c: ClientSigner) => (await c.headers({ op: "position", body: Buffer.from("{}") }))[PROOF_HEADER.session]!;
      await expect(upstream.primeSession(gateway.url, car.address, await sessionOf(car), peerOf(stranger))).rejects.toThrow(/answered 401: .*is not an active node/);
      await upstream.primeSession(gateway.url, car.address, await sessionOf(car), peerOf(member));
      // Another client's grant under this client's address: refused, as on a request.
      await expect(upstream.primeSession(gateway.url, car.address, await sessionOf(other), peerOf(member))).rejects.toThrow(/answered 400: .*session of 0x.*was signed by 0x/);
      await expect(upstream.primeSession(gateway.url, "nobody", await sessionOf(car), peerOf(member))).rejects.toThrow(/answered 400: .*nobody\\" is not an address/);
      const body = Buffer.from('{"client": 1}');
      const res = await fetch(`${gateway.url}/sessions`, { method: "POST", body, headers: await peerOf(member).headers("POST", "/sessions", body) });
      expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([400, 'body: must be {"client": "0x…", "session": "<the client\'s x-blosm-session header>"}']);
    } finally {
      await upstream.close();
    }
  });

  it("counts health checks and capacity reads as meta, not as errors", async () => {
    await fetch(`${gateway.url}/healthz`);
    await fetch(`${gateway.url}/capacity`, { headers: await peerOf(member).headers("GET", "/capacity") });
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/^blosm_gateway_request_duration_seconds_count\{route="meta",code="200"\} [1-9]/m);
    expect(metrics).not.toMatch(/route="error",code="2\d\d"/);
    // A histogram: percentiles can be computed from the buckets.
    expect(metrics).toMatch(/^blosm_gateway_request_duration_seconds_bucket\{le="0.005",route="meta",code="200"\} \d+/m);
    expect(metrics).toMatch(/^process_cpu_user_seconds_total \d/m);
  });

  it("bounds a client that never finishes sending its headers", async () => {
    const closed = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const socket = connect(Number(new URL(gateway.url).port), "127.0.0.1", () => socket.write("POST /apps/x/infer HTTP/1.1\r\nHost: t\r\n"));
      socket.on("data", () => {});
      socket.on("close", () => resolve(Date.now() - t0));
      socket.on("error", () => {});
    });
    expect(closed).toBeLessThan(20_000);
  }, 30_000);
});
