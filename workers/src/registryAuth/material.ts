import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { Hex } from "viem";
import { BlosmError } from "../lib/errors.ts";

const run = promisify(execFile);

/**
 * What one cluster's image registry needs to be private: a TLS certificate for the addresses peers dial (its
 * SHA-256 goes on-chain, so peers pin it) and a token-signing key whose certificate the registry trusts
 * (`auth.token.rootcertbundle`): the worker mints short-lived, repository-scoped tokens with it.
 */
export type RegistryMaterial = { tlsCertFile: string; tlsKeyFile: string; tokenCertFile: string; tokenKeyFile: string };

/**
 * Creates both key pairs and self-signed certificates (EC P-256) with openssl under `dir`; keys are 0600.
 * `hosts` are the IP addresses and DNS names the registry answers on (subjectAltName).
 */
export async function createRegistryMaterial(dir: string, hosts: string[]): Promise<RegistryMaterial> {
  if (hosts.length === 0) throw new BlosmError("createRegistryMaterial: at least one host");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const m: RegistryMaterial = {
    tlsCertFile: path.join(dir, "tls.crt"), tlsKeyFile: path.join(dir, "tls.key"),
    tokenCertFile: path.join(dir, "token.crt"), tokenKeyFile: path.join(dir, "token.key"),
  };
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  await selfSigned(m.tlsKeyFile, m.tlsCertFile, `/CN=${hosts[0]}`, [`subjectAltName=${san}`]);
  await selfSigned(m.tokenKeyFile, m.tokenCertFile, "/CN=blosm registry token signer", []);
  return m;
}

async function selfSigned(keyFile: string, certFile: string, subject: string, ext: string[]) {
  try {
    await run("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "825",
      "-keyout", keyFile, "-out", certFile, "-subj", subject, ...ext.flatMap((e) => ["-addext", e]),
    ]);
  } catch (e) {
    throw new BlosmError(`openssl could not make ${path.basename(certFile)}: ${(e as Error).message.split("\n")[0]}`, { cause: e });
  }
}

/** SHA-256 of a certificate's DER encoding, as the bytes32 the registry contract keeps for a node. */
export function certSha256(pem: string | Buffer): Hex {
  return `0x${new X509Certificate(pem).fingerprint256.replaceAll(":", "").toLowerCase()}`;
}

export async function certFileSha256(file: string): Promise<Hex> {
  const pem = await readFile(file).catch((e: Error) => {
    throw new BlosmError(`cannot read certificate ${file}: ${e.message}`);
  });
  try {
    return certSha256(pem);
  } catch (e) {
    throw new BlosmError(`${file} is not a PEM certificate: ${(e as Error).message}`);
  }
}
