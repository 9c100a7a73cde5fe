import { BlosmError } from "../lib/errors.ts";

/** `[registry[:port]/]path@sha256:<64 hex>`: an image named by its content, which nobody can re-push under it. */
const PINNED = /^((?:[a-z0-9.-]+(?::\d{1,5})?\/)?[a-z0-9]+(?:(?:[._-]|__|\/)[a-z0-9]+)*)@(sha256:[0-9a-f]{64})$/;

export const isPinned = (reference: string) => PINNED.test(reference);

/**
 * Splits an image reference pinned by digest into what pullByDigest takes. A tag is refused: anyone who can push
 * to the registry can move a tag to an image of theirs, and a cluster would then run it (issue 14).
 */
export function parsePinned(reference: string): { repository: string; digest: string } {
  const m = PINNED.exec(reference);
  if (!m) throw new BlosmError(`image "${reference.slice(0, 120)}" is not pinned by digest (expected <repository>@sha256:<64 hex>; a tag can be re-pushed by anyone who can push to the registry)`, { retryable: false });
  return { repository: m[1]!, digest: m[2]! };
}
