import { describe, expect, it } from "vitest";
import { parseWorkerConfig } from "../worker/config.ts";
import { ConfigError } from "./errors.ts";

describe("parseConfig", () => {
  it("names every problem of a config at once, each with its field", () => {
    let error: unknown;
    try {
      parseWorkerConfig({ name: "Bad Name", rpcUrl: "ftp://x", registryAddress: "0x12", redisUrl: "redis://127.0.0.1:6379", imageRegistry: "r:5000", appTypes: ["a"], key: { env: "K" } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect((error as ConfigError).field).toBe("config.name");
    for (const field of ["config.name", "config.rpcUrl", "config.registryAddress"]) expect(message).toContain(field);
    expect(message.split("\n")).toHaveLength(1);
  });

  it("keeps a single problem as it was: field, then what is wrong", () => {
    expect(() => parseWorkerConfig({ name: "a", rpcUrl: "http://x", registryAddress: `0x${"11".repeat(20)}`, redisUrl: "redis://x", imageRegistry: "r:5000", registryAuth: { tlsCertFile: "t", tokenKeyFile: "k", tokenCertFile: "c" }, appTypes: [], key: { env: "K" } }))
      .toThrow(/^config\.appTypes: /);
  });

  it("takes only bases pinned by digest to warm (a tag could be moved to another image before the worker pulls it)", () => {
    const config = { name: "a", rpcUrl: "http://x", registryAddress: `0x${"11".repeat(20)}`, redisUrl: "redis://x", imageRegistry: "r:5000", registryAuth: { tlsCertFile: "t", tokenKeyFile: "k", tokenCertFile: "c" }, appTypes: ["a"], key: { env: "K" } };
    expect(() => parseWorkerConfig({ ...config, warmBases: ["r:5000/apps/a:1"] })).toThrow(/^config\.warmBases\.0: must be an image pinned by digest/);
    const pinned = `r:5000/apps/a@sha256:${"ab".repeat(32)}`;
    expect(parseWorkerConfig({ ...config, warmBases: [pinned] }).warmBases).toEqual([pinned]);
    expect(parseWorkerConfig(config).warmBases).toEqual([]);
  });
});
