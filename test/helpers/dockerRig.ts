export { startRig, readFileFrom, type Rig } from "../../workers/src/plane/rig.ts";
