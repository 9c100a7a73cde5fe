import { BlosmError } from "./errors.ts";
import { sleep } from "./sleep.ts";

export type WaitForOptions = {
  /** What is awaited, for the error: "dockerd a to answer on /run/…/docker.sock". */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Checked before each try: a reason to give up at once (the process exited), or undefined to go on. */
  abortIf?: () => string | undefined;
  /** Appended to the time-out error (the last lines a process printed, a hint to fix it). */
  detail?: () => string;
};

/**
 * Polls `check` until it returns a value other than undefined/false, and returns that value. A check that throws
 * counts as "not yet" (a server not listening yet refuses connections). Gives up with a BlosmError naming what
 * was awaited when `abortIf` says so or after `timeoutMs`.
 */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitForOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    const abort = opts.abortIf?.();
    if (abort !== undefined) throw new BlosmError(`gave up waiting for ${opts.what}: ${abort}${suffix(opts)}`);
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new BlosmError(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${last}${suffix(opts)}`, { retryable: true });
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

function suffix(opts: WaitForOptions): string {
  const detail = opts.detail?.().trim();
  return detail ? `: ${detail}` : "";
}
