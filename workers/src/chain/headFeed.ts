import type { RpcHeader } from "./clique.ts";
import { describeError } from "../lib/describeError.ts";
import { silentLogger, type Logger } from "../lib/log.ts";
import { backoff } from "../lib/sleep.ts";

export type HeadFeedOptions = {
  /** The chain node's WebSocket endpoint (ws:// or wss://), e.g. geth's --ws port or the Hardhat node's own port. */
  url: string;
  /** A feed that has pushed nothing for this long is stale: its reader polls instead until heads come again. */
  staleAfterMs?: number;
  log?: Logger;
};

/**
 * How many recent headers the feed keeps, by number: a reader behind by up to this many blocks still finds them
 * instead of fetching each (32 before; a header is about 1 KB, 512 cost half a megabyte). Not what made
 * bench:scale's 1 000-move run at N = 100 fetch headers (0.68 calls per worker per block from the event source
 * both before and after): there the feed itself went silent, because the Hardhat node serves a subscription as a
 * filter with a 5-minute deadline and drops it without closing the socket (NomicFoundation/hardhat#2053); see behind().
 */
export const HEADERS_KEPT = 512;

/**
 * New block headers pushed by the chain node (`eth_subscribe("newHeads")`) instead of asked for: a reader learns
 * of a block as soon as it is sealed, and neither polls `eth_blockNumber` nor fetches the new block's header
 * (at N = 100 those two were three quarters of every worker's calls). The socket reconnects and subscribes again
 * with backoff; while it is down or quiet the feed reports itself stale and readers fall back to polling.
 * Headers are hints about the head, not trusted facts: readers still check them against the logs they read
 * (block hash) and, on Clique chains, verify the seal exactly as for a fetched header.
 */
export class HeadFeed {
  private socket: WebSocket | undefined;
  private readonly headers = new Map<bigint, RpcHeader>();
  private latestNumber: bigint | undefined;
  private lastAt = 0;
  private waiters = new Set<() => void>();
  private closed = false;
  private failures = 0;
  private resubscribedAt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly o: HeadFeedOptions) {
    if (!/^wss?:\/\//.test(o.url)) throw new TypeError(`head feed: ${o.url} is not a ws:// or wss:// URL`);
    this.log = (o.log ?? silentLogger).child({ component: "head-feed" });
  }

  /**
   * Connects and subscribes; resolves once subscribed, or rejects with why the first attempt failed (it keeps
   * trying in the background: a reader may go on polling and use the feed once it is up).
   */
  start(): Promise<void> {
    return new Promise((resolve, reject) => this.connect(resolve, reject));
  }

  private get staleAfterMs(): number {
    return this.o.staleAfterMs ?? 5000;
  }

  /** Whether a head came recently enough to be trusted as the head (else: poll). */
  fresh(now = Date.now()): boolean {
    return this.latestNumber !== undefined && now - this.lastAt < this.staleAfterMs;
  }

  /** The newest head's number, if the feed is fresh. */
  head(): bigint | undefined {
    return this.fresh() ? this.latestNumber : undefined;
  }

  /** The newest head's base fee (London), if the feed is fresh: a transaction's fee cap without asking the node. */
  baseFee(): bigint | undefined {
    const h = this.latestHeader();
    return h?.baseFeePerGas ? BigInt(h.baseFeePerGas) : undefined;
  }

  /** The newest head's timestamp (seconds), if the feed is fresh: the chain's clock without asking the node. */
  timestamp(): bigint | undefined {
    const h = this.latestHeader();
    return h?.timestamp ? BigInt(h.timestamp) : undefined;
  }

  /** The newest head's header while the feed is fresh (a stale one is not the chain's present). */
  private latestHeader(): RpcHeader | undefined {
    return this.latestNumber === undefined || !this.fresh() ? undefined : this.headers.get(this.latestNumber);
  }

  /** A pushed header by number, if still kept (the latest push for that number: a reorg overwrites it). */
  header(n: bigint): RpcHeader | undefined {
    return this.headers.get(n);
  }

  /** Drops a header a reader found inconsistent with the chain (it is fetched instead next time). */
  forget(n: bigint): void {
    this.headers.delete(n);
  }

  /** Resolves at the next pushed head, after `ms`, or on abort, whichever comes first. */
  next(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * A reader that polled the node while the feed was quiet tells it the head it found. A feed behind that head,
   * quiet for staleAfterMs, and still connected has a subscription the node no longer serves (the Hardhat node
   * drops each one 5 minutes after it was made without closing the socket, and in bench:scale the readers then
   * polled and fetched every header for the rest of the run): the socket is dropped and the feed subscribes again
   * at once. True if it did so.
   */
  behind(nodeHead: bigint, now = Date.now()): boolean {
    if (this.closed || !this.socket || this.latestNumber === undefined || nodeHead <= this.latestNumber) return false;
    const quietMs = now - this.lastAt;
    if (quietMs < this.staleAfterMs || now - this.resubscribedAt < this.staleAfterMs) return false;
    this.resubscribedAt = now;
    this.log.warn("head feed silent while the node's head moved on; subscribing again", { quietMs, lastPushed: String(this.latestNumber), nodeHead: String(nodeHead) });
    this.failures = 0; // not a failure of the node's: the first retry goes at once
    this.socket.close();
    return true;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.socket?.close();
    for (const w of [...this.waiters]) w();
  }

  private connect(onSubscribed?: () => void, onFirstFailure?: (e: Error) => void) {
    if (this.closed) return;
    const socket = new WebSocket(this.o.url);
    this.socket = socket;
    let subscription: string | undefined;
    let refused: string | undefined;
    socket.onopen = () => socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_subscribe", params: ["newHeads"] }));
    socket.onmessage = (event) => {
      let msg: { id?: number; result?: unknown; error?: { message?: string }; method?: string; params?: { subscription?: string; result?: RpcHeader } };
      try {
        msg = JSON.parse(String(event.data));
      } catch {
        return this.log.warn("unparsable message from the node's WebSocket; ignored");
      }
      if (msg.id === 1) {
        if (msg.error || typeof msg.result !== "string") {
          refused = `eth_subscribe(newHeads) refused by ${this.o.url}: ${msg.error?.message ?? "no subscription id"}`;
          return socket.close();
        }
        subscription = msg.result;
        this.failures = 0;
        onSubscribed?.();
        onFirstFailure = onSubscribed = undefined;
        return;
      }
      const pushed = msg.method === "eth_subscription" && msg.params?.subscription === subscription ? msg.params?.result : undefined;
      if (pushed) this.push(pushed);
    };
    socket.onerror = () => {}; // onclose follows with what happened
    socket.onclose = (event) => {
      if (this.socket !== socket || this.closed) return;
      this.socket = undefined;
      const why = refused ?? `cannot subscribe to new heads at ${this.o.url} (WebSocket closed, code ${event.code})`;
      onFirstFailure?.(new Error(why));
      onFirstFailure = onSubscribed = undefined;
      const delay = backoff(++this.failures, 200, 10_000);
      // The first failure in a row is worth a warning; the retries behind it are not (readers poll meanwhile).
      this.log[this.failures === 1 ? "warn" : "debug"]("head feed down; reconnecting (readers poll meanwhile)", { reason: why, inMs: delay });
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    };
  }

  private push(h: RpcHeader) {
    let n: bigint;
    try {
      n = BigInt(h.number);
    } catch (e) {
      return this.log.warn("pushed header without a number; ignored", { error: describeError(e) });
    }
    if (typeof h.hash !== "string" || typeof h.parentHash !== "string") return this.log.warn("pushed header without hashes; ignored", { number: String(n) });
    // A push after a quiet spell: how long, and whether the node skipped heads or only sent them late (readers
    // polled and fetched headers meanwhile).
    const quietMs = Date.now() - this.lastAt;
    if (this.latestNumber !== undefined && quietMs >= this.staleAfterMs) {
      this.log.info("head feed was quiet; pushes resumed (readers polled meanwhile)", { quietMs, lastPushed: String(this.latestNumber), pushed: String(n) });
    }
    this.headers.set(n, h);
    // The last push is the head, also after a reorg to a shorter chain, whose dropped headers go with it.
    for (const k of this.headers.keys()) if (k <= n - BigInt(HEADERS_KEPT) || k > n) this.headers.delete(k);
    this.latestNumber = n;
    this.lastAt = Date.now();
    for (const w of [...this.waiters]) w();
  }
}
