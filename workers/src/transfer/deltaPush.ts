import { createHash } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { BlosmError } from "../lib/errors.ts";
import type { LayerDelta } from "./layerDelta.ts";

/**
 * Where the final image goes, spoken to over the registry's HTTP API (distribution spec) rather than through the
 * engine. `ca`: the registry's certificate as pinned from the chain (https); none: plain http (a registry the
 * engine lists as insecure). `token`: the bearer token the destination minted for this repository.
 */
export type RegistryTarget = { repository: string; token?: string; ca?: string };

const SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG = "application/vnd.docker.container.image.v1+json";
const LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const TIMEOUT_MS = 30_000;
/** Answers read here are manifests, configurations and error texts: kilobytes. More is refused, not buffered. */
const MAX_ANSWER_BYTES = 4 * 2 ** 20;

type Descriptor = { mediaType: string; size: number; digest: string };
type Manifest = { schemaVersion: 2; mediaType: string; config: Descriptor; layers: Descriptor[] };
type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/**
 * Publishes `base` (an image already in this repository: the pre-copy) plus the final delta as one image tagged
 * `tag`, without the engine: the delta goes up gzipped as one blob, then the new configuration (base's, with the
 * delta's diff id, `labels` and a history entry) and a manifest that lists base's layers (already there) and the
 * delta's. Returns the manifest's digest, checked against what the registry answers, and the bytes sent.
 * Loading the delta into the source's engine and pushing from there took ~0.3 s of the freeze (bench:transfer).
 */
export async function pushDeltaImage(
  target: RegistryTarget, base: `sha256:${string}`, delta: LayerDelta, tag: string, labels: Record<string, string>,
): Promise<{ digest: `sha256:${string}`; configDigest: `sha256:${string}`; bytes: number }> {
  const api = registryApi(target);
  const [manifest, layer] = await Promise.all([
    api.json<Manifest>("GET", `manifests/${base}`, { accept: SCHEMA2 }, base),
    promisify(gzip)(delta.layer, { level: 1 }),
  ]);
  if (manifest.mediaType !== SCHEMA2 || !manifest.config?.digest || !Array.isArray(manifest.layers)) {
    throw new BlosmError(`${target.repository}@${base} is not a Docker image manifest (schema 2): cannot build on it`);
  }
  const baseConfig = await api.json<{ config?: { Labels?: Record<string, string> }; rootfs: { diff_ids: string[] }; history?: unknown[] }>("GET", `blobs/${manifest.config.digest}`, {}, manifest.config.digest);
  const config = Buffer.from(JSON.stringify({
    ...baseConfig,
    created: new Date().toISOString(),
    config: { ...baseConfig.config, Labels: { ...(baseConfig.config?.Labels ?? {}), ...labels } },
    rootfs: { type: "layers", diff_ids: [...baseConfig.rootfs.diff_ids, delta.diffId] },
    history: [...(baseConfig.history ?? []), { created: new Date().toISOString(), created_by: "blosm: changes since the pre-copy, frozen" }],
  }));
  const layerDesc = { mediaType: LAYER_GZIP, size: layer.length, digest: sha256(layer) };
  const configDesc = { mediaType: CONFIG, size: config.length, digest: sha256(config) };
  await Promise.all([api.upload(layer, layerDesc.digest), api.upload(config, configDesc.digest)]);
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: SCHEMA2, config: configDesc, layers: [...manifest.layers, layerDesc] }));
  const digest = sha256(body) as `sha256:${string}`;
  const put = await api.call("PUT", `manifests/${tag}`, { "content-type": SCHEMA2 }, body);
  if (put.status !== 201) throw api.refused("PUT", `manifests/${tag}`, put);
  const answered = put.headers["docker-content-digest"];
  if (answered !== undefined && answered !== digest) {
    throw new BlosmError(`${target.repository}: the registry stored the manifest as ${String(answered)}, not ${digest} as sent`);
  }
  return { digest, configDigest: configDesc.digest as `sha256:${string}`, bytes: layer.length + config.length + body.length };
}

/** The registry's /v2 API for one repository, with the bearer token and the pinned certificate (if any). */
function registryApi(t: RegistryTarget) {
  const slash = t.repository.indexOf("/");
  if (slash <= 0) throw new BlosmError(`"${t.repository}" is not registry/repository`);
  const base = `${t.ca ? "https" : "http"}://${t.repository.slice(0, slash)}/v2/${t.repository.slice(slash + 1)}/`;
  const call = (method: string, url: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> => {
    const full = new URL(url, base);
    const send = full.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(full, {
        method, timeout: TIMEOUT_MS, ...(t.ca ? { ca: t.ca } : {}),
        headers: { ...headers, ...(t.token ? { authorization: `Bearer ${t.token}` } : {}), ...(body ? { "content-length": String(body.length) } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`answer over ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
      req.on("error", (e) => reject(new BlosmError(`registry ${full.host}: ${method} ${full.pathname} failed: ${e.message}`, { cause: e, retryable: true })));
      req.end(body);
    });
  };
  // The registry's error text is its own (names the blob or manifest); a token is never part of it.
  const refused = (method: string, url: string, a: Answer) =>
    new BlosmError(`registry ${t.repository}: ${method} ${url} answered ${a.status}: ${a.body.toString("utf8").slice(0, 300)}`, { retryable: a.status >= 500 });
  return {
    call,
    refused,
    /**
     * `digest`: what the answer must hash to. The registry is the destination's: the pre-copy's manifest and
     * configuration the final image is built on are checked against the digests the source's own push reported,
     * so what goes on-chain is what the source snapshotted, whatever that registry serves.
     */
    async json<T>(method: string, url: string, headers: Record<string, string> = {}, digest?: string): Promise<T> {
      const a = await call(method, url, headers);
      if (a.status !== 200) throw refused(method, url, a);
      if (digest !== undefined && sha256(a.body) !== digest) {
        throw new BlosmError(`registry ${t.repository}: ${method} ${url} answered content that does not hash to ${digest}`);
      }
      try {
        return JSON.parse(a.body.toString("utf8")) as T;
      } catch {
        throw new BlosmError(`registry ${t.repository}: ${method} ${url} answered something that is not JSON`);
      }
    },
    /** A blob in two requests (open an upload, then PUT it whole with its digest), as the engine does for small ones. */
    async upload(blob: Buffer, digest: string): Promise<void> {
      const opened = await call("POST", "blobs/uploads/");
      const location = opened.headers.location;
      if (opened.status !== 202 || typeof location !== "string") throw refused("POST", "blobs/uploads/", opened);
      const at = new URL(location, base);
      at.searchParams.set("digest", digest);
      const done = await call("PUT", at.href, { "content-type": "application/octet-stream" }, blob);
      if (done.status !== 201) throw refused("PUT", "blobs/uploads/…", done);
    },
  };
}
