import type { PublicClient } from "viem";

/**
 * Seals one block per period as a Clique signer does: each block is due at its parent's time plus the period, and
 * a signer that is late (this 2-core machine is shared with N workers and four Docker Engines) seals as soon as
 * it can and stamps the block with the time it seals, so that an offer window of W seconds is W seconds of
 * blocks, never a burst of blocks to catch up. The dev node's own interval mining stamps its late blocks on a
 * catch-up schedule instead (timestamps jump; a 5 s window closed two blocks after the request), and so did this
 * sealer's first version (it sealed missed periods 50 ms apart: at N = 100, five blocks in under four seconds).
 * A real signer runs on its own machine; this stands in for one.
 */
export class Sealer {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  sealed = 0;
  /** Blocks sealed late, stamped with the time they were sealed instead of parent + period. */
  late = 0;

  /** What each block adds to its parent's timestamp: the period in whole seconds, as Clique's `period`. */
  private readonly step: bigint;

  /**
   * @param offsetMs chain time minus wall-clock time when the sealer started (the dev node's clock may differ):
   * "now" in chain time is Date.now() + offsetMs.
   */
  private constructor(private readonly url: string, periodMs: number, private timestamp: bigint, private readonly offsetMs: number) {
    this.step = BigInt(Math.max(1, Math.round(periodMs / 1000)));
  }

  static async start(url: string, client: PublicClient, periodMs: number): Promise<Sealer> {
    await rpc(url, "evm_setIntervalMining", [0]);
    const head = await client.getBlock();
    const offsetMs = Number(head.timestamp) * 1000 - Date.now();
    const s = new Sealer(url, periodMs, head.timestamp, offsetMs);
    s.schedule();
    return s;
  }

  private schedule(atLeastMs = 0) {
    const due = this.timestamp + this.step;
    const dueAt = Number(due) * 1000 - this.offsetMs;
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      const now = BigInt(Math.floor((Date.now() + this.offsetMs) / 1000));
      const stamp = now > due ? now : due;
      let sealed = false;
      try {
        await rpc(this.url, "evm_mine", [Number(stamp)]);
        [sealed, this.timestamp] = [true, stamp];
        this.sealed++;
        if (stamp > due) this.late++;
      } catch {
        // not sealed: tried again shortly, stamped with the time it then seals
      }
      if (!this.stopped) this.schedule(sealed ? 0 : 200);
    }, Math.max(atLeastMs, dueAt - Date.now()));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

async function rpc(url: string, method: string, params: unknown[]): Promise<unknown> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}
