import type { PublicClient } from "viem";

/**
 * Seals one block per period with the timestamp a Clique signer gives it (parent + period), so that an offer
 * window of W seconds is W blocks, as on the consortium's chain. The dev node's own interval mining stamps blocks
 * with its wall clock, and on a 2-core machine shared with N workers and four Docker Engines its blocks come
 * late: timestamps then jump to catch up and a 5 s window can close two blocks after the request. A real signer
 * runs on its own machine; this stands in for one that is never late.
 */
export class Sealer {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  sealed = 0;

  /** What each block adds to its parent's timestamp: the period in whole seconds, as Clique's `period`. */
  private readonly step: bigint;

  private constructor(private readonly url: string, private readonly periodMs: number, private timestamp: bigint) {
    this.step = BigInt(Math.max(1, Math.round(periodMs / 1000)));
  }

  static async start(url: string, client: PublicClient, periodMs: number): Promise<Sealer> {
    await rpc(url, "evm_setIntervalMining", [0]);
    const head = await client.getBlock();
    const s = new Sealer(url, periodMs, head.timestamp);
    s.schedule(Date.now() + periodMs);
    return s;
  }

  private schedule(at: number) {
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      this.timestamp += this.step;
      try {
        await rpc(this.url, "evm_mine", [Number(this.timestamp)]);
        this.sealed++;
      } catch {
        this.timestamp -= this.step; // not sealed: the next tick tries the same time
      }
      // On the period's grid, not "period after the last seal": a slow seal does not push every later one back.
      this.schedule(Math.max(Date.now() + 50, at + this.periodMs));
    }, Math.max(0, at - Date.now()));
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
