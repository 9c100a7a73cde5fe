import tar from "tar-stream";

/** A tar entry's path as the engine's archive names it, without a trailing slash ("data", "data/sub/f"). */
export const entryPath = (name: string): string => name.replace(/\/+$/, "");

/**
 * Re-packs a tar stream, keeping the entries `keep` accepts; every entry's header is seen (so callers can list
 * the whole tree in the same pass), skipped entries' contents are drained, never buffered.
 */
export function filterArchive(input: NodeJS.ReadableStream, keep: (header: tar.Headers) => boolean): NodeJS.ReadableStream {
  const extract = tar.extract();
  const pack = tar.pack();
  extract.on("entry", (header, stream, next) => {
    if (!keep(header)) {
      stream.on("end", next);
      stream.resume();
      return;
    }
    stream.pipe(pack.entry(header, (err) => (err ? extract.destroy(err) : next())));
  });
  extract.on("finish", () => pack.finalize());
  extract.on("error", (e) => pack.destroy(e));
  input.pipe(extract);
  return pack as unknown as NodeJS.ReadableStream;
}

/**
 * What a delta keeps: directories (so paths exist), paths the previous copy did not have (new, renamed, or copied
 * with an old mtime), and files modified at or after `since` (ms). Tar mtimes are whole seconds, so anything
 * stamped within the second before `since` is kept too.
 */
export function changedSince(header: tar.Headers, since: number, previous: ReadonlySet<string>): boolean {
  if (header.type === "directory" || !previous.has(entryPath(header.name))) return true;
  return header.mtime !== undefined && header.mtime.getTime() >= Math.floor(since / 1000) * 1000 - 1000;
}
