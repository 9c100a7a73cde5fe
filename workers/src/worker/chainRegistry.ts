import type { Address, Hex } from "viem";
import type { RegistryView } from "../chain/registryView.ts";
import type { RegistryWriteArgs, RegistryWriteName, RegistryWriter } from "../chain/registryWriter.ts";
import type { RegistryPort } from "./ports.ts";

/** The RegistryPort over the deployed contract: reads from the view, writes through this node's sender. */
export class ChainRegistry implements RegistryPort {
  constructor(readonly self: Address, readonly view: RegistryView, private readonly writer: RegistryWriter) {}

  migration(id: bigint) {
    return this.view.migration(id);
  }
  state(id: bigint) {
    return this.view.state(id);
  }
  offers(id: bigint) {
    return this.view.offers(id);
  }
  node(operator: Address) {
    return this.view.node(operator);
  }
  openOf(operator: Address) {
    return this.view.openOf(operator);
  }
  serviceOf(serviceId: Hex) {
    return this.view.serviceOf(serviceId);
  }
  async chainNow() {
    return (await this.view.client.getBlock({ blockTag: "latest" })).timestamp;
  }
  write<F extends RegistryWriteName>(functionName: F, args: RegistryWriteArgs<F>) {
    return this.writer.write(functionName, args);
  }
}
