import Docker from "dockerode";
import { Redis } from "ioredis";
import { describeError } from "../lib/describeError.ts";
import { fail, ok, warn, type Check } from "./check.ts";

/** Redis answers and will not evict: an evicted BullMQ key is a lost or duplicated migration step. */
export async function redisCheck(url: string): Promise<Check> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null });
  redis.on("error", () => {});
  try {
    await redis.connect();
    const info = await redis.info("memory");
    const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1] ?? "unknown";
    return policy === "noeviction"
      ? ok("redis", `${redact(url)} answers, maxmemory-policy noeviction`)
      : fail("redis", `${redact(url)} has maxmemory-policy ${policy}: it may drop queued migration steps`, "set maxmemory-policy noeviction (and appendonly yes) in redis.conf");
  } catch (e) {
    return fail("redis", `cannot reach ${redact(url)}: ${describeError(e)}`, "start Redis or correct redisUrl");
  } finally {
    redis.disconnect();
  }
}

/** The Docker Engine answers on the socket, and whether it can give containers GPUs. */
export async function dockerChecks(socketPath: string): Promise<Check[]> {
  const docker = new Docker({ socketPath });
  let info: { ServerVersion?: string; Runtimes?: Record<string, unknown> };
  try {
    info = (await docker.info()) as typeof info;
  } catch (e) {
    return [
      fail("docker", `cannot reach the engine at ${socketPath}: ${describeError(e)}`, "start dockerd, correct dockerSocket, or add this user to the socket's group"),
      warn("gpu runtime", "not checked: no engine"),
    ];
  }
  const runtimes = Object.keys(info.Runtimes ?? {});
  return [
    ok("docker", `engine ${info.ServerVersion ?? "?"} at ${socketPath}`),
    runtimes.includes("nvidia")
      ? ok("gpu runtime", `NVIDIA runtime present (runtimes: ${runtimes.join(", ")})`)
      : warn("gpu runtime", `no NVIDIA runtime (runtimes: ${runtimes.join(", ") || "none"}): this cluster can only take services that need no GPU`, "install the NVIDIA Container Toolkit and `nvidia-ctk runtime configure --runtime=docker`"),
  ];
}

/** A URL with any password replaced: Redis URLs may carry one. */
const redact = (url: string) => url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
