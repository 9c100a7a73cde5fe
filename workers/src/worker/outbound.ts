import type { Redis } from "ioredis";
import type { OutboundRecord, OutboundStore } from "./ports.ts";

export type { OutboundRecord };

const WEEK_S = 7 * 86_400;

/** Outbound records in Redis, one key per migration under `<prefix>:outbound:`. */
export class RedisOutboundStore implements OutboundStore {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(id: bigint | string) {
    return `${this.prefix}:outbound:${id}`;
  }
  async get(id: bigint): Promise<OutboundRecord | undefined> {
    const json = await this.redis.get(this.key(id));
    return json ? (JSON.parse(json) as OutboundRecord) : undefined;
  }
  async put(id: bigint, record: OutboundRecord): Promise<void> {
    await this.redis.set(this.key(id), JSON.stringify(record), "EX", WEEK_S);
  }
  async delete(id: bigint): Promise<void> {
    await this.redis.del(this.key(id));
  }
  async ids(): Promise<bigint[]> {
    const keys = await this.redis.keys(this.key("*"));
    return keys.map((k) => BigInt(k.slice(k.lastIndexOf(":") + 1)));
  }
}
