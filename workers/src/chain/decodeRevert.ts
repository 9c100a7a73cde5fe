import { BaseError, ContractFunctionRevertedError } from "viem";

export type DecodedRevert = {
  /** Custom error name, e.g. `MigrationRegistryUnexpectedState`, or `Error`/`Panic` for string/panic reverts. */
  errorName: string;
  args: readonly unknown[];
};

/**
 * Walks a viem error to the contract revert it wraps and returns the custom error by name with its arguments,
 * or undefined when the error is not a decodable revert (a network failure, a timeout, an unknown selector).
 */
export function decodeRevert(error: unknown): DecodedRevert | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
  if (!(reverted instanceof ContractFunctionRevertedError) || reverted.data === undefined) return undefined;
  return { errorName: reverted.data.errorName, args: reverted.data.args ?? [] };
}
