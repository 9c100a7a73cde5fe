import { createHash } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlosmError } from "../lib/errors.ts";

/**
 * Where an image goes, spoken to over the registry's HTTP API (distribution spec) rather than through the engine.
 * `ca`: the registry's certificate as pinned from the chain (https); none: plain http (a registry the engine
 * lists as insecure). `token`: the bearer token the destination minted for this repository.
 */
export type RegistryTarget = { repository: string; token?: string; ca?: string };

export const SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const CONFIG = "application/vnd.docker.container.image.v1+json";
const TIMEOUT_MS = 30_000;
/** Answers read here are manifests, configurations and error texts: kilobytes. More is refused, not buffered. */
const MAX_ANSWER_BYTES = 4 * 2 ** 20;

export type Descriptor = { mediaType: string; size: number; digest: string };
export type Manifest = { schemaVersion: 2; mediaType: string; config: Descriptor; layers: Descriptor[] };
/** The parts of an image configuration read or changed here; the rest is carried over as it is. */
export type ImageConfig = { config?: { Labels?: Record<string, string> }; rootfs: { type?: string; diff_ids: string[] }; history?: unknown[] };
type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

export const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** The registry's /v2 API for one repository, with the bearer token and the pinned certificate (if any). */
export function registryApi(t: RegistryTarget) {
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
  const parse = <T>(what: string, body: Buffer): T => {
    try {
      return JSON.parse(body.toString("utf8")) as T;
    } catch {
      throw new BlosmError(`registry ${t.repository}: ${what} answered something that is not JSON`);
    }
  };
  const api = {
    call,
    refused,
    /**
     * `digest`: what the answer must hash to. The registry is the destination's: whatever an image is built on
     * here is checked against digests the source knows on its own, so what goes on-chain is what the source
     * vouches for, whatever that registry serves.
     */
    async json<T>(method: string, url: string, headers: Record<string, string> = {}, digest?: string): Promise<T> {
      const a = await call(method, url, headers);
      if (a.status !== 200) throw refused(method, url, a);
      if (digest !== undefined && sha256(a.body) !== digest) {
        throw new BlosmError(`registry ${t.repository}: ${method} ${url} answered content that does not hash to ${digest}`);
      }
      return parse<T>(`${method} ${url}`, a.body);
    },
    /**
     * An image manifest by digest (checked) or by tag; undefined when the registry has no such manifest. Docker
     * (schema 2) and OCI manifests both; an index or anything else is refused by name.
     */
    async manifest(reference: string): Promise<Manifest | undefined> {
      return (await api.manifestWithBytes(reference))?.manifest;
    },
    /** The same, with the bytes as the registry stores them (what its digest is of, to put elsewhere unchanged). */
    async manifestWithBytes(reference: string): Promise<{ manifest: Manifest; bytes: Buffer } | undefined> {
      const url = `manifests/${reference}`;
      const a = await call("GET", url, { accept: `${SCHEMA2}, ${OCI_MANIFEST}` });
      if (a.status === 404) return undefined;
      if (a.status !== 200) throw refused("GET", url, a);
      if (reference.startsWith("sha256:") && sha256(a.body) !== reference) {
        throw new BlosmError(`registry ${t.repository}: GET ${url} answered content that does not hash to ${reference}`);
      }
      const m = parse<Manifest>(`GET ${url}`, a.body);
      if ((m.mediaType !== SCHEMA2 && m.mediaType !== OCI_MANIFEST) || !m.config?.digest || !Array.isArray(m.layers)) {
        throw new BlosmError(`${t.repository}:${reference} is not a single-platform image manifest (got ${String(m.mediaType).slice(0, 80)}): cannot build on it`);
      }
      return { manifest: m, bytes: a.body };
    },
    /** A manifest's configuration, checked against the digest the manifest names. */
    config(m: Manifest): Promise<ImageConfig> {
      return api.json<ImageConfig>("GET", `blobs/${m.config.digest}`, {}, m.config.digest);
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
    /**
     * Uploads `config` and tags a manifest of `on`'s kind that lists `layers` (all already in this repository)
     * with it. Returns the manifest's digest, checked against what the registry answers, and the bytes sent.
     */
    async publish(on: Manifest, config: object, layers: Descriptor[], tag: string): Promise<{ digest: `sha256:${string}`; configDigest: `sha256:${string}`; bytes: number }> {
      const configBlob = Buffer.from(JSON.stringify(config));
      const configDesc = { mediaType: on.mediaType === SCHEMA2 ? CONFIG : on.config.mediaType, size: configBlob.length, digest: sha256(configBlob) };
      await api.upload(configBlob, configDesc.digest);
      const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: on.mediaType, config: configDesc, layers }));
      const digest = await api.putManifest(tag, body, on.mediaType);
      return { digest, configDigest: configDesc.digest as `sha256:${string}`, bytes: configBlob.length + body.length };
    },
    /** Tags `body` (a manifest whose blobs are all in this repository); returns its digest, checked against the registry's. */
    async putManifest(tag: string, body: Buffer, mediaType: string): Promise<`sha256:${string}`> {
      const digest = sha256(body) as `sha256:${string}`;
      const put = await call("PUT", `manifests/${tag}`, { "content-type": mediaType }, body);
      if (put.status !== 201) throw refused("PUT", `manifests/${tag}`, put);
      const answered = put.headers["docker-content-digest"];
      if (answered !== undefined && answered !== digest) {
        throw new BlosmError(`${t.repository}: the registry stored the manifest as ${String(answered)}, not ${digest} as sent`);
      }
      return digest;
    },
  };
  return api;
}
