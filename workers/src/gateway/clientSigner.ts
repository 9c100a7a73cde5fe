import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import type { Address, Hex, LocalAccount } from "viem";
import { EIP712_DOMAIN, PROOF_HEADER, SESSION_GRANT_TYPES, requestPayload, type SignedFields } from "./clientProof.ts";

/**
 * The client's side of clientProof.ts, for the simulator's cars, tests and benchmarks (a real car runs the same
 * few lines in its own stack): signs a session grant with the client's key once, then each request with the
 * session key. Keys stay in memory; only public keys and signatures go into headers.
 */
export class ClientSigner {
  private session?: { header: string; privateKey: KeyObject; expires: number };
  private counter = 0;

  constructor(readonly account: LocalAccount, private readonly o: { sessionSeconds?: number; now?: () => number } = {}) {}

  get address(): Address {
    return this.account.address;
  }

  /** Headers that prove this request: the session grant and this request's signature. */
  async headers(f: Omit<SignedFields, "client" | "timeMs" | "counter">): Promise<Record<string, string>> {
    const now = this.o.now?.() ?? Date.now();
    const session = await this.currentSession(now);
    const fields: SignedFields = { ...f, client: this.address, timeMs: now, counter: ++this.counter };
    const signature = sign(null, requestPayload(fields), session.privateKey).toString("base64url");
    return { [PROOF_HEADER.session]: session.header, [PROOF_HEADER.signature]: `${fields.timeMs}.${fields.counter}.${signature}` };
  }

  private async currentSession(now: number) {
    if (this.session && this.session.expires * 1000 - now > 60_000) return this.session;
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
    const sessionKey = `0x${raw.toString("hex")}` as Hex;
    const expires = Math.floor(now / 1000) + (this.o.sessionSeconds ?? 3600);
    const grant = await this.account.signTypedData({
      domain: EIP712_DOMAIN, types: SESSION_GRANT_TYPES, primaryType: "SessionGrant",
      message: { client: this.address, sessionKey, expires: BigInt(expires) },
    });
    this.session = { header: `${sessionKey.slice(2)}.${expires}.${grant}`, privateKey, expires };
    this.counter = 0;
    return this.session;
  }
}
