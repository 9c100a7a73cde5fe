import type { Redis } from "ioredis";
import type { Address, Hex } from "viem";

/**
 * What an offer promised: held until the migration ends or goes elsewhere. An acceptance's (given before the
 * request exists, worker/accept.ts) carries `expiresAt` (ms): unused by then, it lapses by itself.
 */
export type Reservation = { cpuMillicores: number; memoryMiB: number; gpuIds: string[]; gpuMemoryMiB: number; expiresAt?: number };

/**
 * Where an acceptance's reservation waits for its migration id: one per service and source. A service has one
 * open migration at a time, so a source asking again replaces its own; keyed by source too, because a service
 * that never moved has no holder yet and any node may ask for it: one asker must not replace another's hold.
 */
export const acceptanceKey = (serviceId: Hex, source: Address) => `accept:${serviceId.toLowerCase()}:${source.toLowerCase()}`;

/** Keys of offers' reservations are migration ids; acceptances' are not (they have no id yet). */
export const isMigrationKey = (key: string) => /^\d{1,78}$/.test(key);

/** Resources promised by offers and acceptances, kept in Redis so a restarted worker still honours them. */
export class Reservations {
  constructor(private readonly redis: Redis, private readonly key: string, private readonly now: () => number = Date.now) {}

  /** Every reservation still held; lapsed acceptances are dropped on the way. */
  async all(): Promise<Map<string, Reservation>> {
    const raw = await this.redis.hgetall(this.key);
    const held = new Map<string, Reservation>();
    for (const [id, json] of Object.entries(raw)) {
      const r = JSON.parse(json) as Reservation;
      // Dropped only if still the value read: a new acceptance of the same service may have taken the key since.
      if (lapsed(id, r, this.now())) await this.redis.eval(DROP, 1, this.key, id, json);
      else held.set(id, r);
    }
    return held;
  }
  async reserve(migrationId: string, r: Reservation): Promise<void> {
    await this.redis.hset(this.key, migrationId, JSON.stringify(r));
  }
  async get(migrationId: string): Promise<Reservation | undefined> {
    const raw = await this.redis.hget(this.key, migrationId);
    const r = raw ? (JSON.parse(raw) as Reservation) : undefined;
    return r && !lapsed(migrationId, r, this.now()) ? r : undefined;
  }
  /** Returns whether there was one to release. */
  async release(migrationId: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, migrationId)) === 1;
  }
  /**
   * An acceptance's reservation becomes its migration's (from then on released as an offer's is; the expiry only
   * ever applies under an acceptance's key). Atomic, so two steps adopting at once move it once; returns whether
   * there was one to move (a lapsed one is dropped instead).
   */
  async adopt(from: string, migrationId: string): Promise<boolean> {
    const raw = await this.redis.hget(this.key, from);
    if (!raw) return false;
    if (lapsed(from, JSON.parse(raw) as Reservation, this.now())) {
      await this.redis.eval(DROP, 1, this.key, from, raw);
      return false;
    }
    return (await this.redis.eval(ADOPT, 1, this.key, from, migrationId, raw)) === 1;
  }
}

const lapsed = (key: string, r: Reservation, now: number) => !isMigrationKey(key) && r.expiresAt !== undefined && r.expiresAt <= now;

// KEYS[1] the hash; ARGV: the field, the value read (dropped only if still that value).
const DROP = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0`;

// KEYS[1] the hash; ARGV: from, to, the value read (moved only if still that value).
const ADOPT = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1`;
