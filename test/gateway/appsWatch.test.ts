import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../workers/src/engine/labels.ts";
import { APP_LABEL, DockerApps } from "../../workers/src/gateway/apps.ts";
import { waitFor } from "../../workers/src/lib/waitFor.ts";
import { startEngine, type Engine } from "../../workers/src/plane/dockerd.ts";
import { importBusyboxBase } from "../../workers/src/plane/localImages.ts";

const SERVICE = `0x${"cd".repeat(32)}` as const;

describe("DockerApps.watch: the gateway's container list follows the engine's events", () => {
  let dir: string;
  let engine: Engine;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "blosm-apps-watch-"));
    engine = await startEngine(`aw${process.pid}`, path.join(dir, "engine"));
    await importBusyboxBase(engine.docker, "blosm/busybox:base");
  }, 120_000);
  afterAll(async () => {
    await engine?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("a container started or stopped here is in the list, or out of it, without waiting for the list's age", async () => {
    // A list kept a minute: only the events can change what it answers within this test.
    const apps = new DockerApps(engine.docker, "127.0.0.1", { ttlMs: 60_000 });
    expect(await apps.dedicated(SERVICE)).toBeUndefined();
    const started: string[] = [];
    const unwatch = apps.watch(undefined, (t) => started.push(`${t.id} ${t.serviceId} ${t.port}${t.path}`));
    try {
      await new Promise((r) => setTimeout(r, 300)); // the event stream is open
      const c = await engine.docker.createContainer({
        name: "watched", Image: "blosm/busybox:base", Cmd: ["sleep", "600"],
        Labels: { [LABEL.appType]: "driver-profiling", [LABEL.serviceId]: SERVICE, [LABEL.mode]: "stateless", [APP_LABEL.port]: "7070", [APP_LABEL.path]: "/warm-me" },
      });
      await c.start();
      const seen = await waitFor(async () => (await apps.dedicated(SERVICE))?.id, { what: "the started container in the list", timeoutMs: 3000, intervalMs: 50 });
      expect(seen).toBe(c.id);
      // A client's own container that started is handed on to be warmed, once, with where it answers.
      await waitFor(async () => started.length > 0, { what: "the started container handed on", timeoutMs: 3000, intervalMs: 50 });
      expect(started).toEqual([`${c.id} ${SERVICE} 7070/warm-me`]);
      // A shared one (no client's) is not: it has served before, and serves whoever comes.
      const shared = await engine.docker.createContainer({ name: "shared", Image: "blosm/busybox:base", Cmd: ["sleep", "600"], Labels: { [LABEL.appType]: "driver-profiling" } });
      await shared.start();
      await waitFor(async () => (await apps.find("driver-profiling"))?.id === shared.id, { what: "the shared container in the list", timeoutMs: 3000, intervalMs: 50 });
      await shared.remove({ force: true });
      await c.stop({ t: 0 });
      await waitFor(async () => (await apps.dedicated(SERVICE)) === undefined, { what: "the stopped container out of the list", timeoutMs: 3000, intervalMs: 50 });
      await c.remove({ force: true });
      expect(started).toHaveLength(1);
    } finally {
      unwatch();
    }
    // Stopped watching: the list no longer follows (a container started now stays unseen for the list's minute).
    const late = await engine.docker.createContainer({ name: "unwatched", Image: "blosm/busybox:base", Cmd: ["sleep", "600"], Labels: { [LABEL.appType]: "driver-profiling", [LABEL.serviceId]: SERVICE } });
    await late.start();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await apps.dedicated(SERVICE)).toBeUndefined();
    await late.remove({ force: true });
  }, 60_000);
});
