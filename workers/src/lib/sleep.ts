export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/** Exponential backoff with full jitter: attempt 0 → up to base, doubling up to max. */
export const backoff = (attempt: number, baseMs = 250, maxMs = 10_000) =>
  Math.floor(Math.random() * Math.min(maxMs, baseMs * 2 ** attempt));
