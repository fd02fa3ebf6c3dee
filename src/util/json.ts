/** A JSON object stored as text (token info, challenge data); anything but an object reads as {}. */
export function parseJsonObject<V = unknown>(text: string): Record<string, V> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, V>) : {};
  } catch {
    return {};
  }
}

/**
 * `table[key]` for a key from a request: only the table's own entries, so that a parameter
 * naming a property of Object.prototype (`constructor`, `__proto__`, `toString`) is unknown
 * like any other name instead of handing that property (a function) to the caller.
 */
export function ownEntry<V>(table: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}
