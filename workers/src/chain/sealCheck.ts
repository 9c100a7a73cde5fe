import { getAddress, type Address } from "viem";
import { ChainIntegrityError } from "../lib/errors.ts";
import { describeError } from "../lib/describeError.ts";
import type { ChainClient } from "./client.ts";
import { verifyCliqueHeader, type RpcHeader } from "./clique.ts";

/**
 * The event source's Clique seal check: each block whose logs it delivers must hash to its claimed hash and carry
 * the seal of an authorized signer, from a configured list or the node's `clique_getSigners` (refreshed once
 * before a refusal, since the set changes by vote). Off (undefined signer) for non-Clique chains.
 */
export class SealCheck {
  private signers: Set<string> | undefined;

  constructor(private readonly client: ChainClient, private readonly clique: { signers: readonly Address[] } | { signers: "rpc" } | undefined) {
    if (clique && clique.signers !== "rpc") this.signers = new Set(clique.signers.map((s) => s.toLowerCase()));
  }

  /** The block's signer once its seal holds; undefined when verification is off. Throws ChainIntegrityError. */
  async verify(header: RpcHeader): Promise<Address | undefined> {
    if (!this.clique) return undefined;
    if (!this.signers) await this.refresh();
    try {
      return await verifyCliqueHeader(header, this.signers!);
    } catch (e) {
      if (this.clique.signers === "rpc") {
        await this.refresh();
        return verifyCliqueHeader(header, this.signers!);
      }
      throw e;
    }
  }

  private async refresh() {
    let signers: Address[];
    try {
      signers = (await this.client.request({ method: "clique_getSigners" as never, params: ["latest"] as never })) as Address[];
    } catch (e) {
      throw new ChainIntegrityError(`clique_getSigners is not available on this node (${describeError(e)}); configure the signer list instead`);
    }
    if (!Array.isArray(signers) || signers.length === 0) throw new ChainIntegrityError("clique_getSigners returned no signers");
    this.signers = new Set(signers.map((s) => getAddress(s).toLowerCase()));
  }
}
