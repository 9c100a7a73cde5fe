/**
 * V8 flags every blosm process runs with (./blosm, the worker image's entrypoint, the plane's cluster processes):
 * a gateway and a worker are long-running servers whose answers are timed, on machines whose apps share the CPUs.
 *
 * Measured with --trace-gc over a 9.5-minute `./blosm simulate --scenario mixed --speed 30`: with V8's defaults
 * each gateway ran 13-16 full mark-compacts (3-24 ms pauses plus ~20 ms of marking on helper threads each). In a
 * traced default simulate every one after the two at start was the memory reducer's ("Mark-Compact (reduce)"): a
 * gateway allocates slowly, so V8 takes it for idle, shrinks its heap and young generation, and the next objects
 * that outlive a 1 MB young generation fill the old one again. With these flags: 3-4 per gateway (two at start,
 * then one every 2-4 minutes); in a default simulate, 12-13 scavenges per gateway instead of 60-71. The cost:
 * ~30 MB more heap per process.
 * - no memory reducer: the heap is not shrunk while a server is quiet (its next burst grows it back anyway);
 * - young generation at 8-16 MB per semi-space: a request's objects die young instead of being promoted.
 */
export const SERVING_V8_FLAGS = ["--no-memory-reducer", "--min-semi-space-size=8", "--max-semi-space-size=16"] as const;

/**
 * A worker thread's execArgv from its process's: Node refuses V8 flags there (they are per process, and the
 * thread has them already), so the serving flags are left out.
 */
export function withoutServingFlags(execArgv: readonly string[]): string[] {
  return execArgv.filter((a) => !(SERVING_V8_FLAGS as readonly string[]).includes(a));
}
