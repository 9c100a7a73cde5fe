import type { Address, ContractFunctionArgs, ContractFunctionName } from "viem";
import { migrationRegistryAbi } from "./abi/migrationRegistry.ts";
import type { RegistryAbi } from "./registryView.ts";
import type { TxSender, WriteResult } from "./txSender.ts";

export type RegistryWriteName = ContractFunctionName<RegistryAbi, "nonpayable">;
export type RegistryWriteArgs<F extends RegistryWriteName> = ContractFunctionArgs<RegistryAbi, "nonpayable", F>;

/** The registry's transactions, typed from its ABI: a wrong function name or argument fails to compile. */
export class RegistryWriter {
  constructor(private readonly sender: TxSender, readonly address: Address) {}

  write<F extends RegistryWriteName>(functionName: F, args: RegistryWriteArgs<F>): Promise<WriteResult> {
    return this.sender.write({ address: this.address, abi: migrationRegistryAbi, functionName, args: args as readonly unknown[] });
  }
}
