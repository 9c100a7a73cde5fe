import type { Address } from "viem";
import { SessionVerifier } from "../chain/sessionProof.ts";
import { CLIENT_GRANT, clientScope } from "./clientProof.ts";

export { ProofError } from "../chain/sessionProof.ts";

export type ProofInput = { op: string; client: string; position?: string; body: Buffer; session?: string; signature?: string };

/**
 * The gateway's check of a client's proof: the grant recovered once per session, then each request's signature,
 * freshness and counter. Returns the client's address, or throws a ProofError naming the problem.
 */
export class ClientVerifier {
  private readonly verifier: SessionVerifier;

  constructor(o: { clockSkewMs: number; maxSessionSeconds: number; now?: () => number }) {
    this.verifier = new SessionVerifier(CLIENT_GRANT, o);
  }

  /** A client's session grant, checked ahead of its first request here (handed over by the cluster it leaves). */
  prime(client: string, session: string): Promise<void> {
    return this.verifier.prime(client, session);
  }

  verify(p: ProofInput): Promise<Address> {
    return this.verifier.verify({ principal: p.client, scope: clientScope(p.op, p.position), body: p.body, session: p.session, signature: p.signature });
  }
}
