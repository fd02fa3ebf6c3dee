import type { Clock } from '../util/clock.ts';

type Entry = { kind: 'pending'; expiresAt: number } | { kind: 'done'; reply: Buffer; expiresAt: number };

/**
 * Duplicate detection (RFC 5080 §2.2.2): a request is identified by source address,
 * source port, Identifier and Request Authenticator. While the first copy is being
 * processed, copies are discarded (the client retransmits later); afterwards they get
 * the cached reply byte for byte. Bounded: the oldest entries are evicted first.
 */
export class DuplicateCache {
  private readonly entries = new Map<string, Entry>();
  /** Keys in insertion order; a separate queue because iterating a Map after many deletions at its front is slow. */
  private order: string[] = [];
  private head = 0;

  constructor(
    private readonly clock: Clock,
    /** How long a reply is kept for retransmissions. @default 30000 */
    private readonly ttlMs = 30_000,
    /** At most this many requests are remembered. @default 50000 */
    private readonly maxEntries = 50_000,
  ) {}

  static key(address: string, port: number, identifier: number, authenticator: Buffer): string {
    return `${address}|${port}|${identifier}|${authenticator.toString('hex')}`;
  }

  /** 'new' (the caller now owns the request), 'pending', or the cached reply. */
  begin(key: string): 'new' | 'pending' | Buffer {
    const now = this.clock.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) return entry.kind === 'pending' ? 'pending' : entry.reply;
    if (entry) this.entries.delete(key);
    this.evict(now);
    this.entries.set(key, { kind: 'pending', expiresAt: now + this.ttlMs });
    this.order.push(key);
    return 'new';
  }

  complete(key: string, reply: Buffer): void {
    this.entries.set(key, { kind: 'done', reply, expiresAt: this.clock.now() + this.ttlMs });
  }

  /** Forgets a request that got no reply (dropped, or failed internally), so a retransmission is processed. */
  abandon(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(now: number): void {
    let budget = this.order.length - this.head;
    while (this.head < this.order.length && budget-- > 0) {
      const key = this.order[this.head++];
      const entry = this.entries.get(key);
      if (!entry) continue;
      const live = entry.expiresAt > now;
      if (live && this.entries.size < this.maxEntries) {
        this.head--;
        break;
      }
      // a request still being processed is not evicted for size alone (its duplicate
      // would be processed a second time) unless the cache is far over its bound
      if (live && entry.kind === 'pending' && this.entries.size < this.maxEntries * 2) this.order.push(key);
      else this.entries.delete(key);
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}
