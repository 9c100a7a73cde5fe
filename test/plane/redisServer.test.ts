import { afterAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "../../workers/src/plane/redisServer.ts";

describe("the project's Redis", () => {
  let redis: RedisServer;
  afterAll(() => redis?.stop());

  it("keeps jobs across a restart (append-only file) and refuses to evict them", async () => {
    redis = await startRedis();
    const client = redis.client();
    expect(await client.config("GET", "maxmemory-policy")).toEqual(["maxmemory-policy", "noeviction"]);
    await client.set("blosm-test:outbound:7", "kept");
    await new Promise((r) => setTimeout(r, 1100)); // one fsync period
    await redis.restart();
    expect(await client.get("blosm-test:outbound:7")).toBe("kept"); // ioredis reconnected on its own
  });
});
