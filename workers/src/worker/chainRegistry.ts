import type { Address, Hex } from "viem";
import { stateOf, type RegistryView } from "../chain/registryView.ts";
import type { RegistryWriteArgs, RegistryWriteName, RegistryWriter } from "../chain/registryWriter.ts";
import { reusable } from "../lib/reusable.ts";
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
  private readonly own = reusable(SELF_NODE_REUSE_MS, () => this.view.node(this.self));
  selfNode() {
    return this.own.get(undefined);
  }
  /**
   * Where a peer's worker answers, from its record: asked once per ENDPOINT_REUSE_MS, not on every call to it
   * (a source asks its destination for a push credential and back; bench:scale counted 2-3 reads per move).
   * Only where to send: who answers is proved by its signature and its registry by the certificate pinned on-chain.
   */
  private readonly endpoints = reusable(ENDPOINT_REUSE_MS, (operator: string) => this.view.node(operator as Address).then((n) => n.endpoint));
  endpointOf(operator: Address): Promise<string> {
    return this.endpoints.get(operator.toLowerCase());
  }
  /** A peer's node changed its endpoint or left: the next call reads its record again. */
  forgetEndpoint(operator: Address): void {
    this.endpoints.forget(operator.toLowerCase());
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
