import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, createWalletClient, custom, http, zeroAddress, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { devAccount, registryAbi, startDevRegistry, type DevRegistry } from "../../../test/helpers/devRegistry.ts";
import { DRIVER, Reason, requirements, serviceId } from "../../../test/helpers/registry.ts";
import { BlosmError, ContractRevertError, RpcError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import { freePort } from "../lib/freePort.ts";
import { TxSender } from "./txSender.ts";

describe("TxSender against a real chain node", () => {
  let dev: DevRegistry;
  const logs: string[] = [];
  const log = createLogger({ level: "debug", sink: (l) => logs.push(l) });
  beforeAll(async () => {
    dev = await startDevRegistry({ blockTimeMs: 200 });
  });
  afterAll(async () => dev?.stop());

  // Each sender needs a private key account; Hardhat's HD test accounts expose theirs.
  const keyAccount = (i: number) => privateKeyToAccount(`0x${Buffer.from(devAccount(i).getHdKey().privateKey!).toString("hex")}` as Hex);
  const sender = (i: number, extra: Partial<ConstructorParameters<typeof TxSender>[0]> = {}) =>
    new TxSender({ client: dev.client, account: keyAccount(i), confirmations: 3, pollMs: 50, log, ...extra });
  let n = 0;
  const request = async (s: TxSender, preferred: Address = zeroAddress) => {
    const block = await dev.client.getBlock();
    return s.write({
      address: dev.address, abi: registryAbi, functionName: "requestMigration",
      args: [{
        serviceId: serviceId(++n), appType: DRIVER, requirements: requirements(), reason: Reason.ClientMobility,
        preferredDestination: preferred, deadline: block.timestamp + 3600n, stateful: false, hasClientPosition: false,
        clientPosition: { latE6: 0, lonE6: 0 }, baseImage: "",
      }],
    });
  };

  it("waits for the configured confirmations before returning the receipt", async () => {
    const { receipt } = await request(sender(1));
    expect(receipt.status).toBe("success");
    const head = await dev.client.getBlockNumber({ cacheTime: 0 });
    expect(head - receipt.blockNumber + 1n).toBeGreaterThanOrEqual(3n);
  });

  it.each([
    ["its gas estimated", {}],
    ["a fixed gas limit (simulated instead)", { gasLimits: { offer: 160_000n } }],
  ])("surfaces a revert as a typed error by name with its arguments, and sends nothing: %s", async (_, extra) => {
    const s = sender(2, extra);
    const before = await s.syncNonce();
    const error = await s.write({ address: dev.address, abi: registryAbi, functionName: "offer", args: [999n, 1] }).catch((e) => e);
    expect(error).toBeInstanceOf(ContractRevertError);
    expect(error).toMatchObject({ errorName: "MigrationRegistryUnknownMigration", args: [999n], retryable: false });
    expect(error.shortMessage).toBe("offer reverted: MigrationRegistryUnknownMigration(999)");
    expect(await dev.client.getTransactionCount({ address: s.address, blockTag: "pending" })).toBe(before);
  });

  it("sends an unchecked function without asking the node first; a refusal is decoded from its receipt", async () => {
    const s = sender(2, { gasLimits: { offer: 160_000n }, unchecked: new Set(["offer"]), confirmations: 1 });
    const before = await s.syncNonce();
    const error = await s.write({ address: dev.address, abi: registryAbi, functionName: "offer", args: [999n, 1] }).catch((e) => e);
    expect(error).toBeInstanceOf(ContractRevertError);
    expect(error).toMatchObject({ errorName: "MigrationRegistryUnknownMigration", args: [999n] });
    expect(error.txHash).toMatch(/^0x[0-9a-f]{64}$/); // it was mined: the refusal cost a nonce and block space
    expect(await dev.client.getTransactionCount({ address: s.address, blockTag: "pending" })).toBe(before + 1);
  });

  it("caps fees from the base fee it is given (a head feed's) and the node's tip, without asking for fee history", async () => {
    const latest = await dev.client.getBlock();
    const tip = await dev.client.estimateMaxPriorityFeePerGas();
    const { hash } = await request(sender(1, { baseFee: () => latest.baseFeePerGas!, confirmations: 1 }));
    const tx = await dev.client.getTransaction({ hash });
    expect(tx.maxFeePerGas).toBe(2n * latest.baseFeePerGas! + tip);
    expect(tx.maxPriorityFeePerGas).toBe(tip);
  });

  it("asks the node only what a send needs: no header, and the nonce and chain id once, also for an estimated send", async () => {
    const methods: string[] = [];
    const counting = createPublicClient({
      transport: custom({ request: ({ method, params }) => (methods.push(method), dev.client.request({ method, params } as never)) }),
    });
    const latest = await dev.client.getBlock();
    await request(sender(3, { client: counting, baseFee: () => latest.baseFeePerGas!, confirmations: 1 }));
    const count = (m: string) => methods.filter((x) => x === m).length;
    expect(count("eth_getBlockByNumber")).toBe(0);
    expect([count("eth_estimateGas"), count("eth_getTransactionCount"), count("eth_chainId"), count("eth_maxPriorityFeePerGas")]).toEqual([1, 1, 1, 1]);
    expect(count("eth_sendRawTransaction")).toBe(1);
  });

  it("with a fresh head feed, asks for a pending transaction's receipt once per new block, not every pollMs", async () => {
    const methods: string[] = [];
    const counting = createPublicClient({
      transport: custom({ request: ({ method, params }) => (methods.push(method), dev.client.request({ method, params } as never)) }),
    });
    // A feed that announces a block every 400 ms (the chain mines every 200 ms): polled every 10 ms instead, the
    // receipt would be asked for dozens of times before it is there.
    let waits = 0;
    const heads = { fresh: () => true, next: (ms: number) => (waits++, new Promise<void>((r) => setTimeout(r, Math.min(ms, 400)))) };
    await request(sender(4, { client: counting, heads, pollMs: 10, confirmations: 1 }));
    const receipts = methods.filter((m) => m === "eth_getTransactionReceipt").length;
    expect(receipts).toBeGreaterThanOrEqual(1);
    expect(receipts).toBe(waits + 1); // one ask per announced block, and the first right after sending
  });

  it("sends a function with the gas limit given for it instead of an estimate", async () => {
    const { hash } = await request(sender(1, { gasLimits: { requestMigration: 900_000n } }));
    expect((await dev.client.getTransaction({ hash })).gas).toBe(900_000n);
    const { hash: estimated } = await request(sender(1));
    expect((await dev.client.getTransaction({ hash: estimated })).gas).toBeLessThan(900_000n);
  });

  it("reports a transaction that ran out of gas as retryable, not as an unknown revert", async () => {
    const s = sender(1, { gasLimits: { requestMigration: 60_000n } }); // above the intrinsic cost, below the run's
    const error = await request(s).catch((e) => e);
    expect(error).toBeInstanceOf(BlosmError);
    expect(error).not.toBeInstanceOf(ContractRevertError);
    expect(error.message).toMatch(/^requestMigration: transaction 0x[0-9a-f]{64} ran out of gas \(all 60000 used\)$/);
    expect(error.retryable).toBe(true);
  });

  it("recovers its nonce after another process used the same key", async () => {
    const s = sender(3);
    await request(s); // local nonce is now in use
    const outOfBand = createWalletClient({ account: keyAccount(3), transport: http(dev.chain.url) });
    const hash = await outOfBand.sendTransaction({ to: keyAccount(3).address, value: 0n, chain: null });
    await dev.client.waitForTransactionReceipt({ hash });
    logs.length = 0;
    const { receipt } = await request(s);
    expect(receipt.status).toBe("success");
    expect(logs.some((l) => l.includes("nonce rejected; resyncing"))).toBe(true);
  });

  it("resubmits a stuck transaction with higher fees under the same nonce", async () => {
    const s = sender(4, { stuckAfterMs: 400, feeBumpPercent: 25 });
    await s.syncNonce();
    await dev.rpc("evm_setIntervalMining", [0]); // the chain stops sealing: the transaction sits in the pool
    try {
      const pending = request(s);
      await new Promise((r) => setTimeout(r, 1500));
      await dev.rpc("evm_setIntervalMining", [200]);
      const result = await pending;
      expect(result.resubmissions).toBeGreaterThanOrEqual(1);
      const [first] = logs.filter((l) => l.includes('"transaction sent"') && l.includes(s.address)).map((l) => JSON.parse(l));
      const mined = await dev.client.getTransaction({ hash: result.hash });
      expect(mined.nonce).toBe(first.nonce);
      expect(result.hash).not.toBe(first.hash);
      expect(mined.maxFeePerGas).toBeGreaterThan(0n);
    } finally {
      await dev.rpc("evm_setIntervalMining", [200]);
    }
  });

  it("decodes a revert that happened on-chain, after a simulation that passed (a race)", async () => {
    const source = sender(1);
    const { receipt } = await request(source, devAccount(2).address);
    const [log0] = await dev.client.getContractEvents({ address: dev.address, abi: registryAbi, eventName: "MigrationRequested", fromBlock: receipt.blockNumber, toBlock: receipt.blockNumber });
    const id = (log0 as unknown as { args: { id: bigint } }).args.id;
    // Source cancels while the preferred destination offers: whichever lands second fails on-chain.
    await dev.rpc("evm_setIntervalMining", [0]);
    let results: PromiseSettledResult<unknown>[];
    try {
      // Explicit gas: an estimate made after the other is pending would already fail, before anything is sent.
      const cancel = source.write({ address: dev.address, abi: registryAbi, functionName: "cancel", args: [id], gas: 300_000n });
      const offer = sender(2).write({ address: dev.address, abi: registryAbi, functionName: "offer", args: [id, 5], gas: 300_000n });
      await new Promise((r) => setTimeout(r, 500));
      await dev.rpc("evm_setIntervalMining", [200]);
      results = await Promise.allSettled([cancel, offer]);
    } finally {
      await dev.rpc("evm_setIntervalMining", [200]);
    }
    const failed = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toBeInstanceOf(ContractRevertError);
    expect(failed[0].errorName).toBe("MigrationRegistryUnexpectedState");
    expect(failed[0].txHash).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it("reports an unreachable node as a retryable RPC error", async () => {
    const port = await freePort();
    const dead = createPublicClient({ transport: http(`http://127.0.0.1:${port}`, { retryCount: 0 }) });
    const s = new TxSender({ client: dead, account: keyAccount(5), confirmations: 1 });
    const error = await s.write({ address: dev.address, abi: registryAbi, functionName: "cancel", args: [1n] }).catch((e) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error.retryable).toBe(true);
  });

  it("never writes a private key into its logs", () => {
    const keys = [1, 2, 3, 4].map((i) => Buffer.from(devAccount(i).getHdKey().privateKey!).toString("hex"));
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) for (const key of keys) expect(line).not.toContain(key);
  });
});
