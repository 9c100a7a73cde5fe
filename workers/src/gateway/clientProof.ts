import { createHash } from "node:crypto";
import type { Address, Hex } from "viem";

/**
 * How a client proves who it is to a gateway (issue 14: clients own their services, provably).
 *
 * A client is a secp256k1 key pair; its address is its identity and, with the app type, derives its service id
 * (lib/serviceId.ts). Signing each request with that key would cost the gateway an ECDSA recovery per request
 * (~1-2 ms in JavaScript). So the client signs once per session, with EIP-712 typed data (what wallets show and
 * hardware keys sign), a grant for a fresh Ed25519 session key; each request is then signed with the session key,
 * which Node verifies natively in tens of microseconds. Nothing secret crosses the network: a gateway (or anyone
 * on the path) learns only public keys and signatures, so a forwarded request can carry the client's proof to a
 * neighbour, which checks it again.
 *
 * Each request's signature covers the operation (infer/<type> or position), the client, the position header as
 * sent, a millisecond timestamp (fresh within the gateway's clock skew), a per-session counter (never accepted
 * twice by a gateway) and the SHA-256 of the body.
 */
export const PROOF_HEADER = {
  /** `<session key, 64 hex>.<expires, unix seconds>.<EIP-712 signature by the client, 0x + 130 hex>` */
  session: "x-blosm-session",
  /** `<time, unix ms>.<counter>.<Ed25519 signature, base64url>` */
  signature: "x-blosm-signature",
} as const;

export const EIP712_DOMAIN = { name: "blosm", version: "1" } as const;
export const SESSION_GRANT_TYPES = {
  SessionGrant: [
    { name: "client", type: "address" },
    { name: "sessionKey", type: "bytes32" },
    { name: "expires", type: "uint64" },
  ],
} as const;

export type SessionGrant = { client: Address; sessionKey: Hex; expires: bigint };

/** What one request's signature covers. */
export type SignedFields = { op: string; client: string; position?: string; timeMs: number; counter: number; body: Buffer | Uint8Array };

/** The exact bytes a session key signs for one request. */
export function requestPayload(f: SignedFields): Buffer {
  const bodyDigest = createHash("sha256").update(f.body).digest("hex");
  return Buffer.from(["blosm-request-v1", f.op, f.client.toLowerCase(), f.position ?? "", String(f.timeMs), String(f.counter), bodyDigest].join("\n"));
}

/** The operation a path stands for: signed instead of the URL, so a proof survives a peer with a different base path. */
export const inferOp = (type: string) => `infer/${type}`;
export const POSITION_OP = "position";
