import { between, neighbours, seeded, type Site } from "./grid.ts";
import type { Position } from "../../workers/src/lib/geo.ts";

/** How one move is asked for and followed, by the chain-coordinated plane or by the central broker. */
export interface Mover {
  /** Asks the service's current site to move it; resolves with the migration's id once the request is accepted. */
  request(o: { service: string; from: Site; preferred?: Site; position: Position }): Promise<string>;
  /** Resolves when the migration ended: its outcome and, when it completed, the site that runs the service now. */
  ended(id: string, timeoutMs: number): Promise<{ outcome: string; at?: number }>;
}

export type Attempt = { service: string; from: number; preferred?: number; open: boolean; sentAt: number; id?: string; error?: string; outcome?: string; to?: number };

export type Workload = {
  migrations: number; services: Array<{ name: string; site: number }>; openShare: number; seed: number; timeoutMs: number;
  /** Cars' first crossings are spread over this long (independent cars do not cross at once); 0: all at once. */
  staggerMs: number;
};

/**
 * Cars, one per service, each driving from site to site: at every step it picks a grid neighbour, and its
 * current site asks for the move with the client halfway-and-a-bit across (55 %: inside the next site's
 * coverage). A share of moves names no preferred destination (a site out of resources asks the market), the rest
 * name the site being entered (a predicted crossing). Every car keeps one move in flight until `migrations`
 * moves have been asked for in all: with S services, S moves are in flight at once once the cars' first
 * crossings, spread over `staggerMs`, have come. Seeded: the chain run and
 * the broker run drive the same moves.
 */
export async function drive(sites: Site[], mover: Mover, w: Workload, progress: (done: number) => void): Promise<Attempt[]> {
  const attempts: Attempt[] = [];
  let asked = 0;
  await Promise.all(w.services.map(async (svc, k) => {
    const random = seeded(w.seed * 7919 + k);
    let at = sites[svc.site]!;
    await new Promise((r) => setTimeout(r, random() * w.staggerMs));
    while (asked < w.migrations) {
      asked++;
      const options = neighbours(sites, at);
      const next = options[Math.floor(random() * options.length)]!;
      const open = random() < w.openShare;
      const a: Attempt = { service: svc.name, from: at.index, preferred: open ? undefined : next.index, open, sentAt: performance.now() };
      attempts.push(a);
      try {
        a.id = await mover.request({ service: svc.name, from: at, preferred: open ? undefined : next, position: between(at.position, next.position, 0.55) });
        const end = await mover.ended(a.id, w.timeoutMs);
        a.outcome = end.outcome;
        a.to = end.at;
        if (end.at !== undefined) at = sites[end.at]!;
      } catch (e) {
        a.error = (e as Error).message;
        await new Promise((r) => setTimeout(r, 1000));
      }
      progress(attempts.filter((x) => x.outcome !== undefined || x.error !== undefined).length);
      await new Promise((r) => setTimeout(r, random() * 500)); // the car drives on before its next crossing
    }
  }));
  return attempts;
}
