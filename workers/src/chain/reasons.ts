import { Reason } from "./abi/migrationRegistry.ts";

/**
 * The reasons as the CLI and API spell them, onto the contract's MigrationReason (from the generated ABI). Its own
 * file, free of viem, so the CLI's command table can name them without loading the chain client.
 */
export const REASONS = {
  "client-mobility": Reason.ClientMobility, "insufficient-resources": Reason.InsufficientResources, rebalance: Reason.Rebalance, manual: Reason.Manual,
} as const;
export type ReasonName = keyof typeof REASONS;
