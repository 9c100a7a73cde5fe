import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import path from "node:path";
import type Docker from "dockerode";
import tar from "tar-stream";
import { BlosmError } from "../lib/errors.ts";
import { followProgress } from "../engine/progress.ts";
import { mapLimit } from "../lib/mapLimit.ts";

/**
 * The writable layer's final delta (issue 15): a stateful container's layer is committed and pushed while it still
 * serves (the pre-copy, image P); once frozen, only what changed since crosses: the files changed or added, and a
 * whiteout (`.wh.<name>`, the image-spec's deletion marker) for each path deleted since. The delta becomes one more
 * layer on top of P, so the final image is an ordinary image whose first layers are P's: it goes straight to the
 * registry (deltaPush.ts) or, failing that, is loaded into the engine in `docker save` form (loadOnTop) and pushed,
 * uploading only the delta either way, and a destination holding P pulls only the delta. The
 * engine's own commit cannot do this: it always diffs against the container's image, so it would send the whole
 * writable layer again.
 *
 * Change detection compares each path's stat (size, mode, nanosecond mtime, link target) at the pre-copy with its
 * stat at the freeze, both read from the engine on the same host: no clock comparison between machines, and a
 * file rewritten with the same size inside the same nanosecond is the one case it cannot see.
 */

/** Writable-layer path → its stat at the pre-copy ("D": deleted from the image below). */
export type LayerRecord = Map<string, PathStat | "D">;

/** Beyond these the delta is not worth building by hand: the caller commits as before. */
export const MAX_DELTA_ENTRIES = 5000;
export const MAX_DELTA_BYTES = 256 * 2 ** 20;

/** The engine's `docker diff` kinds. */
const DELETED = 2;
/** Go's os.ModeDir in the engine's path stat: its highest bit, beyond JavaScript's 32-bit `&`. */
const MODE_DIR = 2 ** 31;
const isDir = (s: { mode: number }) => s.mode >= MODE_DIR;

type PathStat = { name: string; size: number; mode: number; mtime: string; linkTarget: string };

async function statPath(c: Docker.Container, p: string): Promise<PathStat | undefined> {
  try {
    const res = (await c.infoArchive({ path: p })) as unknown as IncomingMessage;
    res.resume();
    const header = res.headers["x-docker-container-path-stat"];
    return typeof header === "string" ? (JSON.parse(Buffer.from(header, "base64").toString("utf8")) as PathStat) : undefined;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return undefined; // gone between the diff and the stat
    throw e;
  }
}

const same = (a: PathStat, b: PathStat) => a.size === b.size && a.mode === b.mode && a.mtime === b.mtime && a.linkTarget === b.linkTarget;

/**
 * Whether a path goes into the delta: a file or link that is new or whose stat changed; a directory only when it is
 * new or its mode changed. A directory's mtime moves whenever a child changes, and the pre-copy already has it:
 * archiving it again would make the engine walk its whole subtree while the container is frozen.
 */
function goesInDelta(now: PathStat, before: PathStat | "D" | undefined): boolean {
  if (before === undefined || before === "D") return true;
  return isDir(now) ? now.mode !== before.mode : !same(now, before);
}

type LayerEntry = { path: string; stat?: PathStat; deleted: boolean };

/** The writable layer's paths with their stats; undefined past MAX_DELTA_ENTRIES (not worth a delta). */
async function readLayer(c: Docker.Container): Promise<LayerEntry[] | undefined> {
  // An unchanged layer is the JSON `null`, which dockerode hands back unparsed (a Buffer).
  const raw = (await c.changes()) as unknown;
  const changes = (Array.isArray(raw) ? raw : []) as Array<{ Path: string; Kind: number }>;
  if (changes.length > MAX_DELTA_ENTRIES) return undefined;
  return mapLimit(changes, 8, async (ch): Promise<LayerEntry> => ch.Kind === DELETED ? { path: ch.Path, deleted: true } : { path: ch.Path, stat: await statPath(c, ch.Path), deleted: false });
}

/**
 * At the pre-copy, just before P is committed: what the writable layer holds, by path; undefined when it holds
 * more than MAX_DELTA_ENTRIES paths (a delta against it would not be worth building: the caller commits as before).
 */
export async function recordWritableLayer(docker: Docker, container: string): Promise<LayerRecord | undefined> {
  const layer = await readLayer(docker.getContainer(container));
  if (!layer) return undefined;
  const record: LayerRecord = new Map();
  for (const e of layer) {
    if (e.deleted) record.set(e.path, "D");
    else if (e.stat) record.set(e.path, e.stat);
  }
  return record;
}

/** One path's tar entry as the engine archives it (owner, mode, times, content), renamed to its full path. */
async function entryOf(c: Docker.Container, p: string): Promise<{ header: tar.Headers; body: Buffer } | undefined> {
  const archive = (await c.getArchive({ path: p })) as unknown as NodeJS.ReadableStream & { destroy?: () => void };
  const extract = tar.extract();
  return new Promise((resolve, reject) => {
    let done = false;
    extract.on("entry", (header, stream, next) => {
      if (done) {
        stream.resume();
        return next();
      }
      done = true;
      const chunks: Buffer[] = [];
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("end", () => {
        const name = p.replace(/^\/+/, "") + (header.type === "directory" ? "/" : "");
        resolve({ header: { ...header, name, size: header.type === "file" ? header.size : 0 }, body: Buffer.concat(chunks) });
        // A directory's archive holds its whole subtree: only its own entry is wanted.
        archive.destroy?.();
        extract.destroy();
      });
      stream.on("error", reject);
    });
    extract.on("finish", () => done || resolve(undefined));
    extract.on("error", (e) => done || reject(e));
    archive.pipe(extract);
  });
}

export type LayerDelta = { layer: Buffer; diffId: `sha256:${string}`; files: number; deleted: number };

/**
 * At the freeze: the delta layer against `before` (uncompressed tar), or undefined when it is too big to be worth
 * it (the caller then commits the whole writable layer as before).
 */
export async function buildLayerDelta(docker: Docker, container: string, before: LayerRecord): Promise<LayerDelta | undefined> {
  const c = docker.getContainer(container);
  const now = await readLayer(c);
  if (!now) return undefined;
  const present = new Set(now.filter((e) => !e.deleted && e.stat).map((e) => e.path));
  const changedEntries = now.filter((e) => !e.deleted && e.stat && goesInDelta(e.stat, before.get(e.path)));
  // Checked from the stats before anything is read: a delta this big is not worth holding in memory.
  if (changedEntries.reduce((sum, e) => sum + (isDir(e.stat!) ? 0 : e.stat!.size), 0) > MAX_DELTA_BYTES) return undefined;
  const changed = changedEntries.map((e) => e.path).sort(); // parents before children
  const entries = await mapLimit(changed, 8, (p) => entryOf(c, p));
  // Deleted since the pre-copy: a path P has that is gone now (added then removed) or newly hidden (deleted from
  // the image below). A deleted directory's whiteout covers everything under it.
  const gone = new Set([
    ...[...before].filter(([p, was]) => was !== "D" && !present.has(p)).map(([p]) => p),
    ...now.filter((e) => e.deleted && before.get(e.path) !== "D").map((e) => e.path),
  ]);
  const whiteouts = [...gone].filter((p) => ![...ancestors(p)].some((a) => gone.has(a))).sort();

  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (d: Buffer) => chunks.push(d));
  const finished = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  let files = 0;
  for (const e of entries) {
    if (!e) continue;
    if (e.header.type !== "directory") files++;
    await new Promise<void>((resolve, reject) => pack.entry(e.header, e.body, (err) => (err ? reject(err) : resolve())));
  }
  for (const p of whiteouts) {
    const name = path.posix.join(path.posix.dirname(p), `.wh.${path.posix.basename(p)}`).replace(/^\/+/, "");
    await new Promise<void>((resolve, reject) => pack.entry({ name, size: 0, mode: 0o644, mtime: new Date() }, Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await finished;
  const layer = Buffer.concat(chunks);
  return { layer, diffId: `sha256:${createHash("sha256").update(layer).digest("hex")}`, files, deleted: whiteouts.length };
}

function* ancestors(p: string) {
  for (let d = path.posix.dirname(p); d !== "/" && d !== "."; d = path.posix.dirname(d)) yield d;
}

/**
 * Makes `reference` an image of `base`'s layers plus the delta, with `base`'s configuration and `labels` added:
 * loaded in `docker save` form whose manifest lists base's layers without their files (the engine skips layers it
 * has, Docker 20.10's load does exactly that) and the delta's tar. Returns the new image's id.
 */
export async function loadOnTop(docker: Docker, base: string, delta: LayerDelta, reference: string, labels: Record<string, string>): Promise<string> {
  const info = await docker.getImage(base).inspect();
  const baseLayers = info.RootFS.Layers ?? [];
  const config = Buffer.from(JSON.stringify({
    architecture: info.Architecture, os: info.Os, created: new Date().toISOString(),
    config: { ...info.Config, Labels: { ...(info.Config.Labels ?? {}), ...labels } },
    rootfs: { type: "layers", diff_ids: [...baseLayers, delta.diffId] },
  }));
  const configHex = createHash("sha256").update(config).digest("hex");
  const layerPath = (diffId: string) => `${diffId.slice(7)}/layer.tar`;
  const manifest = Buffer.from(JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [reference], Layers: [...baseLayers, delta.diffId].map(layerPath) }]));
  const pack = tar.pack();
  pack.entry({ name: layerPath(delta.diffId) }, delta.layer);
  pack.entry({ name: `${configHex}.json` }, config);
  pack.entry({ name: "manifest.json" }, manifest);
  pack.finalize();
  const loaded = (await docker.loadImage(pack as never, { quiet: true })) as unknown as NodeJS.ReadableStream;
  await followProgress(docker, loaded, (e) => {
    if (e.error) throw new BlosmError(`loading the final delta onto ${base} failed: ${e.error}`, { retryable: true });
  });
  return `sha256:${configHex}`;
}
