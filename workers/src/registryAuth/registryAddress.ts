import { BlosmError } from "../lib/errors.ts";

/** host:port; the port range is checked apart (a JSON Schema pattern for editors, the range here). */
export const HOST_PORT = /^([a-z0-9.-]+):(\d{1,5})$/i;

/** A registry address as engines dial it, "host:port" (IPv4 or DNS name, port 1-65535); undefined when it is not one. */
export function splitRegistryAddress(address: string): { host: string; port: number } | undefined {
  const m = HOST_PORT.exec(address);
  const port = Number(m?.[2]);
  return m && port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

export const isRegistryAddress = (address: string): boolean => splitRegistryAddress(address) !== undefined;

/** As splitRegistryAddress, throwing an error that names the address. */
export function parseRegistryAddress(address: string): { host: string; port: number } {
  const a = splitRegistryAddress(address);
  if (!a) throw new BlosmError(`registry address "${address.slice(0, 80)}" is not host:port`);
  return a;
}
