import { BaseError, ContractFunctionRevertedError, decodeErrorResult, type Abi, type Hex } from "viem";

export type DecodedRevert = {
  /** Custom error name, e.g. `MigrationRegistryUnexpectedState`, or `Error`/`Panic` for string/panic reverts. */
  errorName: string;
  args: readonly unknown[];
};

/**
 * Walks a viem error to the contract revert it wraps and returns the custom error by name with its arguments,
 * or undefined when the error is not a decodable revert (a network failure, a timeout, an unknown selector).
 * `abi` decodes raw revert data that viem could not attribute to a function (deployments, raw RPC errors).
 */
export function decodeRevert(error: unknown, abi?: Abi): DecodedRevert | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError && reverted.data !== undefined) {
    return { errorName: reverted.data.errorName, args: reverted.data.args ?? [] };
  }
  if (abi === undefined) return undefined;
  const withData = error.walk((e) => typeof (e as { data?: unknown }).data === "string");
  const data = (withData as { data?: unknown } | null)?.data;
  if (typeof data !== "string" || !/^0x[0-9a-fA-F]{8}/.test(data)) return undefined;
  try {
    const decoded = decodeErrorResult({ abi, data: data as Hex });
    return { errorName: decoded.errorName, args: decoded.args ?? [] };
  } catch {
    return undefined;
  }
}
