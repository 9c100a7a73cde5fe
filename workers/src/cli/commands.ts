/**
 * The command table: every command's name, summary, flags and help, and where its code lives. main.ts answers
 * --help, parses flags and checks required ones from this table alone; a command's module (and the libraries it
 * needs: viem, dockerode, BullMQ…) is imported only when that command runs. Keep this file free of heavy imports:
 * `blosm --help` and `blosm --version` answer in well under half a second because of it (test/cliStartup.test.ts).
 */
import { REASONS } from "../chain/reasons.ts";
import { APPS, CLUSTERS } from "../plane/topology.ts";
import type { CommandSpec, Options } from "./command.ts";

const json = { json: { type: "boolean", default: false } } as const;
const jsonHelp = { json: "print as JSON" };

const planeOptions = {
  speed: { type: "string", default: "100" },
  rate: { type: "string", default: "4" },
  cars: { type: "string", default: "1" },
  scenario: { type: "string", default: "straight" },
  app: { type: "string", default: "driver-profiling" },
  busy: { type: "string" },
  bandwidth: { type: "string", default: "0" },
  keep: { type: "boolean", default: false },
  stateful: { type: "boolean", default: false },
} as const;
const planeHelp = {
  speed: "car speed in m/s (time-lapse: a real car is slower)",
  rate: "requests per second each car sends",
  cars: "how many cars drive the route (one service container each), 1-8",
  scenario: "straight: the cars drive east along the road; mixed: three cars, one straight, one slower with turns, one turning back inside the overlap of two coverages",
  app: `the service the cars call: ${APPS.join(" or ")}`,
  busy: `a cluster (${CLUSTERS.map((c) => c.name).join(", ")}) with no resources left: its gateway forwards every request (BloSM's insufficient-resources case)`,
  bandwidth: "shape each cluster's link to this many Mbit/s (0 = unshaped; BloSM used ~40)",
  keep: "stay up after the drive until Ctrl-C",
  stateful: "the cars' containers are stateful: pre-copied ahead of a crossing, frozen only as the car crosses, then the final delta",
};

const registryOptions: Options = {
  rpc: { type: "string", default: process.env.BLOSM_RPC_URL ?? "http://127.0.0.1:8545" },
  registry: { type: "string" },
  ...json,
};
const registryHelp = {
  rpc: "JSON-RPC URL of a chain node (env BLOSM_RPC_URL)",
  registry: "MigrationRegistry address (env BLOSM_REGISTRY; default: the local Ignition deployment)",
  ...jsonHelp,
};
const nodeWriteOptions: Options = {
  ...registryOptions,
  operator: { type: "string" }, lat: { type: "string" }, lon: { type: "string" },
  radius: { type: "string", default: "1500" }, cpu: { type: "string" }, memory: { type: "string" },
  gpus: { type: "string", default: "0" }, "gpu-memory": { type: "string", default: "0" }, app: { type: "string", multiple: true },
  "key-env": { type: "string", default: "BLOSM_ADMIN_KEY" }, keystore: { type: "string" }, "password-file": { type: "string" },
};
const nodeWriteHelp = {
  ...registryHelp,
  operator: "the node's worker address", lat: "latitude in degrees", lon: "longitude in degrees", radius: "coverage radius in metres",
  cpu: "total CPU in millicores", memory: "total memory in MiB", gpus: "GPU count", "gpu-memory": "total GPU memory in MiB",
  app: "app type it runs (repeatable)", "key-env": "env var holding the admin key", keystore: "admin keystore file (instead of --key-env)",
  "password-file": "password file for --keystore",
};
const nodeWriteRequired = ["operator", "lat", "lon", "cpu", "memory", "app"];

export const COMMANDS: CommandSpec[] = [
  {
    name: "up",
    summary: "Bring up a local edge plane (chain, registry contract, Redis, image registry, 3 clusters with worker and gateway) and drive a car across it",
    options: planeOptions, help: planeHelp,
    load: async () => (await import("./up.ts")).runUp,
  },
  {
    name: "simulate",
    summary: "Drive cars across a fresh local edge plane and print every request (end-to-end time, who served it, migration gaps), with a plot",
    options: { ...planeOptions, plot: { type: "string", default: "blosm-simulate.svg" }, ...json },
    help: { ...planeHelp, plot: "write the plot of end-to-end time over request number here (SVG)", json: "print one JSON object per request and a JSON summary instead of text" },
    load: async () => (await import("./up.ts")).runSimulate,
  },
  {
    name: "down",
    summary: "Stop a local edge plane left behind by a killed `blosm up` or `simulate` (engines, namespaces, registry, files)",
    options: { ...json }, help: { json: "print what was found and stopped as JSON" },
    load: async () => (await import("./up.ts")).runDown,
  },
  {
    name: "doctor",
    summary: "Check that this cluster can join: chain, registry contract, key, role, node record, Redis, Docker, GPUs, image registry, token (✓/✗ with the fix)",
    options: { config: { type: "string" }, gateway: { type: "string" }, ...json },
    help: { config: "worker configuration to check (JSON)", gateway: "this cluster's gateway configuration, checked too (JSON)", ...jsonHelp },
    required: ["config"],
    load: async () => (await import("./doctor.ts")).runDoctor,
  },
  {
    name: "worker",
    summary: "Run this edge cluster's worker (events → jobs, self-evaluation, offers, transfers); Ctrl-C stops it",
    options: { config: { type: "string" } }, help: { config: "worker configuration (JSON; see README: Configuration, and schemas/worker.schema.json)" },
    required: ["config"],
    load: async () => (await import("./worker.ts")).runWorkerCommand,
  },
  {
    name: "gateway",
    summary: "Run this edge cluster's gateway (clients POST /apps/<type>/infer; short of resources → neighbour; left coverage → migrate); Ctrl-C stops it",
    options: { config: { type: "string" } }, help: { config: "gateway configuration (JSON; see README: Configuration, and schemas/gateway.schema.json)" },
    required: ["config"],
    load: async () => (await import("./gateway.ts")).runGatewayCommand,
  },
  {
    name: "migrate",
    summary: "Ask this cluster's worker to migrate a container (it posts the request on-chain)",
    positionals: "<container>",
    options: { worker: { type: "string", default: "http://127.0.0.1:8700" }, to: { type: "string" }, reason: { type: "string", default: "manual" }, ...json },
    help: { worker: "the worker API URL (token from BLOSM_API_TOKEN)", to: "preferred destination node (operator address)", reason: `one of ${Object.keys(REASONS).join(", ")}`, ...jsonHelp },
    load: async () => (await import("./worker.ts")).runMigrate,
  },
  {
    name: "status",
    summary: "Show one migration: state, parties, offers, digest and timings",
    positionals: "<id>",
    options: registryOptions, help: registryHelp,
    load: async () => (await import("./registry.ts")).runStatus,
  },
  {
    name: "history",
    summary: "Migrations from the chain's events: filter by service, node, app type, block or time range",
    options: {
      ...registryOptions,
      service: { type: "string" }, node: { type: "string" }, app: { type: "string" },
      "from-block": { type: "string" }, "to-block": { type: "string" }, since: { type: "string" }, until: { type: "string" },
    },
    help: {
      ...registryHelp,
      service: "service id (0x + 64 hex) whose container to follow",
      node: "only migrations this node (address) was source or destination of",
      app: "only this app type (e.g. driver-profiling)",
      "from-block": "first block to search", "to-block": "last block to search",
      since: "only migrations requested at or after this time (ISO 8601)", until: "only those requested before this time (ISO 8601)",
    },
    load: async () => (await import("./registry.ts")).runHistory,
  },
  {
    name: "node list",
    summary: "List the registered edge nodes",
    options: registryOptions, help: registryHelp,
    load: async () => (await import("./registry.ts")).runNodeList,
  },
  {
    name: "node register",
    summary: "Register an edge node (admin)",
    options: { ...nodeWriteOptions, endpoint: { type: "string" } },
    help: { ...nodeWriteHelp, endpoint: "how peers and clients reach it" },
    required: [...nodeWriteRequired, "endpoint"],
    load: async () => (await import("./registry.ts")).runNodeRegister,
  },
  {
    name: "node update",
    summary: "Update an edge node's location, coverage, capacity and app types (admin)",
    options: nodeWriteOptions, help: nodeWriteHelp,
    required: nodeWriteRequired,
    load: async () => (await import("./registry.ts")).runNodeUpdate,
  },
  {
    name: "image-registry init",
    summary: "Make a cluster's private snapshot registry: TLS and token keys, docker-registry config, worker config fragment",
    options: { dir: { type: "string" }, address: { type: "string" }, realm: { type: "string" }, ...json },
    help: {
      dir: "folder to write (keys 0600, config.yml)", address: "host:port peers' engines dial the registry at",
      realm: "where clients without a token are sent (default: the worker API on that host, port 8700)", ...jsonHelp,
    },
    required: ["dir", "address"],
    load: async () => (await import("./imageRegistry.ts")).runImageRegistryInit,
  },
  {
    name: "chain genesis",
    summary: "Generate a private Clique network: genesis, signer keystores, static peers, geth v1.13.15 compose file",
    options: {
      signers: { type: "string", default: "3" },
      "chain-id": { type: "string", default: "31338" },
      period: { type: "string", default: "1" },
      epoch: { type: "string", default: "30000" },
      prefund: { type: "string", multiple: true },
      "rpc-port": { type: "string", default: "8545" },
      out: { type: "string", default: ".blosm/clique" },
      ...json,
    },
    help: {
      signers: "number of sealing signers (1-32)",
      "chain-id": "chain id of the private network",
      period: "seconds between blocks (Clique period)",
      epoch: "blocks between checkpoints (votes reset)",
      prefund: "worker account to fund at genesis (repeatable)",
      "rpc-port": "first loopback port for the signers' JSON-RPC",
      out: "output folder (must be empty; holds secrets: keep it out of git)",
      json: "print the result as JSON",
    },
    load: async () => (await import("./chain.ts")).runGenesis,
  },
  {
    name: "chain signers",
    summary: "List the authorized Clique signers (clique_getSigners)",
    options: { rpc: { type: "string", default: process.env.BLOSM_RPC_URL ?? "http://127.0.0.1:8545" }, ...json },
    help: { rpc: "JSON-RPC URL of a Clique node with the clique API (env BLOSM_RPC_URL, as status and history)", ...jsonHelp },
    load: async () => (await import("./chain.ts")).runSigners,
  },
  {
    name: "chain propose",
    summary: "Vote to add or remove a Clique signer (clique_propose) on one or more signers' nodes",
    options: { rpc: { type: "string", multiple: true }, address: { type: "string" }, add: { type: "boolean", default: false }, remove: { type: "boolean", default: false }, ...json },
    help: {
      rpc: "JSON-RPC URL of a signer's node (repeat for each signer: a change needs a majority)",
      address: "the signer to vote on",
      add: "vote to authorize it (a new edge cluster joining)",
      remove: "vote to deauthorize it",
      ...jsonHelp,
    },
    required: ["rpc", "address"],
    load: async () => (await import("./chain.ts")).runPropose,
  },
];
