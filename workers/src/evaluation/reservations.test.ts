import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type TestRedis } from "../../../test/helpers/redis.ts";
import { Reservations, acceptanceKey, isMigrationKey } from "./reservations.ts";

const SERVICE = `0x${"5E".repeat(32)}` as const;
const SOURCE = "0x00000000000000000000000000000000000000Aa" as const;
const held = { cpuMillicores: 500, memoryMiB: 256, gpuIds: [], gpuMemoryMiB: 0 };

describe("Reservations (real Redis)", () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("keeps an acceptance's reservation until it lapses, and moves it to its migration for good", async () => {
    let now = 1_000;
    const r = new Reservations(redis.client(), "t1:reservations", () => now);
    const key = acceptanceKey(SERVICE, SOURCE);
    expect(key).toBe(`accept:0x${"5e".repeat(32)}:0x${"0".repeat(38)}aa`);
    expect([isMigrationKey(key), isMigrationKey("17")]).toEqual([false, true]);
    await r.reserve(key, { ...held, gpuIds: ["GPU-1"], expiresAt: 2_000 });
    await r.reserve("3", { ...held, expiresAt: 1_500 }); // an offer's: the expiry means nothing under a migration id
    expect([...(await r.all()).keys()].sort()).toEqual(["3", key]);

    expect(await r.adopt(key, "17")).toBe(true);
    expect(await r.adopt(key, "18")).toBe(false); // moved once
    now = 10_000; // long past the acceptance's expiry: a migration's reservation stays until released
    expect((await r.get("17"))?.gpuIds).toEqual(["GPU-1"]);
    expect([...(await r.all()).keys()].sort()).toEqual(["17", "3"]);
    expect(await r.release("17")).toBe(true);
  });

  it("drops a lapsed acceptance: not counted, not adopted, and gone from Redis", async () => {
    let now = 1_000;
    const client = redis.client();
    const r = new Reservations(client, "t2:reservations", () => now);
    const key = acceptanceKey(SERVICE, SOURCE);
    await r.reserve(key, { ...held, expiresAt: 2_000 });
    now = 2_000;
    expect(await r.get(key)).toBeUndefined();
    expect((await r.all()).size).toBe(0);
    expect(await client.hexists("t2:reservations", key)).toBe(0);

    await r.reserve(key, { ...held, expiresAt: 2_500 });
    now = 3_000;
    expect(await r.adopt(key, "5")).toBe(false);
    expect(await client.hlen("t2:reservations")).toBe(0);
  });
});
