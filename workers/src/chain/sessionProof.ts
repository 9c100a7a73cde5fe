import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { isAddress, recoverTypedDataAddress, type Address, type Hex } from "viem";

/**
 * Proofs of who sent an HTTP request, for clients (cars) and for peers (clusters), without a shared secret.
 *
 * The principal (a client's key, or a node's operator key) signs once per session, with EIP-712 typed data, a
 * grant for a fresh Ed25519 key; each request is then signed with that key, which Node verifies natively in tens
 * of microseconds instead of an ECDSA recovery per request. Only public keys and signatures travel, so a proof
 * can be passed on (a forwarded request keeps its client's proof) and checked by whoever receives it.
 *
 * A request's signature covers a kind tag, the scope (what the request does), the principal, a millisecond time
 * (fresh within the receiver's clock skew), a per-session counter (each accepted once per receiver) and the
 * SHA-256 of the body. Client grants (SessionGrant) and peer grants (PeerGrant) are different EIP-712 types, so
 * one can never stand for the other.
 */
export type GrantKind = {
  /** EIP-712 primary type, and the name of its principal field. */
  primaryType: "SessionGrant" | "PeerGrant";
  principal: "client" | "node";
  /** Headers: the grant, and one request's signature. */
  sessionHeader: string;
  signatureHeader: string;
};

export const EIP712_DOMAIN = { name: "blosm", version: "1" } as const;

const typesOf = (k: GrantKind) => ({
  [k.primaryType]: [
    { name: k.principal, type: "address" },
    { name: "sessionKey", type: "bytes32" },
    { name: "expires", type: "uint64" },
  ],
});

/** The EIP-712 typed data of a grant: what a wallet shows and signs. */
export function grantTypedData(k: GrantKind, principal: Address, sessionKey: Hex, expires: number) {
  return { domain: EIP712_DOMAIN, types: typesOf(k), primaryType: k.primaryType, message: { [k.principal]: principal, sessionKey, expires: BigInt(expires) } } as const;
}

/** The exact bytes a session key signs for one request. */
export function requestPayload(k: GrantKind, f: { scope: string; principal: string; timeMs: number; counter: number; body: Buffer | Uint8Array }): Buffer {
  const bodyDigest = createHash("sha256").update(f.body).digest("hex");
  return Buffer.from([`blosm-${k.primaryType}-request-v1`, f.scope, f.principal.toLowerCase(), String(f.timeMs), String(f.counter), bodyDigest].join("\n"));
}

/** Signs a grant for a session key: the principal's own key (a wallet, a worker's account) or a call to whoever holds it. */
export type GrantSigner = (sessionKey: Hex, expires: number) => Promise<Hex>;

/** The sender's side: one grant per session (renewed a minute before it expires), one signature per request. */
export class SessionSigner {
  private session?: { header: string; privateKey: KeyObject; expires: number };
  private counter = 0;

  constructor(
    private readonly kind: GrantKind,
    readonly principal: Address,
    private readonly signGrant: GrantSigner,
    private readonly o: { sessionSeconds?: number; now?: () => number } = {},
  ) {}

  /** Headers that prove this request: the grant and the request's signature. */
  async headers(scope: string, body: Buffer | Uint8Array): Promise<Record<string, string>> {
    const now = this.o.now?.() ?? Date.now();
    const session = await this.currentSession(now);
    const counter = ++this.counter;
    const signature = sign(null, requestPayload(this.kind, { scope, principal: this.principal, timeMs: now, counter, body }), session.privateKey).toString("base64url");
    return { [this.kind.sessionHeader]: session.header, [this.kind.signatureHeader]: `${now}.${counter}.${signature}` };
  }

  private async currentSession(now: number) {
    if (this.session && this.session.expires * 1000 - now > 60_000) return this.session;
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const sessionKey = `0x${publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("hex")}` as Hex;
    const expires = Math.floor(now / 1000) + (this.o.sessionSeconds ?? 3600);
    const grant = await this.signGrant(sessionKey, expires);
    this.session = { header: `${sessionKey.slice(2)}.${expires}.${grant}`, privateKey, expires };
    this.counter = 0;
    return this.session;
  }
}

/** A proof that does not hold; the message names what is wrong (answered with 401). */
export class ProofError extends Error {}

export type ProofInput = { principal: string; scope: string; body: Buffer; session?: string; signature?: string };

type Session = { principal: Address; key: KeyObject; expires: number; max: number; seen: Set<number> };

/** DER prefix of an Ed25519 SubjectPublicKeyInfo: the 32 raw key bytes follow it. */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
/** Counters this far below the highest seen are refused outright; within it, each is accepted once. */
const REPLAY_WINDOW = 256;
const MAX_SESSIONS = 100_000;

/**
 * The receiver's side: recovers a grant once per session (cached), then checks each request's Ed25519 signature,
 * freshness and counter. `authorize` may refuse a principal (peers: only active registered nodes); it runs on
 * every request, so it must be cheap (cache what it looks up). Returns the principal, or throws a ProofError.
 */
export class SessionVerifier {
  private sessions = new Map<string, Promise<Session>>();

  constructor(
    private readonly kind: GrantKind,
    private readonly o: { clockSkewMs: number; maxSessionSeconds: number; now?: () => number; authorize?: (principal: Address) => Promise<void> },
  ) {}

  async verify(p: ProofInput): Promise<Address> {
    const { principal: who, sessionHeader, signatureHeader } = this.kind;
    if (!isAddress(p.principal, { strict: false })) throw new ProofError(`${who} "${p.principal.slice(0, 50)}" is not an address (send its 0x address)`);
    if (!p.session) throw new ProofError(`${sessionHeader} is missing: a request naming a ${who} must carry its session grant`);
    if (!p.signature) throw new ProofError(`${signatureHeader} is missing: a request naming a ${who} must be signed`);
    const now = this.o.now?.() ?? Date.now();
    const session = await this.session(p.principal as Address, p.session, now);
    if (session.expires * 1000 <= now) throw new ProofError(`the session grant expired at ${new Date(session.expires * 1000).toISOString()}`);
    const m = /^(\d{1,15})\.(\d{1,15})\.([A-Za-z0-9_-]{86})$/.exec(p.signature);
    if (!m) throw new ProofError(`${signatureHeader}: expected <time ms>.<counter>.<Ed25519 signature, base64url>`);
    const timeMs = Number(m[1]);
    const counter = Number(m[2]);
    const skew = timeMs - now;
    if (Math.abs(skew) > this.o.clockSkewMs) throw new ProofError(`the request was signed ${Math.round(Math.abs(skew) / 1000)} s ${skew < 0 ? "ago" : "in the future"} (allowed: ±${this.o.clockSkewMs / 1000} s)`);
    const payload = requestPayload(this.kind, { scope: p.scope, principal: p.principal, timeMs, counter, body: p.body });
    if (!verify(null, payload, session.key, Buffer.from(m[3]!, "base64url"))) {
      throw new ProofError(`the signature does not match this request (what it does, the ${who}, time, counter or body differ from what was signed)`);
    }
    await this.o.authorize?.(session.principal);
    // Only a valid signature may consume a counter, or anyone could burn a principal's counters.
    if (counter <= session.max - REPLAY_WINDOW || session.seen.has(counter)) throw new ProofError(`replayed: counter ${counter} of this session was already used or is too old`);
    session.seen.add(counter);
    if (counter > session.max) {
      session.max = counter;
      if (session.seen.size > 2 * REPLAY_WINDOW) for (const c of session.seen) if (c <= counter - REPLAY_WINDOW) session.seen.delete(c);
    }
    return session.principal;
  }

  /**
   * Checks a principal's session grant before its first request here (a client whose service is moving here) and
   * keeps it, so that request pays only its own signature. A ProofError names what is wrong with the grant.
   */
  async prime(principal: string, session: string): Promise<void> {
    if (!isAddress(principal, { strict: false })) throw new ProofError(`${this.kind.principal} "${principal.slice(0, 50)}" is not an address (send its 0x address)`);
    const now = this.o.now?.() ?? Date.now();
    const s = await this.session(principal as Address, session, now);
    if (s.expires * 1000 <= now) throw new ProofError(`the session grant expired at ${new Date(s.expires * 1000).toISOString()}`);
  }

  /** The grant's session, recovered once and cached (a failed grant is not cached: it costs its sender as much). */
  private session(principal: Address, header: string, now: number): Promise<Session> {
    const key = `${principal.toLowerCase()} ${header}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = this.recover(principal, header, now);
      s.catch(() => this.sessions.delete(key));
      if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
      this.sessions.set(key, s);
    }
    return s;
  }

  private async recover(claimed: Address, header: string, now: number): Promise<Session> {
    const { sessionHeader, principal: who } = this.kind;
    const m = /^([0-9a-fA-F]{64})\.(\d{1,12})\.(0x[0-9a-fA-F]{130})$/.exec(header);
    if (!m) throw new ProofError(`${sessionHeader}: expected <session key, 64 hex>.<expires, unix s>.<EIP-712 signature, 0x + 130 hex>`);
    const expires = Number(m[2]);
    if (expires * 1000 - now > this.o.maxSessionSeconds * 1000) throw new ProofError(`the session grant runs until ${new Date(expires * 1000).toISOString()}: longer than the ${this.o.maxSessionSeconds} s accepted here`);
    const sessionKey = `0x${m[1]!.toLowerCase()}` as Hex;
    let signer: Address;
    try {
      // The grant names the principal it is for; recovery says who signed it. Only the principal itself may grant.
      signer = await recoverTypedDataAddress({ ...grantTypedData(this.kind, claimed, sessionKey, expires), signature: m[3] as Hex } as never);
    } catch {
      throw new ProofError(`${sessionHeader}: the grant's signature is malformed`);
    }
    if (signer.toLowerCase() !== claimed.toLowerCase()) throw new ProofError(`the session grant for ${claimed} was signed by ${signer}, not by the ${who}`);
    return { principal: signer, key: createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(m[1]!, "hex")]), format: "der", type: "spki" }), expires, max: 0, seen: new Set() };
  }
}
