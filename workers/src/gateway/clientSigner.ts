import type { Address, LocalAccount } from "viem";
import { SessionSigner, grantTypedData } from "../chain/sessionProof.ts";
import { CLIENT_GRANT, clientScope } from "./clientProof.ts";

/**
 * The client's side of clientProof.ts, for the simulator's cars, tests and benchmarks (a real car runs the same
 * few lines in its own stack). Keys stay in memory; only public keys and signatures go into headers.
 */
export class ClientSigner {
  private readonly signer: SessionSigner;

  constructor(readonly account: LocalAccount, o: { sessionSeconds?: number; now?: () => number } = {}) {
    this.signer = new SessionSigner(CLIENT_GRANT, account.address, (key, expires) => account.signTypedData(grantTypedData(CLIENT_GRANT, account.address, key, expires) as never), o);
  }

  get address(): Address {
    return this.account.address;
  }

  /** Headers that prove this request: the session grant and this request's signature. */
  headers(f: { op: string; position?: string; body: Buffer | Uint8Array }): Promise<Record<string, string>> {
    return this.signer.headers(clientScope(f.op, f.position), f.body);
  }
}
