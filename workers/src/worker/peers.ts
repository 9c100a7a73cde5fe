import type { Address } from "viem";
import type { PeerSigner } from "../chain/peerProof.ts";
import type { OutboundRecord } from "./outbound.ts";
import type { PeerPort } from "./ports.ts";

/** Peer workers' HTTP APIs, found by the endpoint each node registered on-chain; every call proves this node. */
export class HttpPeers implements PeerPort {
  constructor(private readonly endpointOf: (node: Address) => Promise<string>, private readonly signer: PeerSigner, private readonly timeoutMs = 5000) {}

  async sourceHalf(source: Address, id: bigint): Promise<OutboundRecord | undefined> {
    try {
      const endpoint = (await this.endpointOf(source)).replace(/\/$/, "");
      const url = new URL(`${endpoint}/migrations/${id}/source`);
      const res = await fetch(url, { headers: await this.signer.headers("GET", url.pathname), signal: AbortSignal.timeout(this.timeoutMs) });
      return res.ok ? ((await res.json()) as OutboundRecord) : undefined;
    } catch {
      return undefined;
    }
  }
}
