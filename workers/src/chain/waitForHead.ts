import type { ChainClient } from "./client.ts";
import type { HeadFeed } from "./headFeed.ts";

/**
 * Waits until the chain's head is at `block` or past it, at most `ms`: from the pushed heads while the feed is
 * fresh, else asking the node every `pollMs`. False when it did not get there in time or `alive` says stop.
 */
export async function waitForHead(
  o: { heads?: HeadFeed; client: Pick<ChainClient, "getBlockNumber">; pollMs: number; alive: () => boolean }, block: bigint, ms: number,
): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    const head = o.heads?.head() ?? (await o.client.getBlockNumber({ cacheTime: 0 }));
    if (head >= block) return true;
    if (Date.now() >= until || !o.alive()) return false;
    await (o.heads?.fresh() ? o.heads.next(1000) : new Promise((r) => setTimeout(r, o.pollMs)));
  }
}
