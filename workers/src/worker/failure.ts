import { BlosmError, isRetryable } from "../lib/errors.ts";

/** Reason codes recorded on-chain with fail(id, code). */
export const FailureCode = {
  ContainerMissing: 1, SnapshotFailed: 2, PullFailed: 3, StartFailed: 4, NotReady: 5, NoCapacity: 6,
  /** The destination's registry did not present the certificate its node recorded on-chain (or recorded none). */
  RegistryUntrusted: 7,
  /** The destination refused, or could not give, the migration's push credential. */
  RegistryRefused: 8,
  Other: 9,
  /** A held stateful move (switchHolds.ts) given up: its client turned back before crossing. */
  ClientTurnedBack: 10,
} as const;
export type FailureCode = (typeof FailureCode)[keyof typeof FailureCode];

/**
 * A step's failure that, once permanent, fails the migration on-chain with this code. Steps wrap each phase's
 * error in one, so the code comes from where it happened, not from reading the message afterwards.
 */
export class StepFailure extends BlosmError {
  override name = "StepFailure";
  constructor(readonly code: FailureCode, shortMessage: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super(shortMessage, { cause: opts.cause, retryable: opts.retryable });
  }

  /** Wraps whatever `phase` throws, keeping its retryability. */
  static async during<T>(code: FailureCode, phase: () => Promise<T>): Promise<T> {
    try {
      return await phase();
    } catch (e) {
      if (e instanceof StepFailure) throw e;
      throw new StepFailure(code, e instanceof Error ? e.message : String(e), { cause: e, retryable: isRetryable(e) });
    }
  }
}

export const failureCodeOf = (error: unknown): FailureCode => (error instanceof StepFailure ? error.code : FailureCode.Other);

/** How loud a permanent failure is logged: a held move given up because its client turned back is the design working. */
export const permanentFailureLevel = (error: unknown): "info" | "error" => (failureCodeOf(error) === FailureCode.ClientTurnedBack ? "info" : "error");

/** The level of BullMQ's "job failed" line: a permanent failure's cause (kept on the UnrecoverableError) decides it. */
export const jobFailedLevel = (err: Error): "info" | "warn" => (permanentFailureLevel(err.cause ?? err) === "info" ? "info" : "warn");
