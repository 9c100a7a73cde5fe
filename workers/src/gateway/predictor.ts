import type { Address } from "viem";
import { toLocal, motionOf, predictExit, type Exit, type Fix } from "./crossing.ts";
import type { Position } from "../lib/geo.ts";

export type PredictionConfig = {
  enabled: boolean; minSpeedMps: number; minFixes: number; minSpanMs: number; expectedMigrationS: number; marginS: number;
  /** A stateful move held after its pre-copy freezes this long before the predicted crossing (the final delta,
   * pull and start then end about as the car crosses), until switches here have been measured. */
  switchLeadS: number;
};
export const DEFAULT_PREDICTION: PredictionConfig = { enabled: true, minSpeedMps: 2, minFixes: 4, minSpanMs: 1000, expectedMigrationS: 6, marginS: 3, switchLeadS: 3 };

/** How a service moves: make-before-break, or frozen with a final delta. */
export type MoveKind = "stateless" | "stateful";

const MAX_FIXES = 16;
const WINDOW_MS = 5000;
const MAX_CLIENTS = 10_000;
const RECENT_MIGRATIONS = 20;
const SWITCH_MARGIN_S = 0.5;
/** The most a learned switch lead may be (the config's own bound for switchLeadS). */
export const MAX_SWITCH_LEAD_S = 60;

/**
 * Each client's recent fixes (bounded: the last few seconds, and the clients seen most recently) and how long
 * this cluster's mobility migrations took lately; from both, whether a client will leave the coverage before a
 * migration started now would end.
 */
export class CrossingPredictor {
  private readonly fixes = new Map<string, Fix[]>();
  /** When each client's current stretch of reports began (a gap of WINDOW_MS starts a new one). */
  private readonly since = new Map<string, number>();
  /** By kind: a stateful move (pre-copy, then the freeze and final delta after the switch) takes longer. */
  private readonly durationsS: Record<MoveKind, number[]> = { stateless: [], stateful: [] };
  /** How long held moves here took from the switch to completion, lately. */
  private readonly switchesS: number[] = [];

  constructor(private readonly o: PredictionConfig) {}

  observe(client: Address, pos: Position, at = Date.now()): void {
    const key = client.toLowerCase();
    const list = this.fixes.get(key) ?? [];
    this.fixes.delete(key); // re-inserted last: Map order is then least recently seen first
    const lastAt = list[list.length - 1]?.at;
    if (lastAt === undefined || at - lastAt > WINDOW_MS) this.since.set(key, at);
    list.push({ at, pos });
    while (list.length > MAX_FIXES || (list.length > 0 && at - list[0]!.at > WINDOW_MS)) list.shift();
    this.fixes.set(key, list);
    if (this.fixes.size > MAX_CLIENTS) {
      const oldest = this.fixes.keys().next().value!;
      this.fixes.delete(oldest);
      this.since.delete(oldest);
    }
  }

  /**
   * Whether a client outside the coverage should be left where it is for now rather than have its service moved
   * to the cluster it is in: it is heading into this coverage (a service moved here ahead of the car, which has
   * not arrived yet), or too little is known of its motion yet (its first reports here; a bounded wait of twice
   * `minSpanMs`). Without this, an early handover would be sent straight back.
   */
  holdOutside(client: Address, me: { location: Position; coverageRadiusM: number }, now = Date.now()): boolean {
    if (!this.o.enabled) return false;
    const m = this.motion(client);
    if (!m) return now - (this.since.get(client.toLowerCase()) ?? now) < 2 * this.o.minSpanMs;
    if (m.speed < this.o.minSpeedMps) return false;
    // Heading in: towards the centre, on a line that passes within the coverage.
    const p = toLocal(me.location, m.last.pos);
    const pv = p.x * m.vEast + p.y * m.vNorth;
    if (pv >= 0) return false;
    const closest2 = p.x ** 2 + p.y ** 2 - (pv * pv) / (m.vEast ** 2 + m.vNorth ** 2);
    return closest2 < me.coverageRadiusM ** 2;
  }

  private motion(client: Address) {
    return motionOf(this.fixes.get(client.toLowerCase()) ?? [], { minFixes: this.o.minFixes, minSpanMs: this.o.minSpanMs });
  }

  /** A mobility migration of this kind here took this long (request to completion, less any time held): the lead
   * time of its kind follows the slow ones. */
  recordMigration(seconds: number, kind: MoveKind = "stateless"): void {
    const list = this.durationsS[kind];
    list.push(seconds);
    if (list.length > RECENT_MIGRATIONS) list.shift();
  }

  /** A held move here completed this long after its switch (the freeze, final delta, pull and start). */
  recordSwitch(seconds: number): void {
    this.switchesS.push(seconds);
    if (this.switchesS.length > RECENT_MIGRATIONS) this.switchesS.shift();
  }

  /**
   * Seconds before the predicted crossing a held move freezes: the slowest recent switch here, so the destination
   * is ready as the car crosses (earlier only moves the same freeze earlier), plus SWITCH_MARGIN_S for the
   * gateway's polling; `switchLeadS` until a switch has been measured. Bounded by the config's own maximum.
   */
  switchLeadS(): number {
    if (this.switchesS.length === 0) return this.o.switchLeadS;
    return Math.min(MAX_SWITCH_LEAD_S, Math.max(...this.switchesS) + SWITCH_MARGIN_S);
  }

  /**
   * Seconds ahead of the crossing a migration of this kind must start to be done in time: from the slowest recent
   * one of its kind; before any, from `expectedMigrationS` or the slowest of the other kind, whichever is longer
   * (a first stateful move after quick stateless ones is not sized by them).
   */
  leadS(kind: MoveKind = "stateless"): number {
    const own = this.durationsS[kind];
    const slowest = own.length > 0 ? Math.max(...own) : Math.max(this.o.expectedMigrationS, ...this.durationsS.stateless, ...this.durationsS.stateful);
    return 1.5 * slowest + this.o.marginS;
  }

  /**
   * Whether a stateful move held after its pre-copy should freeze now: the client is outside the coverage, or
   * moving out with its exit due within the switch lead (switchLeadS()). A client that turned inwards keeps the hold (which ends
   * by its own limit if the car never crosses).
   */
  switchDue(client: Address, me: { location: Position; coverageRadiusM: number }): boolean {
    return this.crossingWithin(client, me, this.switchLeadS());
  }

  /**
   * Whether the client is outside the coverage, or moving out with its exit due within `seconds` (SWITCH_MARGIN_S
   * by default: the moment a stateless service's old copy hands its client to the new one).
   */
  crossingWithin(client: Address, me: { location: Position; coverageRadiusM: number }, seconds = SWITCH_MARGIN_S): boolean {
    const last = this.fixes.get(client.toLowerCase())?.at(-1);
    if (!last) return false;
    const p = toLocal(me.location, last.pos);
    if (p.x ** 2 + p.y ** 2 > me.coverageRadiusM ** 2) return true;
    const m = this.motion(client);
    if (!m || !this.movingOut(client, me)) return false;
    const exit = predictExit(m, me.location, me.coverageRadiusM);
    return exit !== undefined && exit.inS <= seconds;
  }

  /** Whether the client is moving away from the centre at `minSpeedMps` or more (over its recent fixes). */
  movingOut(client: Address, me: { location: Position; coverageRadiusM: number }): boolean {
    const m = this.motion(client);
    if (!m || m.speed < this.o.minSpeedMps) return false;
    const p = toLocal(me.location, m.last.pos);
    return p.x * m.vEast + p.y * m.vNorth > 0;
  }

  /**
   * Whether a client inside the coverage is heading back towards its centre (radially inwards at `minSpeedMps`
   * or more, over the whole fix window): a car that turned back before the crossing its held move waits for.
   */
  headingIn(client: Address, me: { location: Position; coverageRadiusM: number }): boolean {
    const m = this.motion(client);
    if (!m) return false;
    const p = toLocal(me.location, m.last.pos);
    const r = Math.hypot(p.x, p.y);
    if (r > me.coverageRadiusM || r === 0) return false;
    return -(p.x * m.vEast + p.y * m.vNorth) / r >= this.o.minSpeedMps;
  }

  /**
   * The client's predicted exit from the circle when it is due within the lead time: moving outwards, fast
   * enough, over enough history. Undefined otherwise (too early, too slow, turning inwards, or too little known).
   */
  dueExit(client: Address, me: { location: Position; coverageRadiusM: number }, kind: MoveKind = "stateless"): (Exit & { leadS: number }) | undefined {
    if (!this.o.enabled) return undefined;
    const m = this.motion(client);
    if (!m || m.speed < this.o.minSpeedMps) return undefined;
    // Outwards: moving away from the centre. A car circling near the edge or turning back does not trigger.
    const p = toLocal(me.location, m.last.pos);
    if (p.x * m.vEast + p.y * m.vNorth <= 0) return undefined;
    const exit = predictExit(m, me.location, me.coverageRadiusM);
    const leadS = this.leadS(kind);
    return exit && exit.inS <= leadS ? { ...exit, leadS } : undefined;
  }
}
