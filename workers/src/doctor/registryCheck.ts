import { Agent, fetch as undiciFetch } from "undici";
import { describeError } from "../lib/describeError.ts";
import { presentedCert } from "../registryAuth/certPin.ts";
import { RegistryKeys } from "../registryAuth/registryKeys.ts";
import { certSha256 } from "../registryAuth/material.ts";
import type { WorkerConfig } from "../worker/config.ts";
import { fail, ok, type Check } from "./check.ts";

/**
 * This cluster's snapshot registry as peers will meet it: it presents the certificate the worker will publish
 * on-chain (peers pin that hash), it refuses requests without a token, and it accepts a token signed with the
 * worker's key (so its token config and the worker's agree). The token is minted for the check and never shown.
 */
export async function imageRegistryCheck(config: Pick<WorkerConfig, "imageRegistry" | "registryAuth">): Promise<Check> {
  const name = "image registry";
  const address = config.imageRegistry;
  let own: RegistryKeys;
  try {
    own = await RegistryKeys.load(config.registryAuth);
  } catch (e) {
    return fail(name, describeError(e), "blosm image-registry init makes the files; point registryAuth at them");
  }
  let presented: string;
  try {
    presented = await presentedCert(address, 3000);
  } catch (e) {
    return fail(name, `${address} does not answer TLS: ${describeError(e)}`, "start the cluster's registry (docker-registry with the config blosm image-registry init wrote) or correct imageRegistry");
  }
  if (certSha256(presented) !== own.certSha256) {
    return fail(name, `${address} presents a certificate (SHA-256 ${certSha256(presented)}) other than registryAuth.tlsCertFile (${own.certSha256}): peers would refuse it`, "serve the certificate in registryAuth.tlsCertFile");
  }
  const agent = new Agent({ connect: { ca: presented, servername: undefined } });
  try {
    const anonymous = await undiciFetch(`https://${address}/v2/`, { dispatcher: agent, signal: AbortSignal.timeout(3000) });
    if (anonymous.status !== 401) return fail(name, `${address} answers /v2/ without a token (HTTP ${anonymous.status}): anyone could read snapshots`, "enable token auth (auth.token in its config)");
    const { token } = own.mint("blosm/doctor", ["pull"], 60, "blosm doctor");
    const signed = await undiciFetch(`https://${address}/v2/`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) });
    if (signed.status !== 200) return fail(name, `${address} refuses a token signed with registryAuth.tokenKeyFile (HTTP ${signed.status})`, "the registry's auth.token rootcertbundle, issuer and service must match registryAuth");
    return ok(name, `https://${address}: certificate ${own.certSha256.slice(0, 18)}…, refuses anonymous requests, accepts this worker's tokens`);
  } catch (e) {
    return fail(name, `${address}: ${describeError(e)}`, "check the registry's TLS configuration");
  } finally {
    await agent.close();
  }
}
