export { startRig, readFileFrom, type Rig } from "../../workers/src/lib/rig.ts";
