import type { Address, LocalAccount } from "viem";
import { ProofError, SessionSigner, SessionVerifier, grantTypedData, type GrantKind, type GrantSigner } from "./sessionProof.ts";
import type { RegistryView } from "./registryView.ts";

/**
 * The chain as the PKI between clusters (issue 14, point 2): every call from one cluster to another (a forwarded
 * request, a capacity poll, a worker's /cluster and /migrations/<id>/source) carries a proof by the calling node's
 * operator key (an EIP-712 PeerGrant for a session key, then Ed25519-signed requests, chain/sessionProof.ts), and
 * the receiver serves it only if that operator is an active node in the registry. A gateway holds no chain key: its
 * worker grants it a session key over the cluster's local, token-protected API (POST /peer-grant).
 */
export const PEER_HEADER = {
  node: "x-blosm-peer",
  session: "x-blosm-peer-session",
  signature: "x-blosm-peer-signature",
} as const;

export const PEER_GRANT: GrantKind = { primaryType: "PeerGrant", principal: "node", sessionHeader: PEER_HEADER.session, signatureHeader: PEER_HEADER.signature };

/** What a peer request's signature covers besides time, counter and body: method and path as the receiver sees them. */
export const peerScope = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

/** A grant signed by the node's own account (the worker's key). */
export const accountGrant = (account: LocalAccount): GrantSigner => (key, expires) =>
  account.signTypedData(grantTypedData(PEER_GRANT, account.address, key, expires) as never);

/** The calling side: headers that prove a request comes from this node. */
export class PeerSigner {
  private readonly signer: SessionSigner;
  constructor(readonly node: Address, grant: GrantSigner, o: { sessionSeconds?: number } = {}) {
    this.signer = new SessionSigner(PEER_GRANT, node, grant, { sessionSeconds: o.sessionSeconds ?? 3600 });
  }

  async headers(method: string, path: string, body: Buffer | Uint8Array = EMPTY): Promise<Record<string, string>> {
    return { [PEER_HEADER.node]: this.node, ...(await this.signer.headers(peerScope(method, path), body)) };
  }
}

const EMPTY = Buffer.alloc(0);

/** The receiving side: the calling node, proven and active in the registry, or a ProofError naming why not. */
export class PeerVerifier {
  private readonly verifier: SessionVerifier;
  constructor(isActiveNode: (node: Address) => Promise<boolean>, o: { clockSkewMs?: number } = {}) {
    this.verifier = new SessionVerifier(PEER_GRANT, {
      clockSkewMs: o.clockSkewMs ?? 30_000, maxSessionSeconds: 86_400,
      authorize: async (node) => {
        if (!(await isActiveNode(node))) throw new ProofError(`${node} is not an active node in the registry`);
      },
    });
  }

  verify(header: (name: string) => string | undefined, method: string, path: string, body: Buffer = EMPTY): Promise<Address> {
    const node = header(PEER_HEADER.node);
    if (node === undefined) throw new ProofError(`${PEER_HEADER.node} is missing: only registered clusters may call this, each proving its operator key`);
    return this.verifier.verify({ principal: node, scope: peerScope(method, path), body, session: header(PEER_HEADER.session), signature: header(PEER_HEADER.signature) });
  }
}

/**
 * Whether a node is active in the registry, cached for `ttlMs` (every peer request asks; the chain need not be
 * asked every time). A deactivated node is refused within that time.
 */
export function activeNodes(view: Pick<RegistryView, "node">, ttlMs = 10_000): (node: Address) => Promise<boolean> {
  const cache = new Map<string, { at: number; active: Promise<boolean> }>();
  return (node) => {
    const key = node.toLowerCase();
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < ttlMs) return hit.active;
    const active = view.node(node).then((n) => n.active, () => false);
    cache.set(key, { at: Date.now(), active });
    return active;
  };
}
