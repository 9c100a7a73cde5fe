import { BASES_REPOSITORY_PATH } from "../chain/registryView.ts";
import { parsePinned } from "../engine/imageRef.ts";
import { describeError } from "../lib/describeError.ts";
import type { Logger } from "../lib/log.ts";
import type { EnginePort, SnapshotRegistryPort } from "./ports.ts";

/** How far the warm-up got: what GET /healthz reports as `bases`. */
export type BasesWarmth = { of: number; warm: number; failed: number; done: boolean };

/**
 * Puts the bases this cluster expects to receive services on (worker.json `warmBases`) into its registry's
 * repository of bases at start, one at a time, in the background. Without it the first move of each base into
 * this cluster pushed the whole base from its engine while that move waited (2.2 s for the 2 MB sample app in
 * `blosm simulate`, beside the serving containers; 9 s for ~264 MB and 76 s for ~2 GB in bench:transfer, longer
 * than a source waits for the pre-stage), and every later move only mounted it. A base that fails is logged and
 * left to the first move's pre-stage, as without warm-up.
 */
export class BaseWarmup {
  readonly state: BasesWarmth;
  /** Resolves when every base was tried (or the worker stopped); never rejects. */
  readonly done: Promise<BasesWarmth>;
  private readonly stopped = new AbortController();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly d: { engine: Pick<EnginePort, "warmBase">; snapshots: Pick<SnapshotRegistryPort, "address" | "mint">; log: Logger },
    images: readonly string[],
  ) {
    this.state = { of: images.length, warm: 0, failed: 0, done: images.length === 0 };
    this.done = this.run(images);
  }

  /** The warm-up of the base with this digest while it runs: a pre-stage of the same base waits for it, then mounts. */
  running(digest: string): Promise<void> | undefined {
    return this.inFlight.get(digest);
  }

  /** Starts no further base; one being pushed finishes on its own (a stop must not wait for a 2 GB push). */
  stop(): void {
    this.stopped.abort();
  }

  private async run(images: readonly string[]): Promise<BasesWarmth> {
    if (images.length === 0) return this.state;
    const t0 = performance.now();
    this.d.log.info("warming the repository of bases", { images: images.length });
    for (const image of images) {
      if (this.stopped.signal.aborted) break;
      const { digest } = parsePinned(image); // the configuration accepted pinned references only
      const one = this.warm(image);
      this.inFlight.set(digest, one);
      await one;
      this.inFlight.delete(digest);
    }
    this.state.done = true;
    this.d.log.info("repository of bases warm", { warm: this.state.warm, failed: this.state.failed, of: this.state.of, ms: Math.round(performance.now() - t0) });
    return this.state;
  }

  private async warm(image: string): Promise<void> {
    const t0 = performance.now();
    try {
      const bases = { repository: `${this.d.snapshots.address}/${BASES_REPOSITORY_PATH}`, token: this.d.snapshots.mint(BASES_REPOSITORY_PATH, ["push", "pull"], 600, "warm bases").token };
      const { pushed } = await this.d.engine.warmBase(image, bases);
      this.state.warm++;
      this.d.log.info("base warmed", { image, ms: Math.round(performance.now() - t0), pushed: pushed ? "pushed" : "there already" });
    } catch (e) {
      this.state.failed++;
      this.d.log.warn("base not warmed; the first move of a service on it pushes it then", { image, error: describeError(e) });
    }
  }
}
