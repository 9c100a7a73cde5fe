import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../lib/freePort.ts";
import { startService, type Service } from "./service.ts";

export type RedisServer = {
  url: string;
  port: number;
  process: ChildProcess;
  client: () => Redis;
  /** Stops the server and starts it again on the same port and files: what was on disk (the AOF) comes back. */
  restart: (opts?: { downMs?: number }) => Promise<void>;
  stop: () => Promise<void>;
};

/**
 * A real redis-server (Debian's) on a free loopback port, configured as BullMQ's production guide asks: an
 * append-only file (fsync every second), so a restart loses at most a second of jobs, and `noeviction`, so Redis
 * refuses writes when full rather than silently dropping jobs. `stop` stops it and removes its files.
 */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "blosm-redis-"));
  const url = `redis://127.0.0.1:${port}`;
  const clients: Redis[] = [];
  const launch = () => startService("redis-server", "redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
    "--maxmemory-policy", "noeviction", "--dir", dir,
  ], { timeoutMs: 15_000, hint: "is it installed? (bash scripts/bootstrap.sh)", ready: () => ping(port) });
  let service: Service = await launch();
  const server: RedisServer = {
    url, port, process: service.process,
    client: () => {
      const c = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
      c.on("error", () => {}); // reconnects on its own (a restart); commands still fail loudly meanwhile
      clients.push(c);
      return c;
    },
    restart: async (opts = {}) => {
      await service.stop(10_000);
      if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
      service = await launch();
      server.process = service.process;
    },
    stop: async () => {
      await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
      await service.stop(10_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** PING over a raw socket: resolves on +PONG, throws otherwise (refused, loading, timed out). */
function ping(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(1000);
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (d) => (socket.destroy(), String(d).startsWith("+PONG") ? resolve() : reject(new Error(String(d).trim()))));
    socket.once("error", reject);
    socket.once("timeout", () => (socket.destroy(), reject(new Error("no answer"))));
  });
}
