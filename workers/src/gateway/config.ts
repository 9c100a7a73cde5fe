import { z } from "zod";
import { addressSchema, urlSchema } from "../lib/schemas.ts";
import { loadConfigFile, parseConfig } from "../lib/configFile.ts";
import { isPinned } from "../engine/imageRef.ts";
import { DEFAULT_PREDICTION, MAX_SWITCH_LEAD_S } from "./predictor.ts";

const httpUrl = urlSchema(["http:", "https:"]);

const needs = z.object({
  cpuMillicores: z.number().int().min(0).default(0),
  memoryMiB: z.number().int().min(0).default(0),
  gpuMemoryMiB: z.number().int().min(0).default(0),
});

/** A gateway's configuration: one per edge cluster, next to that cluster's worker. Parsed and validated once. */
export const GatewayConfigSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and dashes, up to 63"),
  listen: z.object({ host: z.string().min(1).default("127.0.0.1"), port: z.number().int().min(0).max(65535).default(8000) }).default({ host: "127.0.0.1", port: 8000 }),
  rpcUrl: httpUrl,
  registryAddress: addressSchema,
  /** This cluster's operator address in the registry (its location and coverage are read from there). */
  node: addressSchema,
  /** The cluster's worker API (POST /migrate for client mobility), and the env variable holding its bearer token. */
  workerUrl: httpUrl,
  tokenEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).default("BLOSM_API_TOKEN"),
  dockerSocket: z.string().min(1).default("/var/run/docker.sock"),
  /** Where this engine's host-network app containers answer (the cluster's address). */
  appHost: z.string().min(1).default("127.0.0.1"),
  /** App types served, with what one request needs while it runs (BloSM's REQ_res). */
  apps: z.record(z.string(), z.object({
    needs: needs.default({ cpuMillicores: 0, memoryMiB: 0, gpuMemoryMiB: 0 }),
    timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Start a container of this type from this image when none runs here and a request needs one. */
    launch: z.object({
      /** Pinned by digest: a tag can be moved by anyone who can push to the registry, and this gateway would run it. */
      image: z.string().max(255).refine(isPinned, "must be pinned by digest: <repository>@sha256:<64 hex> (docker inspect --format '{{index .RepoDigests 0}}' <image>)"),
      port: z.number().int().min(1).max(65535).default(8080),
      path: z.string().regex(/^\//, "must start with /").default("/infer"),
      cmd: z.array(z.string()).min(1).optional(),
      memoryMiB: z.number().int().min(6).default(64),
      cpuMillicores: z.number().int().min(10).default(500),
    }).optional(),
  })).superRefine((apps, ctx) => {
    if (Object.keys(apps).length === 0) ctx.addIssue({ code: z.ZodIssueCode.custom, message: "at least one app type" });
    for (const key of Object.keys(apps)) {
      if (!/^[a-z0-9][a-z0-9._-]{0,30}$/.test(key)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: "app types are short lowercase names" });
    }
  }),
  allocatable: z.object({ cpuMillicores: z.number().int().positive().optional(), memoryMiB: z.number().int().positive().optional() }).default({}),
  nvidiaSmiFile: z.string().optional(),
  probeMs: z.number().int().min(100).max(60_000).default(1000),
  neighbourRefreshMs: z.number().int().min(200).max(600_000).default(10_000),
  capacityPollMs: z.number().int().min(50).max(60_000).default(500),
  /** How long a request may be held while its service is in flight between clusters. */
  holdTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
  /**
   * Clients prove who they are (an EIP-712 session grant, then Ed25519-signed requests; gateway/clientProof.ts).
   * `unsigned`: what a request naming a client without any proof gets: "refuse" (401) or "shared" (served by a shared
   * container as an anonymous request: never the client's own container, never moving anything).
   */
  clients: z.object({
    unsigned: z.enum(["refuse", "shared"]).default("refuse"),
    clockSkewMs: z.number().int().min(1000).max(600_000).default(30_000),
    maxSessionSeconds: z.number().int().min(60).max(7 * 86_400).default(86_400),
  }).default({ unsigned: "refuse", clockSkewMs: 30_000, maxSessionSeconds: 86_400 }),
  /**
   * Proactive handover (gateway/crossing.ts): from a client's recent fixes, when it will leave this cluster's
   * coverage and whose it enters; the migration starts `lead` seconds ahead, lead = 1.5 × the slowest of the
   * recent mobility migrations here (`expectedMigrationS` before any) + `marginS`. Only clients moving outwards
   * at `minSpeedMps` or more, over at least `minFixes` fixes spanning `minSpanMs`.
   */
  prediction: z.object({
    enabled: z.boolean().default(DEFAULT_PREDICTION.enabled),
    minSpeedMps: z.number().min(0.1).max(1000).default(DEFAULT_PREDICTION.minSpeedMps),
    minFixes: z.number().int().min(2).max(64).default(DEFAULT_PREDICTION.minFixes),
    minSpanMs: z.number().int().min(100).max(60_000).default(DEFAULT_PREDICTION.minSpanMs),
    expectedMigrationS: z.number().min(0.5).max(600).default(DEFAULT_PREDICTION.expectedMigrationS),
    marginS: z.number().min(0).max(600).default(DEFAULT_PREDICTION.marginS),
    switchLeadS: z.number().min(0).max(MAX_SWITCH_LEAD_S).default(DEFAULT_PREDICTION.switchLeadS),
  }).default(DEFAULT_PREDICTION),
  /** How long a request may wait for local capacity when no neighbour has room. */
  queueTimeoutMs: z.number().int().min(0).max(600_000).default(2000),
  maxBodyBytes: z.number().int().min(1024).max(256 * 2 ** 20).default(8 * 2 ** 20),
});

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

/** Validates a parsed object; every problem is named at once (lib/configFile.ts). */
export function parseGatewayConfig(raw: unknown): GatewayConfig {
  return parseConfig(GatewayConfigSchema, raw);
}

export function loadGatewayConfig(file: string): Promise<GatewayConfig> {
  return loadConfigFile(file, parseGatewayConfig);
}
