import type { Redis } from "ioredis";

/** What an offer promised: held until the migration ends or goes elsewhere. */
export type Reservation = { cpuMillicores: number; memoryMiB: number; gpuIds: string[]; gpuMemoryMiB: number };

/** Resources promised by offers, kept in Redis so a restarted worker still honours them. */
export class Reservations {
  constructor(private readonly redis: Redis, private readonly key: string) {}
  async all(): Promise<Map<string, Reservation>> {
    const raw = await this.redis.hgetall(this.key);
    return new Map(Object.entries(raw).map(([id, json]) => [id, JSON.parse(json) as Reservation]));
  }
  async reserve(migrationId: string, r: Reservation): Promise<void> {
    await this.redis.hset(this.key, migrationId, JSON.stringify(r));
  }
  async get(migrationId: string): Promise<Reservation | undefined> {
    const raw = await this.redis.hget(this.key, migrationId);
    return raw ? (JSON.parse(raw) as Reservation) : undefined;
  }
  /** Returns whether there was one to release. */
  async release(migrationId: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, migrationId)) === 1;
  }
}
