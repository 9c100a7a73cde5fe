import type { Chain, PublicClient, Transport } from "viem";

/**
 * A viem public client over any transport, with or without a chain definition: blosm reads and writes by address
 * and asks the node for its chain id, so nothing here needs viem's chain objects.
 */
export type ChainClient = PublicClient<Transport, Chain | undefined>;
