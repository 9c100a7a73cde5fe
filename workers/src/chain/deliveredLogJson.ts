import type { DeliveredLog } from "./eventSource.ts";

/** A delivered log as the event source keeps it in Redis (JSON, bigints tagged so they come back as bigints). */
export function serialize(log: DeliveredLog): string {
  return JSON.stringify(log, (_, v) => (typeof v === "bigint" ? { $bigint: v.toString() } : v));
}

export function deserialize(text: string): DeliveredLog {
  return JSON.parse(text, (_, v) => (v && typeof v === "object" && typeof v.$bigint === "string" ? BigInt(v.$bigint) : v));
}
