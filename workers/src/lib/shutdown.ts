/**
 * One shutdown registry per process part (after Ponder's internal/shutdown.ts): whatever is started registers
 * how to stop it, and `run` stops everything once, last started first, each step bounded so one stuck close
 * cannot hold the rest. Errors are collected, never thrown halfway.
 */
export type Shutdown = {
  /**
   * Registers a close step; returns a function that unregisters it (closed early by its owner). A step added
   * while shutting down (something that finished starting just then) is closed at once.
   */
  add(name: string, close: () => Promise<unknown> | unknown): () => void;
  /** Runs every registered step once, newest first; later calls return the same promise. */
  run(): Promise<Array<{ name: string; error: unknown }>>;
  readonly closing: boolean;
};

export function createShutdown(opts: { stepTimeoutMs?: number } = {}): Shutdown {
  const steps: Array<{ name: string; close: () => Promise<unknown> | unknown }> = [];
  let running: Promise<Array<{ name: string; error: unknown }>> | undefined;
  const stepTimeoutMs = opts.stepTimeoutMs ?? 15_000;
  return {
    add(name, close) {
      if (running) {
        void Promise.resolve().then(close).catch(() => {});
        return () => {};
      }
      const step = { name, close };
      steps.push(step);
      return () => {
        const i = steps.indexOf(step);
        if (i >= 0) steps.splice(i, 1);
      };
    },
    run() {
      running ??= (async () => {
        const errors: Array<{ name: string; error: unknown }> = [];
        for (const step of steps.splice(0).reverse()) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${step.name} did not close within ${stepTimeoutMs} ms`)), stepTimeoutMs);
          });
          try {
            await Promise.race([Promise.resolve().then(step.close), timeout]);
          } catch (error) {
            errors.push({ name: step.name, error });
          } finally {
            clearTimeout(timer);
          }
        }
        return errors;
      })();
      return running;
    },
    get closing() {
      return running !== undefined;
    },
  };
}

/**
 * One request to stop can arrive more than once: `pkill -f` signals the wrappers (npm, tsx) and this process
 * alike, and a wrapper may relay a signal the terminal also sent the whole process group. Signals within this
 * long are one request, not an impatient second press (which, exiting at once, would leave engines and chain
 * nodes running: it did, once, for bench:scale).
 */
const SAME_SIGNAL_MS = 1000;

/**
 * Resolves when the process is asked to stop (SIGINT or SIGTERM, wired here once), after `stop` finished.
 * A second signal while stopping (more than a second after the first) exits at once with 130; `graceMs` bounds
 * the whole stop (then exit 1).
 */
export function onStopSignal(stop: () => Promise<unknown>, opts: { graceMs?: number; onForced?: (why: string) => void } = {}): Promise<void> {
  return new Promise((resolve) => {
    let stoppingSince: number | undefined;
    const handler = (signal: NodeJS.Signals) => {
      if (stoppingSince !== undefined) {
        if (Date.now() - stoppingSince < SAME_SIGNAL_MS) return;
        opts.onForced?.(`second ${signal}: exiting now`);
        process.exit(130);
      }
      stoppingSince = Date.now();
      const grace = setTimeout(() => {
        opts.onForced?.(`still stopping after ${opts.graceMs} ms: exiting`);
        process.exit(1);
      }, opts.graceMs ?? 60_000);
      grace.unref();
      void stop().finally(() => {
        clearTimeout(grace);
        process.off("SIGINT", handler);
        process.off("SIGTERM", handler);
        resolve();
      });
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}
