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
    return 'new';
  }

  complete(key: string, reply: Buffer): void {
    this.entries.delete(key); // re-insert so insertion order stays expiry order
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
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size < this.maxEntries) break;
      if (entry.kind === 'pending' && entry.expiresAt > now) {
        // never evict a request still being processed because of size alone: its
        // duplicate would be processed a second time
        if (this.entries.size < this.maxEntries * 2) break;
      }
      this.entries.delete(key);
    }
  }
}
