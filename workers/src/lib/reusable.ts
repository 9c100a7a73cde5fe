/**
 * A read whose answer is reused for `ms`: everyone who asks meanwhile shares one promise (a burst of callers costs
 * one call), and a failed read is forgotten at once rather than handed out again. `forget` drops a key early (its
 * source said it changed).
 */
export function reusable<K, V>(ms: number, read: (key: K) => Promise<V>): { get(key: K): Promise<V>; forget(key: K): void } {
  const kept = new Map<K, { at: number; value: Promise<V> }>();
  return {
    get(key) {
      const entry = kept.get(key);
      if (entry && Date.now() - entry.at <= ms) return entry.value;
      const fresh = { at: Date.now(), value: read(key) };
      fresh.value.catch(() => kept.get(key) === fresh && kept.delete(key));
      kept.set(key, fresh);
      return fresh.value;
    },
    forget(key) {
      kept.delete(key);
    },
  };
}
