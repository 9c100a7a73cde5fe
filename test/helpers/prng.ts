/** Small deterministic PRNG (mulberry32) so fuzz cases are reproducible from the printed seed. */
export function prng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  /** An integer in [min, max], biased towards the edges where bugs live. */
  const int = (min: number, max: number) => {
    const r = next();
    if (r < 0.15) return min;
    if (r < 0.3) return max;
    return min + Math.floor(next() * (max - min + 1));
  };
  return { next, int, pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
