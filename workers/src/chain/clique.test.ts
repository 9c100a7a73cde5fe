import { describe, expect, it } from "vitest";
import { concat, getAddress, keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { goerliBlocks, goerliLondonBlock } from "../../../test/helpers/fixtures.ts";
import {
  genesisExtraData, headerHash, recoverSigner, sealHash, signersFromExtraData, verifyCliqueHeader, type RpcHeader,
} from "./clique.ts";

const GOERLI_GENESIS_SIGNER = "0xe0a2bd4258d2768837baa26a28fe71dc079f84c7";
// Public Goerli facts, checkable on any explorer (test/fixtures/clique/README.md).
const GOERLI_GENESIS_HASH = "0xbf7e331f7f7c1dd2e05159666b3bf8bc7a8a3a9eb1d518969eab529dd9b88c1a";
const GOERLI_BLOCK_7_HASH = "0xbabc8b03fd5941867c7f94e06a5ea479476bb208526e30661e566636711e4a16";

describe("Clique seal verification on real Goerli headers", () => {
  const blocks = goerliBlocks();

  it("hashes each header to its successor's parentHash (pre-London, 15 fields)", () => {
    expect(blocks.map((b) => Number(b.number))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(blocks[0]!.parentHash).toBe(GOERLI_GENESIS_HASH);
    expect(headerHash(blocks[6]!)).toBe(GOERLI_BLOCK_7_HASH);
    for (let i = 0; i + 1 < blocks.length; i++) {
      expect(headerHash(blocks[i]!)).toBe(blocks[i + 1]!.parentHash);
    }
  });

  it("recovers Goerli's genesis signer from every seal", async () => {
    for (const block of blocks) {
      expect(block.miner).toBe("0x0000000000000000000000000000000000000000");
      expect((await recoverSigner(block)).toLowerCase()).toBe(GOERLI_GENESIS_SIGNER);
    }
  });

  it("verifies the post-London header (16 fields, baseFeePerGas) against its hash", async () => {
    const london = goerliLondonBlock();
    expect(headerHash(london)).toBe(london.hash);
    const signer = await recoverSigner(london);
    await expect(verifyCliqueHeader(london, new Set([signer.toLowerCase()]))).resolves.toBe(signer);
    // Without the London field the hash no longer matches: the field list really matters.
    expect(headerHash({ ...london, baseFeePerGas: undefined })).not.toBe(london.hash);
  });

  it("refuses a block sealed by a signer that is not authorized", async () => {
    const block = { ...blocks[0]!, hash: headerHash(blocks[0]!) };
    await expect(verifyCliqueHeader(block, new Set([GOERLI_GENESIS_SIGNER]))).resolves.toBeDefined();
    await expect(verifyCliqueHeader(block, new Set(["0x000000000000000000000000000000000000dead"]))).rejects.toThrow(
      /sealed by 0xe0a2Bd4258D2768837BAa26A28fE71Dc079f84c7, not an authorized Clique signer/,
    );
  });

  it("refuses a forged header: changed contents under the same hash, or a re-signed one by an outsider", async () => {
    const original = { ...blocks[2]!, hash: headerHash(blocks[2]!) };
    const authorized = new Set([GOERLI_GENESIS_SIGNER]);
    // A lying RPC changes the state root but keeps the claimed hash: the hash check catches it.
    await expect(verifyCliqueHeader({ ...original, stateRoot: keccak256("0x01") }, authorized)).rejects.toThrow(/does not match its header/);
    // It recomputes the hash too: the seal no longer recovers to the signer.
    const tampered: RpcHeader = { ...original, stateRoot: keccak256("0x01") };
    tampered.hash = headerHash(tampered);
    await expect(verifyCliqueHeader(tampered, authorized)).rejects.toThrow(/not an authorized Clique signer/);
    // It seals with its own key: a valid signature, by the wrong signer.
    const outsider = privateKeyToAccount(keccak256(toHex("outsider")));
    const signature = await outsider.sign({ hash: sealHash(tampered) });
    const v = BigInt(`0x${signature.slice(130)}`) - 27n;
    const resealed: RpcHeader = { ...tampered, extraData: concat([tampered.extraData.slice(0, -130) as Hex, signature.slice(0, 130) as Hex, toHex(v, { size: 1 })]) };
    resealed.hash = headerHash(resealed);
    expect(await recoverSigner(resealed)).toBe(outsider.address);
    await expect(verifyCliqueHeader(resealed, authorized)).rejects.toThrow(/not an authorized/);
  });

  it("rejects extraData too short to hold a seal, and a seal with a bad recovery id", async () => {
    await expect(recoverSigner({ ...blocks[0]!, extraData: "0x1234" })).rejects.toThrow(/shorter than vanity \+ seal/);
    const bad = { ...blocks[0]!, extraData: `${blocks[0]!.extraData.slice(0, -2)}1b` as Hex };
    await expect(recoverSigner(bad)).rejects.toThrow(/recovery id is 27/);
  });
});

describe("Clique genesis extraData", () => {
  it("round-trips a signer list, sorted as geth expects, with the right length", () => {
    const signers = [keccak256("0x01"), keccak256("0x02"), keccak256("0x03")].map((k) => privateKeyToAccount(k).address);
    const extra = genesisExtraData(signers);
    expect((extra.length - 2) / 2).toBe(32 + 3 * 20 + 65);
    expect(signersFromExtraData(extra)).toEqual([...signers].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase())).map((s) => getAddress(s)));
    expect(() => genesisExtraData([])).toThrow(/at least one signer/);
    expect(() => genesisExtraData([signers[0]!, signers[0]!])).toThrow(/duplicates/);
    expect(() => signersFromExtraData(`0x${"00".repeat(32 + 19 + 65)}`)).toThrow(/whole signer list/);
  });
});
