/**
 * How late the event loop runs, in ms. A request otpd reads now was in its socket's buffer for
 * about as long as the loop's last turn took: time that no queue of otpd's sees. Under
 * overload (or when the machine gives the process little CPU) that turn can take hundreds of
 * milliseconds, so a queue cutoff that starts counting only when otpd sees the request answers
 * late what it should have shed. Load shedding adds this lag to the time a request waited.
 */
export interface LoopLag {
  /** The lateness of the most recent tick (ms): about how long a request read now has waited unseen. */
  ms(): number;
}

const TICK_MS = 20;
let shared: LoopLag | undefined;

/**
 * The process's loop-lag monitor: a timer every 20 ms that records how late it fired (unref'd,
 * so it keeps no process alive). Timers run before the loop polls sockets, so a request parsed
 * in a turn sees the lag measured at that turn's start.
 */
export function loopLag(): LoopLag {
  if (shared) return shared;
  let lag = 0;
  let expected = performance.now() + TICK_MS;
  setInterval(() => {
    const now = performance.now();
    lag = Math.max(0, now - expected);
    expected = now + TICK_MS;
  }, TICK_MS).unref();
  shared = { ms: () => lag };
  return shared;
}
