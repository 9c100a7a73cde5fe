/** One run's figures at one size, from either plane. NaN where a figure has no meaning for that plane. */
export type Figures = {
  plane: "chain" | "broker";
  n: number;
  migrations: number;
  inFlight: number;
  seconds: number;
  /** Request → assigned: moves naming a preferred destination, open ones (the market decides), and all of them. */
  decision: { preferred: Latency; open: Latency; all: Latency };
  completedMs: { p50: number; p99: number };
  gas: { preferred: number; open: number; offer: number };
  growth: { stateSlots: number; logBytes: number; calldataBytes: number };
  /** Calls to the coordinator (chain node or broker) per worker per block time (1 s). */
  callsPerWorkerPerBlock: { mean: number; max: number };
  offersPerMigration: number;
  cpuPerWorkerPct: number;
  memoryPerWorkerMiB: number;
  outcomes: { completed: number; failed: number; expired: number; cancelled: number; stuck: number; refused: number };
  copies: { lost: number; duplicated: number; misplaced: number };
};
export type Latency = {
  count: number; p50Ms: number; p99Ms: number; p50Blocks: number; p99Blocks: number;
  /** Share decided in the request's own block (an acceptance given beforehand: worker/accept.ts, askCandidates.ts). */
  inRequestBlock?: number;
};
