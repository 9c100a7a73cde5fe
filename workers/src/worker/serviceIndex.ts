import type { Redis } from "ioredis";
import type { Hex } from "viem";

/**
 * Service id → the container that serves it here, recorded when a migration is requested, for containers that
 * carry no service-id label of their own.
 */
export class ServiceIndex {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(serviceId: Hex) {
    return `${this.prefix}:service:${serviceId}`;
  }
  async remember(serviceId: Hex, container: string): Promise<void> {
    await this.redis.set(this.key(serviceId), container);
  }
  async lookup(serviceId: Hex): Promise<string | undefined> {
    return (await this.redis.get(this.key(serviceId))) ?? undefined;
  }
}
