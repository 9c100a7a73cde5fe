/** Progress lines of a long local-plane command: "▸ what…" then "✓ what (1.2 s)". With --json they go to stderr. */
export type Progress = {
  out(line: string): void;
  step<T>(what: string, fn: () => Promise<T>): Promise<T>;
};

export const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
export const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

export function createProgress(toStderr: boolean): Progress {
  const out = toStderr ? (l: string) => void process.stderr.write(l) : (l: string) => void process.stdout.write(l);
  return {
    out,
    async step(what, fn) {
      const t0 = performance.now();
      out(`${dim("▸")} ${what}…\n`);
      const result = await fn();
      out(`${bold("✓")} ${what} ${dim(`(${((performance.now() - t0) / 1000).toFixed(1)} s)`)}\n`);
      return result;
    },
  };
}
