import type { Address } from "viem";
import type { Acceptance } from "../chain/acceptance.ts";
import type { MigrationRequest } from "../chain/registryView.ts";
import { describeError } from "../lib/describeError.ts";
import type { Logger } from "../lib/log.ts";
import { sleep } from "../lib/sleep.ts";

/**
 * An open request (no preferred destination: a cluster out of resources asks the market) decided before it is
 * sent. The source asks the nodes that would evaluate it anyway (announceTargets: those running the app within
 * reach of the client, nearest first) to accept it, each for the request naming that node, and sends the best
 * signed answer with requestMigrationAccepted: the registry assigns it in the request's own transaction instead
 * of after the offer window (5 blocks here, and later on a loaded chain). The candidates self-evaluate exactly as
 * they would for an offer and sign their score, so the best of them still wins; the source could have named any
 * of them as preferred anyway, so choosing among signed answers gives it no power it did not have. With no
 * acceptance at all the plain open request goes, and the offer window decides as before.
 */

/** After the first acceptance arrives, how long the source still waits for better ones from the others. */
export const OPEN_ASK_GRACE_MS = 2_000;

export type AcceptedRequest = { request: MigrationRequest; acceptance: Acceptance };

export type AskCandidatesDeps = {
  /** The nodes to ask, best first on ties (announceTargets). */
  candidates: (request: MigrationRequest) => Promise<readonly Address[]>;
  /** One candidate's acceptance of a request naming it (askAcceptance: checked to be its signature), or undefined. */
  ask: (request: MigrationRequest) => Promise<Acceptance | undefined>;
  log: Logger;
  graceMs?: number;
};

/** The highest-scoring acceptance among the candidates' (the earlier candidate on ties), or undefined if none. */
export async function askCandidates(d: AskCandidatesDeps, open: MigrationRequest): Promise<AcceptedRequest | undefined> {
  let targets: readonly Address[];
  try {
    targets = await d.candidates(open);
  } catch (e) {
    d.log.info("candidates of the open request not known; sending it open", { error: describeError(e) });
    return undefined;
  }
  if (targets.length === 0) return undefined;
  const t0 = performance.now();
  const answers: Array<AcceptedRequest | undefined> = targets.map(() => undefined);
  let firstAnswer!: () => void;
  const answered = new Promise<void>((resolve) => (firstAnswer = resolve));
  const asks = targets.map(async (to, i) => {
    const request = { ...open, preferredDestination: to };
    const acceptance = await d.ask(request).catch(() => undefined); // askAcceptance logs why; never throws by contract
    if (!acceptance) return;
    answers[i] = { request, acceptance };
    firstAnswer();
  });
  const all = Promise.all(asks);
  await Promise.race([all, answered.then(() => Promise.race([all, sleep(d.graceMs ?? OPEN_ASK_GRACE_MS)]))]);
  let best: AcceptedRequest | undefined;
  for (const a of answers) if (a && (!best || a.acceptance.score > best.acceptance.score)) best = a;
  d.log.info(best ? "open request accepted by its best candidate" : "no candidate accepted the open request; sending it open", {
    asked: targets.length, accepted: answers.filter(Boolean).length, to: best?.request.preferredDestination, score: best?.acceptance.score, askMs: Math.round(performance.now() - t0),
  });
  return best;
}
