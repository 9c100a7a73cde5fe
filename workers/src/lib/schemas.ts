import { getAddress, isAddress, type Address, type Hex } from "viem";
import { z } from "zod";

/**
 * zod schemas for the values every configuration file and peer request shares, so a bad address or URL gets the
 * same message wherever it is read.
 */

/** A 0x-prefixed 20-byte address (a mixed-case one must carry a valid checksum), returned checksummed. */
export const addressSchema = z
  .string()
  .refine((s) => isAddress(s), "must be a 0x-prefixed 20-byte address")
  .transform((s): Address => getAddress(s));

/** A 0x-prefixed 32-byte hex value (service ids, app types, hashes). */
export const bytes32Schema = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x + 64 hex digits") as unknown as z.ZodType<Hex>;

/** A URL whose scheme is one of `protocols` (given as "http:", "ws:", …). */
export function urlSchema(protocols: string[]): z.ZodType<string> {
  return z.string().refine((s) => {
    try {
      return protocols.includes(new URL(s).protocol);
    } catch {
      return false;
    }
  }, `must be a ${protocols.map((p) => p.replace(":", "")).join("/")} URL`);
}
