import type { Clock } from '../util/clock.ts';
import type { StoreUser } from './types.ts';

const CACHE_MAX_ENTRIES = 10_000;

interface CacheEntry {
  user: StoreUser;
  expires: number;
}

/**
 * The directory's short-lived user cache: users found (attributes and LDAP DN, never
 * passwords), per resolver, by login and by user id, for `ttlMs()` (read on every use;
 * 0 = off, and what is held then counts as expired). At most 10,000 entries: the oldest
 * goes first. "No such user" is never put here.
 */
export class UserCache {
  private readonly clock: Clock;
  private readonly ttlMs: () => number;
  private readonly entries = new Map<string, CacheEntry>();

  constructor(clock: Clock, ttlMs: () => number) {
    this.clock = clock;
    this.ttlMs = ttlMs;
  }

  byLogin(resolver: string, login: string): StoreUser | undefined {
    return this.get(`${resolver}\0login\0${login}`);
  }

  byId(resolver: string, userId: string): StoreUser | undefined {
    return this.get(`${resolver}\0id\0${userId}`);
  }

  /** Keeps a copy under its user id and its login (`login` when it was found by another spelling). */
  put(resolver: string, user: StoreUser, login?: string): void {
    const ttl = this.ttlMs();
    if (ttl === 0) return;
    const expires = this.clock.now() + ttl;
    while (this.entries.size >= CACHE_MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    const copy: StoreUser = { ...user, info: { ...user.info } };
    this.entries.set(`${resolver}\0id\0${user.userId}`, { user: copy, expires });
    this.entries.set(`${resolver}\0login\0${login ?? user.login}`, { user: copy, expires });
  }

  clear(): void {
    this.entries.clear();
  }

  private get(key: string): StoreUser | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.expires <= this.clock.now() || this.ttlMs() === 0) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.user;
  }
}
