/**
 * Compares two keys by their UTF-16 code units, as `<` does (not by locale): the order ids and
 * keys made of ASCII take in an index, and so the order a range of them is locked in.
 *
 * @example ['b', 'a', 'B'].sort(byKey) // → ['B', 'a', 'b']
 */
export function byKey(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compares items by a key of theirs, as {@link byKey} does.
 *
 * @example tasks.sort(byKeyOf((t) => t.id))
 */
export function byKeyOf<T>(key: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => byKey(key(a), key(b));
}
