import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type LocalRegistry } from "../../workers/src/plane/imageRegistry.ts";

describe("the local image registry", () => {
  let registry: LocalRegistry;
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "blosm-registry-"));
    registry = await startRegistry(root);
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(root, { recursive: true, force: true });
  });

  // docker-registry writes an access-log line per request on stdout; a pipe nobody read filled up after about
  // 15 migrations' worth of requests and the registry blocked for good. 3000 requests log well over 64 KiB.
  it("keeps answering after more access-log output than a pipe holds", async () => {
    const url = `http://${registry.address}/v2/_catalog`;
    for (let batch = 0; batch < 60; batch++) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(url, { signal: AbortSignal.timeout(5000) }).then((r) => r.status)));
      expect(answers.every((s) => s === 200)).toBe(true);
    }
  });
});
