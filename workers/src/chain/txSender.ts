import {
  BaseError, HttpRequestError, TimeoutError, encodeFunctionData, hexToBigInt,
  type Abi, type Address, type Hex, type PublicClient, type TransactionReceipt,
} from "viem";
import type { ChainClient } from "./client.ts";
import type { PrivateKeyAccount } from "viem/accounts";
import { BlosmError, ContractRevertError, RpcError } from "../lib/errors.ts";
import { describeError } from "../lib/describeError.ts";
import { silentLogger, type Logger } from "../lib/log.ts";
import { sleep } from "../lib/sleep.ts";
import { createExclusive } from "../lib/exclusive.ts";
import { reusable } from "../lib/reusable.ts";
import { decodeRevert } from "./decodeRevert.ts";
import { rpc } from "./rpc.ts";

export type TxSenderOptions = {
  client: ChainClient;
  account: PrivateKeyAccount;
  /** Receipts count only once this many blocks include them (1 = mined). */
  confirmations: number;
  /** Explicit gas limits by function name, where the node's estimate is unreliable. */
  gasLimits?: Readonly<Record<string, bigint>>;
  /**
   * Functions sent without asking the node first (they need a limit in gasLimits). For a transaction whose
   * preconditions its caller read a moment before and that is sent in bulk: the pre-call is a round trip to a
   * loaded node on the path that decides latency, while a refusal costs only block space and is decoded from
   * the receipt as before.
   */
  unchecked?: ReadonlySet<string>;
  /**
   * The latest block's base fee where the caller already has it (a worker's head feed): fees are then the base
   * fee doubled (room for six full blocks of rises) plus a priority fee asked at most every 30 s, instead of two
   * calls a second on the path of every send.
   */
  baseFee?: () => bigint | undefined;
  /** Margin on estimated gas (estimates can be off by state changes between estimate and inclusion). */
  gasMultiplier?: number;
  /** A transaction not mined after this long is resubmitted with the same nonce and higher fees. */
  stuckAfterMs?: number;
  maxResubmits?: number;
  /** Fee increase per resubmission, in percent (geth requires at least 10 for a replacement). */
  feeBumpPercent?: number;
  pollMs?: number;
  /**
   * New heads pushed by the node (HeadFeed): while fresh, a pending transaction's receipt is asked for once per new
   * block instead of every pollMs (receipts appear only with blocks; polled, they were the largest share of a
   * worker's calls at N = 3 in bench:scale). A quiet feed falls back to polling.
   */
  heads?: { fresh(): boolean; next(ms: number): Promise<void> };
  log?: Logger;
};

export type WriteRequest = {
  address: Address;
  abi: Abi;
  functionName: string;
  args?: readonly unknown[];
  gas?: bigint;
};

export type WriteResult = { hash: Hex; receipt: TransactionReceipt; resubmissions: number };

/**
 * Sends a worker's transactions with one key: local nonces (synced from the chain at start and after any nonce
 * error), a simulation or gas estimate first so reverts surface as typed errors before anything is signed,
 * explicit or padded gas, resubmission of stuck transactions with bumped fees, and receipts awaited to the
 * configured depth.
 */
export class TxSender {
  readonly address: Address;
  private nextNonce: number | undefined;
  /** Nonce-ordered sends: one broadcast (or nonce resync) at a time. */
  private readonly serialized = createExclusive();
  /** The chain's id does not change under a running sender: asked once (again only if that failed). */
  private chainIdAsked?: Promise<number>;
  private readonly log: Logger;

  constructor(private readonly opts: TxSenderOptions) {
    this.address = opts.account.address;
    this.log = (opts.log ?? silentLogger).child({ component: "tx-sender", from: this.address });
  }

  /** Reads the account's pending nonce from the chain (also done lazily on first send and after nonce errors). */
  async syncNonce(): Promise<number> {
    const nonce = await rpc("eth_getTransactionCount", () =>
      this.opts.client.getTransactionCount({ address: this.address, blockTag: "pending" }),
    );
    this.nextNonce = nonce;
    this.log.debug("nonce synced", { nonce });
    return nonce;
  }

  /** Simulates, signs, broadcasts and waits for `confirmations`. Throws ContractRevertError or RpcError. */
  async write(req: WriteRequest): Promise<WriteResult> {
    // One call before signing, outside the nonce lock: with a gas limit given, a simulation (unless the function is
    // unchecked); without one, the estimate, which reverts exactly as the simulation would (asking both cost the
    // node twice per transaction).
    const t0 = performance.now();
    const data = encode(req);
    const given = req.gas ?? this.opts.gasLimits?.[req.functionName];
    const gas = given ?? (await this.estimateGas(req, data));
    if (given !== undefined && !this.opts.unchecked?.has(req.functionName)) await this.simulate(req);
    // Fees and the chain id are asked outside the nonce lock too: inside it, each send costs one round trip only,
    // so a burst of sends from one key (offers for several migrations) does not queue behind each other's reads.
    const [fees, chainId] = await Promise.all([this.currentFees(), this.chain()]);
    const t1 = performance.now();
    const sent = await this.serialized(() => this.broadcast(req, { data, gas, fees, chainId, checkedMs: t1 - t0, lockedAt: performance.now() }));
    return this.awaitReceipt(req, sent);
  }

  private chain(): Promise<number> {
    return (this.chainIdAsked ??= rpc("eth_chainId", () => this.opts.client.getChainId()).catch((e: unknown) => {
      this.chainIdAsked = undefined;
      throw e;
    }));
  }

  private async simulate(req: WriteRequest) {
    try {
      await this.opts.client.simulateContract({
        account: this.opts.account, address: req.address, abi: req.abi, functionName: req.functionName, args: req.args,
      } as Parameters<PublicClient["simulateContract"]>[0]);
    } catch (e) {
      throw this.classify(req, e);
    }
  }

  private async broadcast(req: WriteRequest, p: Prepared, attempt = 0): Promise<Pending> {
    const lockWaitMs = performance.now() - p.lockedAt;
    if (this.nextNonce === undefined) await this.syncNonce();
    const nonce = this.nextNonce!;
    const tx = { chainId: p.chainId, nonce, to: req.address, data: p.data, gas: p.gas, maxFeePerGas: p.fees.maxFeePerGas, maxPriorityFeePerGas: p.fees.maxPriorityFeePerGas, type: "eip1559" as const };
    try {
      const hash = await this.sendRaw(tx);
      this.nextNonce = nonce + 1;
      this.log.info("transaction sent", {
        fn: req.functionName, hash, nonce, gas: p.gas, checkedMs: Math.round(p.checkedMs), lockWaitMs: Math.round(lockWaitMs),
        sendMs: Math.round(performance.now() - p.lockedAt - lockWaitMs),
      });
      return { tx, hashes: [hash], sentAt: performance.now() };
    } catch (e) {
      if (isNonceError(e) && attempt < 2) {
        this.log.warn("nonce rejected; resyncing from the chain", { fn: req.functionName, nonce, reason: describeError(e) });
        await this.syncNonce();
        return this.broadcast(req, { ...p, lockedAt: performance.now() }, attempt + 1);
      }
      // The nonce was not consumed; make the next send ask the chain rather than trust the local count.
      this.nextNonce = undefined;
      throw this.classify(req, e);
    }
  }

  /**
   * Fees for a new transaction. From the caller's base fee when it has one, with the node's suggested tip (on a
   * consortium chain it seldom changes: asked at most every 30 s, directly, since viem's helper reads the latest
   * block first); otherwise asked at most once a second (and once for all sends that want them at the same
   * moment): several sends in one block (a burst of offers) pay the same base fee. Resubmissions ask afresh.
   */
  private currentFees(): Promise<Fees> {
    const base = this.opts.baseFee?.();
    if (base !== undefined) return this.tip.get(undefined).then((tip) => ({ maxFeePerGas: 2n * base + tip, maxPriorityFeePerGas: tip }));
    return this.fees.get(undefined);
  }
  private readonly fees = reusable(1000, () =>
    rpc("eth_feeHistory", () => this.opts.client.estimateFeesPerGas()).then((f) => ({ maxFeePerGas: f.maxFeePerGas!, maxPriorityFeePerGas: f.maxPriorityFeePerGas! })));
  private readonly tip = reusable(30_000, () =>
    rpc("eth_maxPriorityFeePerGas", () => this.opts.client.request({ method: "eth_maxPriorityFeePerGas" })).then((hex) => hexToBigInt(hex)));

  private async estimateGas(req: WriteRequest, data: Hex): Promise<bigint> {
    try {
      // prepare: false: with a local account viem otherwise fills in the whole transaction first (nonce, chain id, a
      // block for the fees, the tip), four calls the estimate does not need; bench:scale found them per estimate.
      const estimate = await this.opts.client.estimateGas({ account: this.opts.account, to: req.address, data, prepare: false });
      return (estimate * BigInt(Math.round((this.opts.gasMultiplier ?? 1.25) * 100))) / 100n;
    } catch (e) {
      throw this.classify(req, e);
    }
  }

  private async sendRaw(tx: UnsignedTx): Promise<Hex> {
    const serialized = await this.opts.account.signTransaction(tx);
    return this.opts.client.sendRawTransaction({ serializedTransaction: serialized });
  }

  private async awaitReceipt(req: WriteRequest, pending: Pending): Promise<WriteResult> {
    const stuckAfter = this.opts.stuckAfterMs ?? 30_000;
    const poll = this.opts.pollMs ?? 500;
    let lastSubmit = Date.now();
    let resubmissions = 0;
    let failures = 0;
    for (;;) {
      try {
        for (const hash of pending.hashes) {
          const receipt = await this.opts.client.getTransactionReceipt({ hash }).catch((e) => {
            if (e instanceof BaseError && e.name === "TransactionReceiptNotFoundError") return undefined;
            throw e;
          });
          if (receipt) {
            this.log.debug("transaction mined", { fn: req.functionName, hash, block: receipt.blockNumber, minedMs: Math.round(performance.now() - pending.sentAt) });
            return await this.confirm(req, hash, receipt, resubmissions, pending.tx.gas);
          }
        }
        failures = 0;
        if (Date.now() - lastSubmit > stuckAfter) {
          if (resubmissions >= (this.opts.maxResubmits ?? 3)) {
            throw new RpcError(`${req.functionName}: transaction ${pending.hashes.at(-1)} not mined after ${resubmissions} resubmissions`);
          }
          const replaced = await this.opts.client.getTransactionCount({ address: this.address, blockTag: "latest" });
          if (replaced > pending.tx.nonce) {
            // The nonce was used, but by none of our hashes: another sender with this key got there first.
            await this.serialized(() => this.syncNonce());
            throw new BlosmError(`${req.functionName}: nonce ${pending.tx.nonce} was used by another transaction`, { retryable: true });
          }
          await this.resubmit(req, pending);
          resubmissions++;
          lastSubmit = Date.now();
        }
      } catch (e) {
        if (e instanceof BlosmError) throw e;
        // Transport trouble while waiting: the transaction is out there; keep waiting, but not forever.
        if (++failures > 20) throw new RpcError(`${req.functionName}: lost contact with the node while awaiting ${pending.hashes.at(-1)}`, { cause: e });
        this.log.warn("receipt poll failed; retrying", { fn: req.functionName, reason: describeError(e) });
      }
      await this.untilNextBlock(poll);
    }
  }

  /** Until the next pushed head (at most a few seconds), or pollMs when there is no fresh feed. */
  private untilNextBlock(poll: number): Promise<void> {
    return this.opts.heads?.fresh() ? this.opts.heads.next(Math.max(poll, 3000)) : sleep(poll);
  }

  private async resubmit(req: WriteRequest, pending: Pending) {
    const bump = BigInt(100 + (this.opts.feeBumpPercent ?? 25));
    const current = await rpc("eth_feeHistory", () => this.opts.client.estimateFeesPerGas());
    const maxPriorityFeePerGas = max((pending.tx.maxPriorityFeePerGas * bump) / 100n, current.maxPriorityFeePerGas!);
    const maxFeePerGas = max((pending.tx.maxFeePerGas * bump) / 100n, current.maxFeePerGas!, maxPriorityFeePerGas);
    pending.tx = { ...pending.tx, maxFeePerGas, maxPriorityFeePerGas };
    try {
      const hash = await this.sendRaw(pending.tx);
      pending.hashes.push(hash);
      this.log.warn("transaction stuck; resubmitted with higher fees", { fn: req.functionName, hash, nonce: pending.tx.nonce, maxFeePerGas });
    } catch (e) {
      // "nonce too low" here means one of the earlier hashes was just mined; the next poll finds it.
      if (!isNonceError(e)) throw this.classify(req, e);
    }
  }

  private async confirm(req: WriteRequest, hash: Hex, receipt: TransactionReceipt, resubmissions: number, gasLimit: bigint): Promise<WriteResult> {
    if (receipt.status === "reverted" && receipt.gasUsed >= gasLimit) {
      // Out of gas: the state it ran on cost more than the limit allowed (transactions ahead of it in its block).
      // Nothing happened on-chain; sent again, it is sized afresh.
      throw new BlosmError(`${req.functionName}: transaction ${hash} ran out of gas (all ${gasLimit} used)`, { retryable: true });
    }
    if (receipt.status === "reverted") {
      // Replay the call on the state after its block, which holds whatever made it fail (usually another
      // node's transaction racing it), to learn the custom error by name.
      const decoded = await this.opts.client
        .call({ account: this.opts.account, to: req.address, data: encode(req), blockNumber: receipt.blockNumber })
        .then(() => undefined, (e: unknown) => decodeRevert(e, req.abi));
      throw new ContractRevertError(req.functionName, decoded?.errorName ?? "unknown", decoded?.args ?? [], { txHash: hash });
    }
    // At depth 1 the receipt just found is the answer; deeper, it must still be there once the depth is reached.
    if (this.opts.confirmations <= 1) return { hash, receipt, resubmissions };
    const depth = BigInt(this.opts.confirmations);
    for (;;) {
      const head = await this.opts.client.getBlockNumber({ cacheTime: 0 });
      if (head - receipt.blockNumber + 1n >= depth) {
        // A reorg may have dropped the block meanwhile: the receipt must still be there, in the same block.
        const again = await this.opts.client.getTransactionReceipt({ hash }).catch(() => undefined);
        if (again?.blockHash === receipt.blockHash) return { hash, receipt: again, resubmissions };
        if (again) {
          receipt = again;
          continue;
        }
        throw new RpcError(`${req.functionName}: transaction ${hash} was dropped by a reorg`);
      }
      await this.untilNextBlock(this.opts.pollMs ?? 500);
    }
  }

  private classify(req: WriteRequest, e: unknown): Error {
    if (e instanceof BlosmError) return e;
    const decoded = decodeRevert(e, req.abi);
    if (decoded) return new ContractRevertError(req.functionName, decoded.errorName, decoded.args, { cause: e });
    if (e instanceof BaseError && (e.walk((x) => x instanceof HttpRequestError || x instanceof TimeoutError) !== null)) {
      return new RpcError(`${req.functionName}: the node is unreachable (${describeError(e)})`, { cause: e });
    }
    return new RpcError(`${req.functionName}: ${describeError(e)}`, { cause: e });
  }
}

type UnsignedTx = {
  chainId: number; nonce: number; to: Address; data: Hex; gas: bigint;
  maxFeePerGas: bigint; maxPriorityFeePerGas: bigint; type: "eip1559";
};
type Pending = { tx: UnsignedTx; hashes: Hex[]; sentAt: number };
type Fees = { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };
/** What a send needs that was asked before the nonce lock; `lockedAt` is when it began waiting for the lock. */
type Prepared = {
  data: Hex; gas: bigint; fees: Fees; chainId: number; checkedMs: number; lockedAt: number;
};

const encode = (req: WriteRequest): Hex =>
  encodeFunctionData({ abi: req.abi, functionName: req.functionName, args: req.args } as Parameters<typeof encodeFunctionData>[0]);

const max = (...xs: bigint[]) => xs.reduce((a, b) => (a > b ? a : b));


function isNonceError(e: unknown): boolean {
  const text = e instanceof BaseError ? `${e.shortMessage} ${e.details ?? ""} ${e.message}` : String(e);
  return /nonce too low|nonce too high|already known|replacement transaction underpriced|invalid nonce|nonce has already been used/i.test(text);
}
