import type { GrantKind } from "../chain/sessionProof.ts";

/**
 * How a client proves who it is to a gateway (chain/sessionProof.ts does the work): a client is a secp256k1 key
 * pair; it grants an Ed25519 session key with an EIP-712 SessionGrant once, then signs each request with it. The
 * scope a request's signature covers is the operation (infer/<type>, or position) and the position header as
 * sent, so a proof survives forwarding to a peer whose URL has another base path.
 */
export const PROOF_HEADER = {
  /** `<session key, 64 hex>.<expires, unix seconds>.<EIP-712 signature by the client, 0x + 130 hex>` */
  session: "x-blosm-session",
  /** `<time, unix ms>.<counter>.<Ed25519 signature, base64url>` */
  signature: "x-blosm-signature",
} as const;

export const CLIENT_GRANT: GrantKind = { primaryType: "SessionGrant", principal: "client", sessionHeader: PROOF_HEADER.session, signatureHeader: PROOF_HEADER.signature };

/** What a client's request signature covers besides time, counter and body. */
export const clientScope = (op: string, position: string | undefined) => `${op}\n${position ?? ""}`;

export const inferOp = (type: string) => `infer/${type}`;
export const POSITION_OP = "position";
