import type { Clock } from '../util/clock.ts';

/**
 * Skips servers that failed recently. A failed server is blocked for
 * `blockMs`; when every server is blocked, callers fail fast instead of
 * waiting for timeouts again.
 */
export class CircuitBreaker {
  private blockedUntil = new Map<string, number>();
  constructor(private readonly clock: Clock, private readonly blockMs: number) {}

  /** Servers to try now, in configured order. */
  available(servers: string[]): string[] {
    const now = this.clock.now();
    return servers.filter((s) => (this.blockedUntil.get(s) ?? 0) <= now);
  }

  /** Milliseconds until the first blocked server may be tried again. */
  retryInMs(servers: string[]): number {
    const now = this.clock.now();
    return Math.max(0, Math.min(...servers.map((s) => (this.blockedUntil.get(s) ?? 0) - now)));
  }

  fail(server: string): void {
    if (this.blockMs > 0) this.blockedUntil.set(server, this.clock.now() + this.blockMs);
  }

  succeed(server: string): void {
    this.blockedUntil.delete(server);
  }
}
