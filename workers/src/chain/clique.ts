import { getAddress, keccak256, recoverAddress, size, slice, toRlp, type Address, type Hex } from "viem";
import { ChainIntegrityError } from "../lib/errors.ts";

/** A block header as eth_getBlockByNumber returns it (hex strings). Post-London fields are optional. */
export type RpcHeader = {
  hash?: Hex;
  parentHash: Hex;
  sha3Uncles: Hex;
  miner: Hex;
  stateRoot: Hex;
  transactionsRoot: Hex;
  receiptsRoot: Hex;
  logsBloom: Hex;
  difficulty: Hex;
  number: Hex;
  gasLimit: Hex;
  gasUsed: Hex;
  timestamp: Hex;
  extraData: Hex;
  mixHash: Hex;
  nonce: Hex;
  baseFeePerGas?: Hex | null;
  withdrawalsRoot?: Hex | null;
  blobGasUsed?: Hex | null;
  excessBlobGas?: Hex | null;
  parentBeaconBlockRoot?: Hex | null;
};

export const EXTRA_VANITY = 32;
export const EXTRA_SEAL = 65;

/** Quantities are RLP-encoded as minimal big-endian bytes (zero is the empty string). */
function quantity(q: Hex): Hex {
  const n = BigInt(q);
  if (n === 0n) return "0x";
  const hex = n.toString(16);
  return `0x${hex.length % 2 ? "0" : ""}${hex}`;
}

function headerFields(h: RpcHeader, extraData: Hex): Hex[] {
  const fields: Hex[] = [
    h.parentHash, h.sha3Uncles, h.miner, h.stateRoot, h.transactionsRoot, h.receiptsRoot, h.logsBloom,
    quantity(h.difficulty), quantity(h.number), quantity(h.gasLimit), quantity(h.gasUsed), quantity(h.timestamp),
    extraData, h.mixHash, h.nonce,
  ];
  // Fork fields are appended in order; each one present implies the ones before it.
  const optional: Array<[Hex | null | undefined, boolean]> = [
    [h.baseFeePerGas, true], [h.withdrawalsRoot, false], [h.blobGasUsed, true], [h.excessBlobGas, true],
    [h.parentBeaconBlockRoot, false],
  ];
  for (const [value, isQuantity] of optional) {
    if (value === undefined || value === null) break;
    fields.push(isQuantity ? quantity(value) : value);
  }
  return fields;
}

/** keccak256 of the RLP-encoded header: the block hash. */
export function headerHash(h: RpcHeader): Hex {
  return keccak256(toRlp(headerFields(h, h.extraData)));
}

/** The hash a Clique signer signs: the header with the 65-byte seal cut from extraData (EIP-225 SealHash). */
export function sealHash(h: RpcHeader): Hex {
  if (size(h.extraData) < EXTRA_VANITY + EXTRA_SEAL) {
    throw new ChainIntegrityError(`block ${BigInt(h.number)}: extraData is ${size(h.extraData)} bytes, shorter than vanity + seal (97)`);
  }
  return keccak256(toRlp(headerFields(h, slice(h.extraData, 0, size(h.extraData) - EXTRA_SEAL))));
}

/** Recovers the Clique signer of a block from the seal at the end of extraData (`miner` is zero on Clique). */
export async function recoverSigner(h: RpcHeader): Promise<Address> {
  const hash = sealHash(h);
  const seal = slice(h.extraData, size(h.extraData) - EXTRA_SEAL);
  const v = Number(BigInt(slice(seal, 64, 65)));
  if (v !== 0 && v !== 1) throw new ChainIntegrityError(`block ${BigInt(h.number)}: seal recovery id is ${v}, expected 0 or 1`);
  try {
    return await recoverAddress({ hash, signature: { r: slice(seal, 0, 32), s: slice(seal, 32, 64), yParity: v } });
  } catch (cause) {
    throw new ChainIntegrityError(`block ${BigInt(h.number)}: the seal is not a valid signature`, { cause });
  }
}

/** Signers listed in a genesis or checkpoint block's extraData: vanity (32) + N × address (20) + seal (65). */
export function signersFromExtraData(extraData: Hex): Address[] {
  const length = size(extraData) - EXTRA_VANITY - EXTRA_SEAL;
  if (length < 0 || length % 20 !== 0) {
    throw new ChainIntegrityError(`checkpoint extraData of ${size(extraData)} bytes does not hold a whole signer list`);
  }
  const signers: Address[] = [];
  for (let i = 0; i < length / 20; i++) {
    signers.push(getAddress(slice(extraData, EXTRA_VANITY + i * 20, EXTRA_VANITY + (i + 1) * 20)));
  }
  return signers;
}

/** Genesis extraData for a Clique network: 32-byte vanity + signer addresses (ascending, as geth expects) + 65 zero bytes. */
export function genesisExtraData(signers: readonly Address[], vanity: Hex = `0x${"00".repeat(32)}`): Hex {
  if (size(vanity) !== EXTRA_VANITY) throw new ChainIntegrityError(`vanity must be 32 bytes, got ${size(vanity)}`);
  if (signers.length === 0) throw new ChainIntegrityError("a Clique network needs at least one signer");
  const sorted = [...signers].map((s) => s.toLowerCase()).sort();
  if (new Set(sorted).size !== sorted.length) throw new ChainIntegrityError("signer list has duplicates");
  return `0x${vanity.slice(2)}${sorted.map((s) => s.slice(2)).join("")}${"00".repeat(EXTRA_SEAL)}`;
}

/**
 * Checks a header against what an honest Clique node would serve: its hash is the hash of its contents,
 * and it is sealed by an authorized signer. Returns the signer.
 */
export async function verifyCliqueHeader(h: RpcHeader, authorized: ReadonlySet<string>): Promise<Address> {
  if (h.hash !== undefined && headerHash(h) !== h.hash.toLowerCase()) {
    throw new ChainIntegrityError(`block ${BigInt(h.number)}: hash ${h.hash} does not match its header (${headerHash(h)})`);
  }
  const signer = await recoverSigner(h);
  if (!authorized.has(signer.toLowerCase())) {
    throw new ChainIntegrityError(`block ${BigInt(h.number)} (${h.hash ?? "?"}) is sealed by ${signer}, not an authorized Clique signer`);
  }
  return signer;
}
