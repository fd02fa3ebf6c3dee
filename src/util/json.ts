/** A JSON object stored as text (token info, challenge data); anything but an object reads as {}. */
export function parseJsonObject<V = unknown>(text: string): Record<string, V> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, V>) : {};
  } catch {
    return {};
  }
}
