import { toJson } from "./json.ts";

/**
 * One error base for the workers (after viem's BaseError): a short message for users, optional details and
 * cause, and whether retrying can help. Non-retryable errors become BullMQ UnrecoverableErrors in jobs.
 */
export class BlosmError extends Error {
  override name = "BlosmError";
  readonly shortMessage: string;
  readonly details?: string;
  readonly retryable: boolean;

  constructor(shortMessage: string, opts: { details?: string; cause?: unknown; retryable?: boolean } = {}) {
    super(opts.details ? `${shortMessage}\n\nDetails: ${opts.details}` : shortMessage, { cause: opts.cause });
    this.shortMessage = shortMessage;
    this.details = opts.details;
    this.retryable = opts.retryable ?? false;
  }
}

/** A bad configuration value, CLI flag or input: names the field and what was wrong. Never retryable. */
export class ConfigError extends BlosmError {
  override name = "ConfigError";
  constructor(readonly field: string, problem: string) {
    super(`${field}: ${problem}`);
  }
}

/** The RPC endpoint failed or is unreachable; retrying later may help. */
export class RpcError extends BlosmError {
  override name = "RpcError";
  constructor(shortMessage: string, opts: { details?: string; cause?: unknown } = {}) {
    super(shortMessage, { ...opts, retryable: true });
  }
}

/** The RPC endpoint answered something that cannot be true (bad seal, broken hash chain, malformed data). */
export class ChainIntegrityError extends BlosmError {
  override name = "ChainIntegrityError";
}

/** A contract call reverted with a decoded custom error. Retrying the same call cannot help. */
export class ContractRevertError extends BlosmError {
  override name = "ContractRevertError";
  constructor(
    readonly functionName: string,
    readonly errorName: string,
    readonly args: readonly unknown[],
    opts: { cause?: unknown; txHash?: string } = {},
  ) {
    super(`${functionName} reverted: ${errorName}(${args.map(formatArg).join(", ")})`, {
      cause: opts.cause,
      details: opts.txHash ? `transaction ${opts.txHash}` : undefined,
    });
    this.txHash = opts.txHash;
  }
  readonly txHash?: string;
}

function formatArg(value: unknown): string {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "object" && value !== null) return toJson(value);
  return String(value);
}

/** Whether an error may go away if the same operation is retried later. */
export function isRetryable(error: unknown): boolean {
  return error instanceof BlosmError ? error.retryable : true;
}
