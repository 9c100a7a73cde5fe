import path from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout (or installed package) root: where package.json, artifacts/ and ignition/ live. */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
