import { getAddress, zeroAddress, type Address } from "viem";
import { z } from "zod";
import { addressSchema, bytes32Schema } from "../lib/schemas.ts";
import { acceptanceSigner, type Acceptance, type AcceptanceTerms } from "../chain/acceptance.ts";
import { appTypeName, isEnded, stateName, type MigrationRequest } from "../chain/registryView.ts";
import { acceptanceKey } from "../evaluation/reservations.ts";
import { describeError } from "../lib/describeError.ts";
import type { AcceptanceAnswer, RegistryPort, StepContext } from "./ports.ts";
import type { WriteResult } from "../chain/txSender.ts";
import { BlosmError, ContractRevertError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { probeDecideReserve } from "./steps/evaluate.ts";
import type { AcceptedRequest } from "./askCandidates.ts";

/**
 * A request its preferred destination accepted before it was sent (MigrationRegistry.requestMigrationAccepted):
 * the source asks the destination over the peer API (POST /accept, proven by the source's key), the destination
 * self-evaluates the very request, holds what it promises and signs; the source then sends request and acceptance
 * in one transaction and the registry assigns it there, instead of a block or more later when the destination's
 * offer lands (decision latency at N = 100 in bench:scale was 5 blocks at the median, 11 at p99). Anything that
 * goes wrong on the way leaves the plain request, as before.
 */

/** How long an acceptance holds (chain seconds): the source sends at once; a request this late is a plain one. */
export const ACCEPT_FOR_S = 30n;

const uint = (max: number) => z.number().int().min(0).max(max);
const bigintString = z.string().regex(/^\d{1,20}$/, "a decimal integer").transform((v) => BigInt(v));
const position = z.object({ latE6: z.number().int(), lonE6: z.number().int() }).strict();

/** A request as the source sends it (toJson: bigints as decimal strings); the contract bounds the values again. */
export const acceptBody = z.object({
  request: z.object({
    serviceId: bytes32Schema, appType: bytes32Schema,
    requirements: z.object({ cpuMillicores: uint(2 ** 32 - 1), memoryMiB: uint(2 ** 32 - 1), gpuCount: uint(65_535), gpuMemoryMiB: uint(2 ** 32 - 1), snapshotSizeBytes: bigintString }).strict(),
    reason: uint(3), preferredDestination: addressSchema, deadline: bigintString, stateful: z.boolean(), hasClientPosition: z.boolean(),
    clientPosition: position, baseImage: z.string().max(256),
  }).strict(),
}).strict();

export type Accepted = { status: 200 | 400 | 403 | 409 | 422; body: Record<string, unknown> };

export type AcceptDeps = StepContext & {
  /** Signs with this node's operator key (chain/acceptance.ts signAcceptance). */
  sign: (request: MigrationRequest, terms: AcceptanceTerms) => Promise<Acceptance>;
};

/**
 * The destination's side. Trusts nothing in the body but what the signature covers: the caller is the proven
 * source, the service must run there by the record and have no open migration, and the request must name this
 * node. The answer is 200 with the acceptance, or why not (409: the record says otherwise; 422: no offer here).
 */
export async function takeAcceptance(d: AcceptDeps, caller: Address, body: unknown): Promise<Accepted> {
  const t0 = performance.now();
  const parsed = acceptBody.safeParse(body);
  if (!parsed.success) {
    return { status: 400, body: { error: `not a request to accept: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}` } };
  }
  const request = parsed.data.request as MigrationRequest;
  const self = d.registry.self;
  if (request.preferredDestination.toLowerCase() !== self.toLowerCase()) return { status: 409, body: { error: `the request prefers ${request.preferredDestination}, not this node (${self})` } };
  if (caller.toLowerCase() === self.toLowerCase()) return { status: 409, body: { error: "a node does not accept its own request" } };
  let appType: string;
  try {
    appType = appTypeName(request.appType);
  } catch (e) {
    return { status: 400, body: { error: `request.appType: ${describeError(e)}` } };
  }
  // Every read at once: the source waits for this answer before it sends its request.
  const [{ latest, holder }, now, selfNode, imageArchitecture] = await Promise.all([
    d.registry.serviceOf(request.serviceId), d.registry.chainNow(), d.registry.selfNode(),
    request.baseImage === "" ? undefined : d.engine.localImageArchitecture(request.baseImage),
  ]);
  if (holder !== zeroAddress && holder.toLowerCase() !== caller.toLowerCase()) {
    return { status: 403, body: { error: `service ${request.serviceId} runs on ${holder} by the record, not on ${caller}` } };
  }
  if (latest !== 0n) {
    const state = await d.registry.state(latest);
    if (!isEnded(state)) return { status: 409, body: { error: `service ${request.serviceId} has migration ${latest} open (${stateName(state)})` } };
  }
  const expires = now + ACCEPT_FOR_S;
  // Where the answer's time goes, logged with it (the source gives up after ACCEPT_TIMEOUT_MS).
  const timing = { readMs: Math.round(performance.now() - t0), lockWaitMs: 0 };
  const waitStart = performance.now();
  const key = acceptanceKey(request.serviceId, caller);
  const decision = await d.exclusive(async () => {
    timing.lockWaitMs = Math.round(performance.now() - waitStart);
    await d.reservations.release(key); // a source asking again: the new evaluation replaces what the old one held
    // Held a little past the chain's expiry (wall clock and chain clock differ by a block or so).
    const holdUntil = Date.now() + Number(ACCEPT_FOR_S) * 1000 + 15_000;
    return probeDecideReserve(d, key, request, { appType, imageArchitecture, self: selfNode, lowestKept: undefined }, { acceptance: 1, ...timing }, holdUntil);
  });
  if (!decision.offer) return { status: 422, body: { error: "this node would not offer for this request", reasons: decision.reasons } };
  try {
    const acceptance = await d.sign(request, { source: getAddress(caller), afterMigration: latest, score: decision.score, expires });
    d.log.info("request accepted ahead of its transaction", { service: request.serviceId, source: caller, score: decision.score, expires: String(expires), ms: Math.round(performance.now() - t0) });
    return { status: 200, body: { ...acceptance, afterMigration: latest } };
  } catch (e) {
    await d.reservations.release(key);
    throw e;
  }
}

/**
 * The source's side: the destination's acceptance of `request`, checked to be its signature over exactly this
 * request and source, or undefined (logged why) when it cannot be had: the plain request goes then.
 */
export async function askAcceptance(
  d: { peers: StepContext["peers"]; self: Address; chainId: number; registry: Address; log: StepContext["log"] },
  request: MigrationRequest,
): Promise<Acceptance | undefined> {
  const to = request.preferredDestination;
  const t0 = performance.now();
  try {
    const a: AcceptanceAnswer = await d.peers.accept(to, request);
    const signer = await acceptanceSigner(d.chainId, d.registry, request, { source: d.self, afterMigration: a.afterMigration, score: a.score, expires: a.expires }, a.signature);
    if (signer.toLowerCase() !== to.toLowerCase()) {
      d.log.warn("acceptance not signed by the destination asked; not used", { to, signer });
      return undefined;
    }
    return { score: a.score, expires: a.expires, signature: a.signature };
  } catch (e) {
    // A refusal with a reason is the destination's answer; no answer in time is worth a warning (the move's
    // decision then takes blocks more).
    const level = e instanceof BlosmError ? "info" : "warn";
    d.log[level]("no acceptance from the destination asked", { to, error: describeError(e), askMs: Math.round(performance.now() - t0) });
    return undefined;
  }
}

/** The revert reasons after which the plain request is still worth sending (the acceptance alone was at fault). */
export const ACCEPTANCE_REVERTS = new Set(["MigrationRegistryAcceptanceExpired", "MigrationRegistryInvalidAcceptance"]);

/**
 * The source sends its request: accepted beforehand where it can be, so that the registry assigns it in the
 * request's own transaction: by the preferred destination it names, or, for an open request, by the best of the
 * candidates asked (askCandidates.ts; the request sent then names that candidate). Without an acceptance, or when
 * the registry refuses the acceptance alone, the plain request goes (the destination or the market then offers,
 * as before). Any other refusal (the service is busy, say) is the caller's.
 */
export async function sendRequest(
  d: {
    registry: Pick<RegistryPort, "write">; log: Logger;
    ask: (request: MigrationRequest) => Promise<Acceptance | undefined>;
    askOpen?: (request: MigrationRequest) => Promise<AcceptedRequest | undefined>;
  },
  request: MigrationRequest,
): Promise<WriteResult> {
  const accepted = request.preferredDestination !== zeroAddress
    ? await d.ask(request).then((acceptance) => acceptance && { request, acceptance })
    : await d.askOpen?.(request);
  if (accepted) {
    const { acceptance } = accepted;
    try {
      return await d.registry.write("requestMigrationAccepted", [accepted.request, acceptance.score, acceptance.expires, acceptance.signature]);
    } catch (e) {
      if (!(e instanceof ContractRevertError && ACCEPTANCE_REVERTS.has(e.errorName))) throw e;
      d.log.warn("the registry refused the acceptance; sending the plain request", { to: accepted.request.preferredDestination, error: e.message });
    }
  }
  return d.registry.write("requestMigration", [request]);
}
