import type { Address } from "viem";
import type { OutboundRecord } from "./outbound.ts";
import type { PeerPort } from "./ports.ts";

/** Peer workers' HTTP APIs, found by the endpoint each node registered on-chain. */
export class HttpPeers implements PeerPort {
  constructor(private readonly endpointOf: (node: Address) => Promise<string>, private readonly timeoutMs = 5000) {}

  async sourceHalf(source: Address, id: bigint): Promise<OutboundRecord | undefined> {
    try {
      const endpoint = (await this.endpointOf(source)).replace(/\/$/, "");
      const res = await fetch(`${endpoint}/migrations/${id}/source`, { signal: AbortSignal.timeout(this.timeoutMs) });
      return res.ok ? ((await res.json()) as OutboundRecord) : undefined;
    } catch {
      return undefined;
    }
  }
}
