import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The checkout (or installed package) root: where package.json, artifacts/ and ignition/ live. Found by walking up
 * to package.json rather than by a fixed depth, so the same code works from workers/src (tsx, tests) and from the
 * compiled dist/workers/src (./blosm, the worker image).
 */
export const projectRoot = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`blosm: no package.json above ${from}; is the installation complete?`);
  }
}
