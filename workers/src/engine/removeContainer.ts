import type Docker from "dockerode";
import { BlosmError } from "../lib/errors.ts";
import { waitFor } from "../lib/waitFor.ts";

/**
 * Removes a container (forced) and returns once it is gone, whoever removes it: gone already is done, and a removal
 * already in progress elsewhere (the retire step, a restore's stale-copy removal, a reconcile round) is waited for,
 * since a caller may take the name next. A restore that created its container while the retire step was still
 * removing the stale copy hit a name Conflict, and a car that turned back lost its return move.
 */
export async function removeContainer(docker: Docker, id: string, o: { goneWithinMs?: number } = {}): Promise<void> {
  await docker.getContainer(id).remove({ force: true }).catch(async (e: { statusCode?: number; message?: string }) => {
    if (e.statusCode === 404) return;
    if (!(e.statusCode === 409 && /already in progress/.test(e.message ?? ""))) throw e;
    const goneWithinMs = o.goneWithinMs ?? 30_000;
    await waitFor(() => docker.getContainer(id).inspect().then(() => false, (err: { statusCode?: number }) => err.statusCode === 404), {
      what: `container ${id.slice(0, 12)} to be removed`, timeoutMs: goneWithinMs, intervalMs: 50,
    }).catch(() => {
      throw new BlosmError(`container ${id.slice(0, 12)} is still being removed after ${(goneWithinMs / 1000).toFixed(1)} s`);
    });
  });
}
