/**
 * One process of the gateway benchmark (spawned by bench/gateway.ts): a backend standing for the app container,
 * or a gateway with a fixed upstream and fixed neighbours, so the measurement is the gateway's own overhead.
 */
import { createServer } from "node:http";
import { StaticApps } from "../workers/src/gateway/apps.ts";
import { LocalCapacity } from "../workers/src/gateway/capacity.ts";
import { Gateway } from "../workers/src/gateway/server.ts";
import { StaticNeighbours } from "../workers/src/gateway/neighbours.ts";
import { createLogger } from "../workers/src/lib/log.ts";
import { privateKeyToAccount } from "viem/accounts";
import { PeerSigner, PeerVerifier, accountGrant } from "../workers/src/chain/peerProof.ts";

type Spec =
  | { role: "backend"; port: number }
  | { role: "gateway"; name: string; port: number; backendPort: number; memoryMiB: number; neighbour?: string };

const spec = JSON.parse(process.argv[2]!) as Spec;
const DRIVER = "driver-profiling";

if (spec.role === "backend") {
  // Answers like the driver-profiling app (driver id and confidence), without its compute: only transport is measured.
  const server = createServer((req, res) => {
    let n = 0;
    req.on("data", (c: Buffer) => (n += c.length));
    req.on("end", () => {
      const body = JSON.stringify({ driverId: n % 10, confidence: 0.87 });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(spec.port, "127.0.0.1", () => process.send?.("ready"));
} else {
  const node = privateKeyToAccount(process.env.BLOSM_BENCH_NODE_KEY as `0x${string}`);
  const free = { cpuMillicores: 100_000, memoryMiB: spec.memoryMiB, gpuMemoryMiB: 0 };
  const capacity = new LocalCapacity(async () => free, 60_000);
  await capacity.start();
  const neighbours = new StaticNeighbours(spec.neighbour ? [{
    operator: "0x0000000000000000000000000000000000000001", name: "neighbour", gateway: spec.neighbour,
    location: { latE6: 0, lonE6: 0 }, coverageRadiusM: 1, appTypes: [DRIVER], freeAt: Date.now(), avoidUntil: 0,
  }] : []);
  const gateway = new Gateway(
    { name: spec.name, apps: { [DRIVER]: { needs: { cpuMillicores: 100, memoryMiB: 64, gpuMemoryMiB: 0 }, timeoutMs: 10_000 } }, holdTimeoutMs: 1000, queueTimeoutMs: 0, maxBodyBytes: 1 << 20 },
    {
      apps: new StaticApps({ [DRIVER]: { host: "127.0.0.1", port: spec.backendPort, path: "/infer" } }), capacity, neighbours, log: createLogger({ level: "warn" }),
      // Both gateways stand for one registered node (a key bench/gateway.ts made for this run): forwarding is signed and verified as in production.
      peers: { signer: new PeerSigner(node.address, accountGrant(node)), verifier: new PeerVerifier(async (a) => a === node.address) },
    },
  );
  await gateway.listen("127.0.0.1", spec.port);
  process.send?.("ready");
}

// The parent says "exit" to stop: a normal exit, so --cpu-prof and friends write their output.
process.on("message", (m) => m === "exit" && process.exit(0));
