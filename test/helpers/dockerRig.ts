import type Docker from "dockerode";
import { afterAll, beforeAll } from "vitest";
import { startRig, type Rig } from "../../workers/src/plane/rig.ts";

export { startRig, readFileFrom, type Rig } from "../../workers/src/plane/rig.ts";

/**
 * Two real engines and a registry for one describe block: started before its tests, stopped after them.
 * `rig()` is the running rig (tests may replace its registry); `src()` and `dst()` the two engines.
 */
export function useTwoEngineRig(): { rig: () => Rig; src: () => Docker; dst: () => Docker } {
  let rig: Rig | undefined;
  beforeAll(async () => {
    rig = await startRig(2);
  }, 180_000);
  afterAll(async () => rig?.stop(), 120_000);
  const running = () => {
    if (!rig) throw new Error("the rig did not start");
    return rig;
  };
  return { rig: running, src: () => running().engines[0]!.docker, dst: () => running().engines[1]!.docker };
}
