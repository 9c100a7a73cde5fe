import { BaseError } from "viem";

/**
 * One line for an error, for logs and CLI messages: viem's short message (not its multi-line dump with request
 * bodies), plus the root cause's system code when a connection failed (ECONNREFUSED, ECONNRESET, ...).
 */
export function describeError(e: unknown): string {
  const head = e instanceof BaseError ? e.shortMessage : e instanceof Error ? e.message.split("\n")[0]! : String(e);
  let cause: unknown = e;
  let code: string | undefined;
  let root: string | undefined;
  for (let depth = 0; cause && depth < 8; depth++) {
    const c = cause as { code?: unknown; cause?: unknown; errors?: unknown[]; message?: unknown };
    if (typeof c.code === "string" && /^E[A-Z]+$/.test(c.code)) code = c.code;
    if (depth > 0 && typeof c.message === "string" && c.message) root = c.message.split("\n")[0];
    cause = c.cause ?? c.errors?.[0];
  }
  const why = code ?? root;
  return why && !head.includes(why) ? `${head} (${why})` : head;
}
