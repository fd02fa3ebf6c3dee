/**
 * Waits on an outcome instead of sleeping: polls `condition` (sync or async) until it returns
 * a truthy value, and resolves with that value. Past the deadline it fails naming `what` (and
 * the last error the condition threw), so a test that never sees the outcome says which one.
 *
 * Use it for outcomes that happen behind the test's back (a dispatcher tick, a server
 * receiving a message, a reload started by a watcher); a sleep would either be too short on a
 * busy machine or waste time on an idle one.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  opts: {
    /** What is awaited, for the failure message ("the SMS to reach the gateway"). */
    what: string;
    /** @default 5000 */
    timeoutMs?: number;
    /** Pause between two checks. @default 10 */
    intervalMs?: number;
  },
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? ` (last check threw: ${(lastError as Error)?.message ?? String(lastError)})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 10));
  }
}
