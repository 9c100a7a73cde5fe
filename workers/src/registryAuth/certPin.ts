import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { connect } from "node:tls";
import type { Hex } from "viem";
import { BlosmError } from "../lib/errors.ts";
import { certSha256 } from "./material.ts";
import { parseRegistryAddress } from "./registryAddress.ts";

/** The registry presented a certificate other than the one its node recorded on-chain. Never retryable. */
export class CertMismatchError extends BlosmError {
  override name = "CertMismatchError";
  constructor(readonly address: string, readonly expected: Hex, readonly presented: Hex) {
    super(`registry ${address} presented a certificate with SHA-256 ${presented}, but its node's on-chain record pins ${expected}: refusing to send it anything`);
  }
}

/** The certificate a TLS server presents, as PEM (not trusted yet: the caller compares its hash with the chain). */
export function presentedCert(address: string, timeoutMs = 5000): Promise<string> {
  const { host, port } = parseRegistryAddress(address);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false, servername: /^[\d.]+$/.test(host) ? undefined : host, timeout: timeoutMs }, () => {
      const raw = socket.getPeerX509Certificate()?.raw;
      socket.destroy();
      if (!raw) return reject(new BlosmError(`registry ${address} presented no certificate`, { retryable: true }));
      resolve(`-----BEGIN CERTIFICATE-----\n${raw.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`);
    });
    socket.once("timeout", () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.once("error", (e) => reject(new BlosmError(`cannot reach registry ${address} over TLS: ${e.message}`, { cause: e, retryable: true })));
  });
}

/**
 * Makes this cluster's Docker Engine trust `address` only with the certificate pinned on-chain: fetches what the
 * registry presents, checks its SHA-256 against `expected`, and writes it as the registry's CA in the engine's
 * certs.d (`<certsDir>/<host:port>/ca.crt`, read by dockerd on every push and pull). Someone standing in for the
 * registry cannot present that certificate without its key, so the engine's TLS handshake fails against them.
 */
export async function pinRegistryCert(certsDir: string, address: string, expected: Hex): Promise<string> {
  if (/^0x0{64}$/.test(expected)) throw new BlosmError(`the node behind registry ${address} has no registry certificate on-chain`);
  const pem = await presentedCert(address);
  const presented = certSha256(pem);
  if (presented.toLowerCase() !== expected.toLowerCase()) throw new CertMismatchError(address, expected, presented);
  await writePin(certsDir, address, pem);
  return pem;
}

/** Writes `pem` as the CA dockerd trusts for `address`; returns the folder written. */
export async function writePin(certsDir: string, address: string, pem: string): Promise<string> {
  parseRegistryAddress(address);
  const dir = path.join(certsDir, address);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "ca.crt"), pem);
  return dir;
}

