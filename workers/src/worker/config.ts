import { z } from "zod";
import { addressSchema, urlSchema } from "../lib/schemas.ts";
import { loadConfigFile, parseConfig } from "../lib/configFile.ts";
import { isPinned } from "../engine/imageRef.ts";
import { HOST_PORT, isRegistryAddress } from "../registryAuth/registryAddress.ts";


/** A worker's configuration: one per edge cluster. Parsed and validated once at start. */
export const WorkerConfigSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and dashes, up to 63"),
  rpcUrl: urlSchema(["http:", "https:"]),
  /**
   * The same node's WebSocket endpoint, for new heads pushed as blocks are sealed (geth: --ws; the Hardhat node:
   * its HTTP port). Optional: without it, or while it is down, the worker polls every pollMs.
   */
  rpcWsUrl: urlSchema(["ws:", "wss:"]).optional(),
  registryAddress: addressSchema,
  chainId: z.number().int().positive().optional(),
  startBlock: z.number().int().nonnegative().default(0),
  confirmations: z.number().int().min(1).max(64).default(2),
  pollMs: z.number().int().min(50).max(60_000).default(1000),
  clique: z.union([z.object({ signers: z.array(addressSchema).min(1) }), z.object({ signers: z.literal("rpc") })]).optional(),
  key: z.union([z.object({ keystore: z.string().min(1), passwordFile: z.string().min(1) }), z.object({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/) })]),
  redisUrl: urlSchema(["redis:", "rediss:"]),
  dockerSocket: z.string().min(1).default("/var/run/docker.sock"),
  /** This cluster's own image registry, host:port as peers' engines dial it: snapshots for this cluster go there. */
  imageRegistry: z.string().regex(HOST_PORT, "must be host:port of this cluster's image registry").refine(isRegistryAddress, "port must be 1-65535"),
  /**
   * That registry's security (docker-registry with TLS and token auth; `blosm image-registry init` makes the files): its
   * TLS certificate, whose SHA-256 the worker publishes on-chain for peers to pin, and the key the worker signs
   * per-migration tokens with (the registry trusts its certificate). Issuer and service match the registry's config.
   */
  registryAuth: z.object({
    tlsCertFile: z.string().min(1),
    tokenKeyFile: z.string().min(1),
    tokenCertFile: z.string().min(1),
    issuer: z.string().min(1).default("blosm-worker"),
    service: z.string().min(1).default("blosm-registry"),
  }),
  /** Where this cluster's Docker Engine reads registry CAs (dockerd: /etc/docker/certs.d); peers' pinned certs go here. */
  engineCertsDir: z.string().min(1).default("/etc/docker/certs.d"),
  appTypes: z.array(z.string().min(1).max(31)).min(1),
  /**
   * Base images (pinned by digest) this cluster expects to receive services on: pushed into its registry's
   * repository of bases at start, in the background, so the first move of each only mounts it (worker/warmBases.ts).
   */
  warmBases: z.array(z.string().refine(isPinned, "must be an image pinned by digest (<repository>@sha256:<64 hex>)")).max(64).default([]),
  allocatable: z.object({ cpuMillicores: z.number().int().positive().optional(), memoryMiB: z.number().int().positive().optional() }).default({}),
  nvidiaSmiFile: z.string().optional(),
  policy: z.enum(["strict", "blosm"]).default("strict"),
  concurrency: z.object({
    // Evaluations overlap only in their chain reads and offer transactions: probe, decide and reserve take a lock.
    // An evaluation holds its slot until the offer's receipt (one or two blocks), so a burst of requests for this
    // node must not queue behind slots that only wait: a request still queued when the window closes is lost.
    evaluate: z.number().int().min(1).max(64).default(16),
    outbound: z.number().int().min(1).max(16).default(2),
    inbound: z.number().int().min(1).max(16).default(1),
  }).default({ evaluate: 16, outbound: 2, inbound: 1 }),
  api: z.object({ host: z.string().default("127.0.0.1"), port: z.number().int().min(0).max(65535).default(0), tokenEnv: z.string().default("BLOSM_API_TOKEN") }).default({ host: "127.0.0.1", port: 0, tokenEnv: "BLOSM_API_TOKEN" }),
  readyTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
  deadlineSeconds: z.number().int().min(10).max(86_400).default(600),
  txStuckAfterMs: z.number().int().min(100).default(30_000),
  /**
   * A node that is not a request's preferred destination waits this long before evaluating it: the preferred
   * destination's offer assigns at once, so the others usually find it settled and spend no probe and no gas; if
   * it does not offer, theirs still land within the window. Keep it under the registry's offer window.
   */
  fallbackOfferDelayMs: z.number().int().min(0).max(60_000).default(1000),
  /**
   * A source whose request has a preferred destination and got no offer in the window waits this long more for
   * it before cancelling: the registry assigns the preferred destination's offer after the window too, and under
   * load it is the one most often late. 0 = cancel at the window's end.
   */
  preferredGraceMs: z.number().int().min(0).max(60_000).default(5000),
  /** The source keeps serving this long after completion, so clients switched late lose nothing. */
  retireGraceMs: z.number().int().min(0).max(600_000).default(5000),
  /** This cluster's gateway, as peers' gateways reach it; served on GET /cluster so they can forward to it. */
  gatewayUrl: urlSchema(["http:", "https:"]).optional(),
  /**
   * How often the worker reconciles its containers with the chain's record of each service (retire stale copies,
   * resume frozen ones, remove half-moved ones), whatever Redis remembers; 0 = never.
   */
  reconcileSeconds: z.number().int().min(0).max(3600).default(10),
  /** How often free capacity goes on-chain (reportCapacity), when it changed; 0 = never. */
  capacityReportSeconds: z.number().int().min(0).max(86_400).default(30),
});

export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

/** Validates a parsed object; every problem is named at once (lib/configFile.ts). */
export function parseWorkerConfig(raw: unknown): WorkerConfig {
  return parseConfig(WorkerConfigSchema, raw);
}

export function loadWorkerConfig(file: string): Promise<WorkerConfig> {
  return loadConfigFile(file, parseWorkerConfig);
}
