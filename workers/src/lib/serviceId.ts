import { encodeAbiParameters, keccak256, stringToHex, type Address, type Hex } from "viem";

/**
 * The on-chain service id of a client's app: keccak256(abi.encode(owner, appType)), the owner being the client's
 * address (its key pair) and the app type a short name as bytes32. Nothing is cut off, so two (owner, type) pairs
 * never share an id, and the id binds its owner: anyone holding the owner's address can check that a service is
 * theirs, and only a request signed by that key moves it (gateway/clientVerifier.ts).
 */
export function serviceIdOf(owner: Address, appType: string): Hex {
  if (appType.length === 0 || appType.length > 31) throw new Error(`app type "${appType.slice(0, 40)}" must be 1-31 characters`);
  return keccak256(encodeAbiParameters([{ type: "address" }, { type: "bytes32" }], [owner, stringToHex(appType, { size: 32 })]));
}

/**
 * The service id of a container a cluster runs for itself (no client: started by its operator without a
 * blosm.service-id label): keccak256(abi.encode(operator, containerName)). A different encoding from
 * serviceIdOf (a dynamic string, not bytes32), so the two kinds of id never collide.
 */
export function clusterServiceIdOf(operator: Address, containerName: string): Hex {
  return keccak256(encodeAbiParameters([{ type: "address" }, { type: "string" }], [operator, containerName]));
}
