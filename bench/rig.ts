/**
 * npm run rig [-- --engines 3 --sizes small,264]: the transfer test rig by hand. Starts N Docker Engines (own
 * data-root, exec-root, socket, pidfile) and a registry on 127.0.0.1, builds the test images locally (busybox
 * base; ~264 MB and ~2 GB images sharing it, each with a small app layer), prints how to reach everything,
 * and tears it all down on Ctrl-C. Needs root.
 */
import { parseArgs } from "node:util";
import { buildImage } from "../workers/src/plane/localImages.ts";
import { startRig } from "../workers/src/plane/rig.ts";
import { pushImage } from "../workers/src/engine/push.ts";
import { onStopSignal } from "../workers/src/lib/shutdown.ts";

const { values } = parseArgs({ options: { engines: { type: "string", default: "3" }, sizes: { type: "string", default: "small" } }, strict: true });
const count = Number(values.engines);
if (!Number.isInteger(count) || count < 1 || count > 8) {
  console.error(`rig: --engines must be 1..8, got "${values.engines}"`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error("rig: needs root (it starts dockerd)");
  process.exit(1);
}
const sizes: Record<string, number> = { small: 1, "264": 250, "2g": 2000 };
for (const s of String(values.sizes).split(",")) if (!(s in sizes)) {
  console.error(`rig: --sizes takes small, 264 and 2g, got "${s}"`);
  process.exit(2);
}
const rig = await startRig(count);
const stopped = onStopSignal(async () => {
  console.log("\nrig: tearing down engines and registry…");
  await rig.stop();
});
for (const s of String(values.sizes).split(",")) {
  const ref = `${rig.registry.address}/blosm/app-${s}:1`;
  console.log(`rig: building ${ref}…`);
  await buildImage(rig.engines[0]!.docker, ref, {
    Dockerfile: `FROM ${rig.base}\nRUN mkdir -p /opt && dd if=/dev/urandom of=/opt/model.bin bs=1M count=${sizes[s]} 2>/dev/null\nCMD ["sh", "-c", "exec sleep 1000000"]\n`,
  });
  await pushImage(rig.engines[0]!.docker, ref);
}
console.log(`rig: registry ${rig.registry.address}`);
for (const e of rig.engines) console.log(`rig: engine ${e.name}: DOCKER_HOST=unix://${e.socket}`);
console.log("rig: ready; Ctrl-C tears everything down");
await stopped;
process.exit(0);
