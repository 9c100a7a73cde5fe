import type { Address, Hex } from "viem";
import { serviceIdOf } from "../lib/serviceId.ts";
import { distanceM } from "../lib/geo.ts";
import { describeError } from "../lib/describeError.ts";
import type { Logger } from "../lib/log.ts";
import { State, stateName, type RegistryView } from "../chain/registryView.ts";
import type { AppSource } from "./apps.ts";
import type { NeighbourSource, Position } from "./neighbours.ts";
import { ahead } from "./crossing.ts";
import { CrossingPredictor, DEFAULT_PREDICTION, type MoveKind, type PredictionConfig } from "./predictor.ts";
import { InFlight } from "./inFlight.ts";

/** `retireGraceMs`: how long the source's worker keeps the old copy after completion (its /migrate answer). */
export type Handover = { ok: true; gateway: string; name: string; retireGraceMs?: number } | { ok: false; reason: string };
export type Route =
  | { kind: "here" }
  /** `draining`: a held stateful source is about to freeze, so new requests wait for the handover. */
  | { kind: "moving"; id?: bigint; done: Promise<Handover>; draining?: boolean }
  /**
   * `oldCopy`: a stateless service's old copy still runs here and serves its client until the crossing, so the
   * switch falls when the car needs it, not in the busy moment the move completes; `pointAway` once it is due;
   * `warmAhead` on the first such request of a move: a copy of it goes to the new cluster (route.ts).
   */
  | { kind: "moved"; gateway: string; name: string; oldCopy?: { pointAway: boolean; warmAhead: boolean } };


/** A migration in flight; `hold`: the worker holds a stateful source's freeze until this gateway's switch. */
type Pending = {
  id?: bigint; done: Promise<Handover>;
  /** switchedAt: when the source accepted the switch (performance.now()), to learn how long switches take. */
  hold?: { decided: boolean; draining?: boolean; heldMs: number; inwardSince?: number; switchedAt?: number };
};

/** How long a held move's client must keep heading back in before the move is given up (hysteresis). */
const TURN_BACK_MS = 2000;
/** How long a switch waits for the service's running requests here to end before the source freezes anyway. */
const DRAIN_MS = 2000;
/** Clients whose session grants are kept for handing on. */
const MAX_SESSIONS = 10_000;
/**
 * `oldCopyUntil`: until when (Date.now()) the old copy may serve; `pointed`: its client has been sent on (it stays
 * sent on); `warmed`: a request of the client was copied to the new cluster once.
 */
type Moved = { gateway: string; name: string; containerId: string; oldCopyUntil: number; pointed?: boolean; warmed?: boolean };
type ServiceState = { pending?: Pending; moved?: Moved; quietUntil: number };

/**
 * How long a stateless service's old copy serves its client after completion: the source's retire grace less
 * OLD_COPY_MARGIN_MS (the worker counts from when it saw the completion, this gateway from when its polling did,
 * and a request running then must end), so no request is inside the old copy as it stops.
 */
export function oldCopyServesMs(retireGraceMs: number | undefined): number {
  if (retireGraceMs === undefined || !Number.isFinite(retireGraceMs)) return 0;
  return Math.max(0, retireGraceMs - OLD_COPY_MARGIN_MS);
}
const OLD_COPY_MARGIN_MS = 1500;
/** The old copy points its client on this long before its time ends: a car requesting at least once a second then
 * reaches the new copy directly. */
const POINT_BEFORE_END_MS = 1000;

/**
 * BloSM's client-mobility trigger (Algorithm 3, lines 18-29), made exact: when a client whose service container
 * runs here is beyond this cluster's coverage (a client whose signature server.ts verified: nobody else moves
 * its service), ask the worker to migrate that container, with the cluster whose
 * coverage holds the client as preferred destination — once per crossing (one migration in flight per service),
 * then follow it on-chain until it ends, and remember where the service went so late requests follow it.
 */
export class Mobility {
  private services = new Map<string, ServiceState>();
  private readonly predictor: CrossingPredictor;
  private readonly sessions = new Map<string, string>();
  migrationsRequested = 0;
  /** Of those, started ahead of a predicted crossing (the client still inside the coverage). */
  migrationsPredicted = 0;
  /** Requests running on this cluster's containers, per service (server.ts counts them): drained before a freeze. */
  readonly inFlight = new InFlight();

  constructor(private readonly d: {
    apps: AppSource; neighbours: NeighbourSource; chain: RegistryView; worker: { url: string; token?: string };
    log: Logger; pollMs?: number; holdTimeoutMs: number; prediction?: PredictionConfig;
    /** Hands a client's session grant to the gateway its service is moving to (Upstream.primeSession). */
    primeSession?: (gateway: string, client: Address, session: string) => Promise<void>;
  }) {
    this.predictor = new CrossingPredictor(d.prediction ?? { ...DEFAULT_PREDICTION, enabled: false });
  }

  private state(key: string): ServiceState {
    let s = this.services.get(key);
    if (!s) this.services.set(key, (s = { quietUntil: 0 }));
    return s;
  }

  async route(client: Address, type: string): Promise<Route> {
    const s = this.services.get(`${client.toLowerCase()}/${type}`);
    if (!s) return { kind: "here" };
    if (s.pending) return { kind: "moving", id: s.pending.id, done: s.pending.done, draining: s.pending.hold?.draining === true };
    if (s.moved) {
      const local = await this.d.apps.dedicated(serviceIdOf(client, type));
      if (local && local.id !== s.moved.containerId) {
        s.moved = undefined; // it came back
        return { kind: "here" };
      }
      const moved = { kind: "moved" as const, gateway: s.moved.gateway, name: s.moved.name };
      if (!local || local.paused || Date.now() >= s.moved.oldCopyUntil) return moved;
      // Make-before-break: the old copy serves its client while it heads for the crossing, and points it at the new
      // one as it is about to cross; at once if it stops or turns back, so that the new cluster sees its fixes and
      // can move the service back in time (a turning car was otherwise seen there only after this copy's time).
      const me = this.d.neighbours.self();
      // Pointed also as the old copy's time runs out: the car's next request then goes straight to the new copy,
      // not through this gateway's follow (one more hop, which made the new copy's first answers the slowest).
      s.moved.pointed ||= !me || !this.predictor.movingOut(client, me) || this.predictor.crossingWithin(client, me)
        || Date.now() >= s.moved.oldCopyUntil - POINT_BEFORE_END_MS;
      // A copy of a request runs the app twice: only for a service that keeps no state (never a stateful one's).
      const warmAhead = !s.moved.warmed && !local.stateful;
      s.moved.warmed = true;
      return { ...moved, oldCopy: { pointAway: s.moved.pointed, warmAhead } };
    }
    return { kind: "here" };
  }

  /** The leads the prediction uses now, learned from this gateway's moves: ahead of a crossing (for a service that
   * moves this way), and a held freeze's. */
  leads(kind: MoveKind = "stateless"): { leadS: number; switchLeadS: number } {
    return { leadS: this.predictor.leadS(kind), switchLeadS: this.predictor.switchLeadS() };
  }

  /**
   * The client reported its position (once per report, whatever the app types): kept for the prediction, with
   * its session grant, which a move of its service hands to the destination ahead of the client (primeSession).
   */
  track(client: Address, pos: Position, session?: string): void {
    this.predictor.observe(client, pos);
    if (session === undefined) return;
    const key = client.toLowerCase();
    this.sessions.delete(key); // newest last: the oldest goes first when full
    this.sessions.set(key, session);
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
  }

  /**
   * A client reported its position: migrate its service ahead of a predicted crossing, or once it left this
   * cluster's coverage (unless it is heading in). Never throws.
   */
  async observe(client: Address, type: string, pos: Position): Promise<void> {
    const key = `${client.toLowerCase()}/${type}`;
    const s = this.state(key);
    if (s.pending?.hold && !s.pending.hold.decided) this.switchOrAbort(client, type, s.pending);
    if (s.pending || s.moved || Date.now() < s.quietUntil) return;
    const me = this.d.neighbours.self();
    if (!me) return;
    // The client's own container here (from the list kept for requests): nothing to move without it, and how it
    // moves sets how early a move must start.
    const local = await this.d.apps.dedicated(serviceIdOf(client, type)).catch(() => undefined);
    if (!local || s.pending || s.moved || Date.now() < s.quietUntil) return;
    const kind: MoveKind = local.stateful ? "stateful" : "stateless";
    const distance = distanceM(pos, me.location);
    // Inside the coverage: move only ahead of a predicted crossing (early enough for the migration to end first).
    const due = distance <= me.coverageRadiusM ? this.predictor.dueExit(client, me, kind) : undefined;
    if (distance <= me.coverageRadiusM && !due) return;
    if (!due && this.predictor.holdOutside(client, me)) return;
    s.quietUntil = Date.now() + 1000; // decide at most once a second per service
    // Where the client is going: just past the predicted exit, or where it is now.
    const target = this.d.neighbours.covering(due ? ahead(due.at, due.heading, 50) : pos, type);
    if (!target) {
      if (!due) this.d.log.info("client beyond coverage and no cluster covers it; serving on", { client, type, position: pos });
      return;
    }
    let resolve!: (h: Handover) => void;
    const done = new Promise<Handover>((r) => (resolve = r));
    s.pending = { done };
    if (due) {
      this.migrationsPredicted++;
      this.d.log.info("client predicted to leave coverage: migrating its service ahead", {
        client, type, to: target.name, distanceM: Math.round(distance), exitInS: Number(due.inS.toFixed(1)), leadS: Number(due.leadS.toFixed(1)),
      });
    } else {
      this.d.log.info("client left coverage: migrating its service", { client, type, to: target.name, distanceM: Math.round(distance) });
    }
    this.migrationsRequested++;
    // The destination checks the client's grant now, not on the client's first request there (a handover's spike).
    const session = this.sessions.get(client.toLowerCase());
    if (session && this.d.primeSession) {
      this.d.primeSession(target.gateway, client, session)
        .catch((e) => this.d.log.info("could not hand the client's session to the destination ahead; it is checked on arrival", { client, to: target.name, error: describeError(e) }));
    }
    const t0 = performance.now();
    // Ahead of a crossing, a stateful source may hold its freeze until the car is about to cross (switchIfCrossing):
    // at most until a while after the predicted exit, in case the car slows down.
    const holdForSwitchS = due ? Math.min(600, Math.ceil(due.inS + Math.max(5, due.inS / 2))) : undefined;
    this.follow(client, type, local.id, target.operator, pos, s, holdForSwitchS).then(resolve, (e) => resolve({ ok: false, reason: describeError(e) }));
    const outcome = await done;
    if (outcome.ok) {
      // The lead time follows how long migrations take, not how long one waited for its car.
      const hold = s.pending?.hold;
      this.predictor.recordMigration((performance.now() - t0 - (hold?.heldMs ?? 0)) / 1000, kind);
      // And the switch lead follows how long the freeze, final delta, pull and start took after the switch.
      if (hold?.switchedAt !== undefined) {
        const switchS = (performance.now() - hold.switchedAt) / 1000;
        this.predictor.recordSwitch(switchS);
        this.d.log.info("held move completed after its switch", { client, type, switchS: round1(switchS), switchLeadS: round1(this.predictor.switchLeadS()) });
      }
      s.moved = { gateway: outcome.gateway, name: outcome.name, containerId: local.id, oldCopyUntil: Date.now() + oldCopyServesMs(outcome.retireGraceMs) };
    } else {
      s.quietUntil = Date.now() + 5000;
      this.d.log.warn("migration for client mobility did not complete; the service stays here", { client, type, reason: outcome.reason });
    }
    s.pending = undefined;
    this.d.apps.invalidate();
  }

  /**
   * A held stateful move: its client is about to cross (or has), so the source freezes now; or it has kept heading
   * back in for TURN_BACK_MS, so the source gives the move up and serves on (nothing ran twice). Never throws.
   */
  private switchOrAbort(client: Address, type: string, p: Pending): void {
    const me = this.d.neighbours.self();
    const hold = p.hold;
    if (!me || p.id === undefined || !hold) return;
    const action = this.holdDecision(client, me, hold);
    if (!action) return;
    hold.decided = true; // one word per hold, whichever it is
    // Before a freeze: new requests wait for the handover, and those running on the source end first.
    if (action === "switch") hold.draining = true;
    const drained = action === "switch" ? this.inFlight.drained(serviceIdOf(client, type), DRAIN_MS) : Promise.resolve(true);
    drained
      .then(() => fetch(`${this.d.worker.url}/migrations/${p.id}/${action}`, { method: "POST", headers: this.workerHeaders(), signal: AbortSignal.timeout(10_000) }))
      .then(async (res) => {
        const body = (await res.json().catch(() => ({}))) as { heldMs?: number; error?: string };
        if (res.status === 202) {
          hold.heldMs = body.heldMs ?? 0;
          if (action === "switch") hold.switchedAt = performance.now();
        }
        // 404: the source froze already (its hold's limit, or a restart): the move goes on as one without a hold.
        const said = action === "switch" ? "client crossing: the source freezes now" : "client turned back: the held move is given up";
        this.d.log.info(said, { client, type, id: String(p.id), ...(res.status === 202 ? { heldMs: body.heldMs } : { worker: body.error }) });
      })
      .catch((e) => this.d.log.warn(`could not tell the worker to ${action}; the source freezes at its hold's limit`, { client, type, error: describeError(e) }));
  }

  /** Switch when the crossing is due; abort once heading back in for TURN_BACK_MS (a turn, not GPS noise). */
  private holdDecision(client: Address, me: NonNullable<ReturnType<NeighbourSource["self"]>>, hold: NonNullable<Pending["hold"]>): "switch" | "abort" | undefined {
    if (this.predictor.switchDue(client, me)) return "switch";
    if (!this.predictor.headingIn(client, me)) {
      hold.inwardSince = undefined;
      return undefined;
    }
    hold.inwardSince ??= Date.now();
    return Date.now() - hold.inwardSince >= TURN_BACK_MS ? "abort" : undefined;
  }

  private workerHeaders(): Record<string, string> {
    return { "content-type": "application/json", ...(this.d.worker.token ? { authorization: `Bearer ${this.d.worker.token}` } : {}) };
  }

  private async follow(client: Address, type: string, container: string, to: Address, pos: Position, s: ServiceState, holdForSwitchS?: number): Promise<Handover> {
    const res = await fetch(`${this.d.worker.url}/migrate`, {
      method: "POST",
      headers: this.workerHeaders(),
      body: JSON.stringify({ container, to, reason: "client-mobility", clientPosition: pos, ...(holdForSwitchS ? { holdForSwitchS } : {}) }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json().catch(() => ({}))) as { id?: string; error?: string; held?: boolean; retireGraceMs?: number };
    if (res.status !== 202 || !body.id) return { ok: false, reason: `worker refused the migration (HTTP ${res.status}): ${body.error ?? "no id"}` };
    const id = BigInt(body.id);
    if (s.pending) {
      s.pending.id = id;
      if (body.held) s.pending.hold = { decided: false, heldMs: 0 };
    }
    this.d.log.info("migration requested", { client, type, id: body.id });
    const limitMs = Math.max(this.d.holdTimeoutMs, 600_000);
    const deadline = Date.now() + limitMs;
    for (;;) {
      const state = await this.d.chain.state(id).catch(() => -1);
      if (state === State.Completed) {
        const m = await this.d.chain.migration(id);
        const dest = this.d.neighbours.byOperator(m.destination);
        if (!dest) return { ok: false, reason: `migration ${id} completed to ${m.destination}, which has no known gateway` };
        this.d.log.info("service moved", { client, type, id: id.toString(), to: dest.name });
        return { ok: true, gateway: dest.gateway, name: dest.name, retireGraceMs: typeof body.retireGraceMs === "number" ? body.retireGraceMs : undefined };
      }
      if (state >= State.Failed) return { ok: false, reason: `migration ${id} ended ${stateName(state)}` };
      if (Date.now() > deadline) return { ok: false, reason: `migration ${id} still open after ${limitMs / 1000} s` };
      await new Promise((r) => setTimeout(r, this.d.pollMs ?? 250));
    }
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;
