import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./freePort.ts";

export type RedisServer = { url: string; port: number; process: ChildProcess; client: () => Redis; stop: () => Promise<void> };

/** A real redis-server (Debian's) on a free loopback port, without persistence; `stop` stops it. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "blosm-redis-"));
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.on("error", (e) => (output += String(e)));
  const url = `redis://127.0.0.1:${port}`;
  const clients: Redis[] = [];
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not start on port ${port} (is it installed? bash scripts/bootstrap.sh): ${output}`);
    }
    if (output.includes("Ready to accept connections")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, port, process: child,
    client: () => {
      const c = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
      clients.push(c);
      return c;
    },
    stop: async () => {
      await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
