/**
 * A lock for one process: each call runs after the previous one settled, in call order. What it guards is a
 * read-decide-write on shared state (a node's free capacity), not a whole job.
 */
export function createExclusive(): <T>(f: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>) => {
    const run = tail.then(f, f);
    tail = run.catch(() => undefined);
    return run;
  };
}
