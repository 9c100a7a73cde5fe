import { FailureCode } from "../../workers/src/worker/failure.ts";
import { decodeEventLog, type Abi, type Address, type Hex, type PublicClient } from "viem";

export type MigrationTrace = {
  id: bigint;
  requestedBlock?: bigint;
  assignedBlock?: bigint;
  assignedAt?: number;
  endedBlock?: bigint;
  endedAt?: number;
  outcome?: "Completed" | "Failed" | "Cancelled" | "Expired";
  /** Why it did not complete: the failure code and the state it failed or expired in (the events carry both). */
  endedHow?: string;
  destination?: Address;
  serviceId?: Hex;
  offers: number;
  txs: Set<Hex>;
};

const ENDINGS = { MigrationCompleted: "Completed", MigrationFailed: "Failed", MigrationCancelled: "Cancelled", MigrationExpired: "Expired" } as const;

/**
 * The bench's own view of the registry (not counted against any worker): polls eth_getLogs every 100 ms, notes
 * when each migration's events were first seen (performance.now()) and in which block, and which transactions
 * touched it (for gas and bytes afterwards).
 */
export class RegistryWatch {
  readonly traces = new Map<bigint, MigrationTrace>();
  head = 0n;
  private next = 0n;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly client: PublicClient, private readonly address: Address, private readonly abi: Abi) {}

  async start(): Promise<void> {
    this.next = await this.client.getBlockNumber();
    const tick = async () => {
      try {
        await this.poll();
      } catch {
        // the next tick reads the same range again
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), 100);
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  trace(id: bigint): MigrationTrace {
    let t = this.traces.get(id);
    if (!t) this.traces.set(id, (t = { id, offers: 0, txs: new Set() }));
    return t;
  }

  private async poll() {
    const head = await this.client.getBlockNumber();
    if (head < this.next) return;
    const logs = await this.client.getLogs({ address: this.address, fromBlock: this.next, toBlock: head });
    const now = performance.now();
    for (const l of logs) {
      let event: { eventName: string; args: Record<string, unknown> };
      try {
        event = decodeEventLog({ abi: this.abi, data: l.data, topics: l.topics }) as unknown as typeof event;
      } catch {
        continue;
      }
      const id = event.args.id;
      if (typeof id !== "bigint") continue;
      const t = this.trace(id);
      t.txs.add(l.transactionHash!);
      if (event.eventName === "MigrationRequested") {
        t.requestedBlock = l.blockNumber!;
        t.serviceId = (event.args.request as { serviceId: Hex }).serviceId;
      }
      if (event.eventName === "MigrationOffered") t.offers++;
      if (event.eventName === "MigrationAssigned") {
        t.assignedBlock = l.blockNumber!;
        t.assignedAt = now;
        t.destination = event.args.destination as Address;
      }
      if (event.eventName in ENDINGS) {
        t.endedBlock = l.blockNumber!;
        t.endedAt = now;
        t.outcome = ENDINGS[event.eventName as keyof typeof ENDINGS];
        t.endedHow = endedHow(event.eventName, event.args);
      }
    }
    this.head = head;
    this.next = head + 1n;
  }
}

const STATES = ["None", "Requested", "Offered", "Assigned", "SnapshotPublished", "Completed", "Failed", "Cancelled", "Expired"];
const CODES: Record<number, string> = Object.fromEntries(Object.entries(FailureCode).map(([name, code]) => [code, name]));

function endedHow(eventName: string, args: Record<string, unknown>): string | undefined {
  if (eventName === "MigrationFailed") return `failed ${CODES[Number(args.code)] ?? `code ${args.code}`} in ${STATES[Number(args.stateAtFailure)]}`;
  if (eventName === "MigrationExpired") return `expired in ${STATES[Number(args.stateAtExpiry)]}`;
  if (eventName === "MigrationCancelled") return "cancelled";
  return undefined;
}
