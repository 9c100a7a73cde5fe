import { stringToHex, type Hex } from "viem";

/**
 * The on-chain service id of `scope/name`: a client's app (`car-1/driver-profiling`) or an unlabelled container
 * of a cluster (`cluster-a/web`). One derivation for the gateway and the worker, so both name a service alike.
 * It is the text itself cut to 32 bytes: readable on an explorer, but two long names can share an id.
 */
export const serviceIdOf = (scope: string, name: string): Hex => stringToHex(`${scope}/${name}`.slice(0, 32), { size: 32 });
