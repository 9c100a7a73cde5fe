import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { isAddress, recoverTypedDataAddress, type Address, type Hex } from "viem";
import { EIP712_DOMAIN, PROOF_HEADER, SESSION_GRANT_TYPES, requestPayload } from "./clientProof.ts";

/** A proof that does not hold; the message names what is wrong (the gateway answers 401 with it). */
export class ProofError extends Error {}

export type ProofInput = { op: string; client: string; position?: string; body: Buffer; session?: string; signature?: string };

type Session = { client: Address; key: KeyObject; expires: number; max: number; seen: Set<number> };

/** DER prefix of an Ed25519 SubjectPublicKeyInfo: the 32 raw key bytes follow it. */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
/** Counters this far below the highest seen are refused outright; within it, each is accepted once. */
const REPLAY_WINDOW = 256;
const MAX_SESSIONS = 100_000;

/**
 * The gateway's side of clientProof.ts: checks a request's session grant (EIP-712, recovered once per session and
 * cached) and its Ed25519 signature, freshness and counter. Returns the client's address, or throws a ProofError
 * naming the problem: missing, malformed, signed by someone else, expired, stale, replayed, or not matching.
 */
export class ClientVerifier {
  private sessions = new Map<string, Promise<Session>>();

  constructor(private readonly o: { clockSkewMs: number; maxSessionSeconds: number; now?: () => number }) {}

  async verify(p: ProofInput): Promise<Address> {
    if (!isAddress(p.client, { strict: false })) throw new ProofError(`client "${p.client.slice(0, 50)}" is not an address (a client is a key pair; send its 0x address)`);
    if (!p.session) throw new ProofError(`${PROOF_HEADER.session} is missing: a request naming a client must carry its session grant`);
    if (!p.signature) throw new ProofError(`${PROOF_HEADER.signature} is missing: a request naming a client must be signed`);
    const now = this.o.now?.() ?? Date.now();
    const session = await this.session(p.client as Address, p.session, now);
    if (session.expires * 1000 <= now) throw new ProofError(`the session grant expired at ${new Date(session.expires * 1000).toISOString()}`);

    const m = /^(\d{1,15})\.(\d{1,15})\.([A-Za-z0-9_-]{86})$/.exec(p.signature);
    if (!m) throw new ProofError(`${PROOF_HEADER.signature}: expected <time ms>.<counter>.<Ed25519 signature, base64url>`);
    const timeMs = Number(m[1]);
    const counter = Number(m[2]);
    const skew = timeMs - now;
    if (Math.abs(skew) > this.o.clockSkewMs) throw new ProofError(`the request was signed ${Math.round(Math.abs(skew) / 1000)} s ${skew < 0 ? "ago" : "in the future"} (allowed: ±${this.o.clockSkewMs / 1000} s)`);
    const payload = requestPayload({ op: p.op, client: p.client, position: p.position, timeMs, counter, body: p.body });
    if (!verify(null, payload, session.key, Buffer.from(m[3]!, "base64url"))) {
      throw new ProofError("the signature does not match this request (method, app, client, position, time, counter or body differ from what was signed)");
    }
    // Only a valid signature may consume a counter, or anyone could burn a client's counters.
    if (counter <= session.max - REPLAY_WINDOW || session.seen.has(counter)) throw new ProofError(`replayed: counter ${counter} of this session was already used or is too old`);
    session.seen.add(counter);
    if (counter > session.max) {
      session.max = counter;
      if (session.seen.size > 2 * REPLAY_WINDOW) for (const c of session.seen) if (c <= counter - REPLAY_WINDOW) session.seen.delete(c);
    }
    return session.client;
  }

  /** The grant's session, recovered once and cached (a failed grant is not cached: it costs its sender as much). */
  private session(client: Address, header: string, now: number): Promise<Session> {
    const key = `${client.toLowerCase()} ${header}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = this.recover(client, header, now);
      s.catch(() => this.sessions.delete(key));
      if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
      this.sessions.set(key, s);
    }
    return s;
  }

  private async recover(claimed: Address, header: string, now: number): Promise<Session> {
    const m = /^([0-9a-fA-F]{64})\.(\d{1,12})\.(0x[0-9a-fA-F]{130})$/.exec(header);
    if (!m) throw new ProofError(`${PROOF_HEADER.session}: expected <session key, 64 hex>.<expires, unix s>.<EIP-712 signature, 0x + 130 hex>`);
    const expires = Number(m[2]);
    if (expires * 1000 - now > this.o.maxSessionSeconds * 1000) throw new ProofError(`the session grant runs until ${new Date(expires * 1000).toISOString()}: longer than the ${this.o.maxSessionSeconds} s this gateway accepts`);
    const sessionKey = `0x${m[1]!.toLowerCase()}` as Hex;
    let signer: Address;
    try {
      // The grant names the client it is for; recovery says who signed it. Only the client itself may grant.
      signer = await recoverTypedDataAddress({
        domain: EIP712_DOMAIN, types: SESSION_GRANT_TYPES, primaryType: "SessionGrant",
        message: { client: claimed, sessionKey, expires: BigInt(expires) },
        signature: m[3] as Hex,
      });
    } catch {
      throw new ProofError(`${PROOF_HEADER.session}: the grant's signature is malformed`);
    }
    if (signer.toLowerCase() !== claimed.toLowerCase()) throw new ProofError(`the session grant for ${claimed} was signed by ${signer}, not by the client`);
    return { client: signer, key: createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(m[1]!, "hex")]), format: "der", type: "spki" }), expires, max: 0, seen: new Set() };
  }
}
