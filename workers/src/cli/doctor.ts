import { canJoin, type Check } from "../doctor/check.ts";
import { diagnose } from "../doctor/doctor.ts";
import { printJson, type Runner } from "./command.ts";

const MARK: Record<Check["status"], string> = { ok: "✓", warn: "!", fail: "✗", skip: "-" };

/** Prints one line per check (and the fix under a failed or warned one); exit 0 when the cluster can join, 1 when not. */
export const runDoctor: Runner = async ({ values }) => {
  const checks = await diagnose({ worker: values.config as string, gateway: values.gateway as string | undefined });
  const joinable = canJoin(checks);
  if (values.json) {
    printJson({ canJoin: joinable, checks });
  } else {
    const width = Math.max(...checks.map((c) => c.name.length));
    for (const c of checks) {
      console.log(`${MARK[c.status]} ${c.name.padEnd(width)}  ${c.detail}`);
      if (c.fix && c.status !== "ok") console.log(`  ${" ".repeat(width)}  → ${c.fix}`);
    }
    console.log(joinable ? "\nthis cluster can join" : `\nthis cluster cannot join yet: ${checks.filter((c) => c.status === "fail").length} check(s) failed`);
  }
  return joinable ? 0 : 1;
};
