import type { Address, Hex } from "viem";
import { stateOf, type EdgeNodeView, type RegistryView } from "../chain/registryView.ts";
import type { RegistryWriteArgs, RegistryWriteName, RegistryWriter } from "../chain/registryWriter.ts";
import type { RegistryPort } from "./ports.ts";

/** How long this node's own record is reused by selfNode(). */
const SELF_NODE_REUSE_MS = 5000;
/** How long a peer's endpoint is reused by endpointOf() (forgotten at once when its node changes it on-chain). */
const ENDPOINT_REUSE_MS = 30_000;

/** The RegistryPort over the deployed contract: reads from the view, writes through this node's sender. */
export class ChainRegistry implements RegistryPort {
  constructor(
    readonly self: Address,
    readonly view: RegistryView,
    private readonly writer: RegistryWriter,
    /** The newest pushed head's time, when the head feed is fresh (HeadFeed.timestamp). */
    private readonly pushedTime: () => bigint | undefined = () => undefined,
  ) {}

  migration(id: bigint) {
    return this.view.migration(id);
  }
  state(id: bigint) {
    return this.view.state(id);
  }
  async migrationAndState(id: bigint) {
    const [m, now] = await Promise.all([this.view.migration(id), this.chainNow()]);
    return { m, state: stateOf(m, now) };
  }
  offers(id: bigint) {
    return this.view.offers(id);
  }
  node(operator: Address) {
    return this.view.node(operator);
  }
  private own?: { at: number; node: Promise<EdgeNodeView> };
  selfNode() {
    if (!this.own || Date.now() - this.own.at > SELF_NODE_REUSE_MS) {
      const entry = { at: Date.now(), node: this.view.node(this.self) };
      entry.node.catch(() => this.own === entry && (this.own = undefined)); // a failed read is not reused
      this.own = entry;
    }
    return this.own.node;
  }
  private readonly endpoints = new Map<string, { at: number; endpoint: Promise<string> }>();
  /**
   * Where a peer's worker answers, from its record: asked once per ENDPOINT_REUSE_MS, not on every call to it
   * (a source asks its destination for a push credential and back; bench:scale counted 2-3 reads per move).
   * Only where to send: who answers is proved by its signature and its registry by the certificate pinned on-chain.
   */
  endpointOf(operator: Address): Promise<string> {
    const key = operator.toLowerCase();
    const kept = this.endpoints.get(key);
    if (kept && Date.now() - kept.at <= ENDPOINT_REUSE_MS) return kept.endpoint;
    const entry = { at: Date.now(), endpoint: this.view.node(operator).then((n) => n.endpoint) };
    entry.endpoint.catch(() => this.endpoints.get(key) === entry && this.endpoints.delete(key)); // a failed read is not reused
    this.endpoints.set(key, entry);
    return entry.endpoint;
  }
  /** A peer's node changed its endpoint or left: the next call reads its record again. */
  forgetEndpoint(operator: Address): void {
    this.endpoints.delete(operator.toLowerCase());
  }
  openOf(operator: Address) {
    return this.view.openOf(operator);
  }
  serviceOf(serviceId: Hex) {
    return this.view.serviceOf(serviceId);
  }
  /**
   * The latest block's time: the pushed head's, else asked. finalize polls it 4 times a second while an offer
   * window closes, and pushCredential reads it per migration: asked, that was a header per worker per block at
   * N = 100 in bench:scale, half of all calls to the chain node.
   */
  async chainNow() {
    return this.pushedTime() ?? (await this.view.client.getBlock({ blockTag: "latest" })).timestamp;
  }
  write<F extends RegistryWriteName>(functionName: F, args: RegistryWriteArgs<F>) {
    return this.writer.write(functionName, args);
  }
}
