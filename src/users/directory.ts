import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import { isTrue } from '../config/defaults.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { Errors } from '../errors.ts';
import type { Db } from '../store/db.ts';
import { bumpRevision, type RevisionWatcher } from '../store/revisions.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import { createHostPolicy, type HostPolicy } from '../util/net.ts';
import { censorSecrets, restoreSecrets, sealSecrets, unsealSecrets } from './config.ts';
import { resolverType, resolverTypeOfSpec } from './registry.ts';
import type { DirectoryUser, ResolverType, StoreHealth, StoredResolverConfig, StoreUser, UserInfo, UserSearch, UserStore } from './types.ts';

export type { DirectoryUser, UserInfo } from './types.ts';

/**
 * Resolvers (user stores) and realms, persisted in the `resolvers` and `realms`
 * tables, with a short-lived user cache. This is what validation, token admin
 * and the /system resolver+realm endpoints use.
 *
 * - Realm lookup (spec 7.4): a realm's resolvers are asked in order; the first
 *   hit wins. When a resolver cannot be asked, the lookup fails with
 *   UserStoreUnavailableError instead of going on to the next resolver (the
 *   unreachable one might hold the same login): fail closed.
 * - Cache: users found (attributes and LDAP DN, never passwords) are kept for
 *   config `UserCacheTTL` seconds (@default 120; 0 = off), per resolver, by
 *   login and by user id. "No such user" is not cached. Any resolver or realm
 *   change (here or on another node, via the `users` revision) clears it.
 */

/**
 * Host policy settings for LDAP and SQL user stores (`/system/setConfig`, read on
 * every check), the same kind as the delivery providers' DeliveryAllowedHosts /
 * DeliveryDenyPrivateHosts: comma list of host names (`*.example.com`), empty = any;
 * and a switch that also refuses loopback and private addresses. @default '' and false
 */
export const USER_STORE_ALLOWED_HOSTS = 'UserStoreAllowedHosts';
export const USER_STORE_DENY_PRIVATE_HOSTS = 'UserStoreDenyPrivateHosts';

/** LinOTP's rule for resolver names (`linotp/lib/resolver.py`). */
const RESOLVER_NAME = /^[a-zA-Z0-9_-]{4,}$/;
const REALM_NAME = /^[a-z0-9_.-]{1,64}$/;
const CACHE_MAX_ENTRIES = 10_000;

interface ResolverEntry {
  name: string;
  type: ResolverType;
  /** Decrypted configuration (secrets in clear, in memory only). */
  config: StoredResolverConfig;
  /** The stored JSON, to notice changes on reload. */
  stored: string;
  store: UserStore;
}

interface CacheEntry {
  user: StoreUser;
  expires: number;
}

/** A resolver as `/system/getResolvers` lists it. */
export interface ResolverSummary {
  resolvername: string;
  entry: string;
  type: string;
  spec: string;
  admin: boolean;
  readonly?: boolean;
}

export class UserDirectory {
  private readonly db: Db;
  private readonly keyring: KeyRing;
  private readonly config: ConfigService;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private resolvers = new Map<string, ResolverEntry>();
  private realms = new Map<string, string[]>();
  private cache = new Map<string, CacheEntry>();
  private loading: Promise<void> | undefined;
  /** Asked before saving or testing a resolver and before each store connection. */
  private readonly hosts: HostPolicy;

  constructor(deps: { db: Db; keyring: KeyRing; config: ConfigService; logger: Logger; clock?: Clock }) {
    this.db = deps.db;
    this.keyring = deps.keyring;
    this.config = deps.config;
    this.logger = deps.logger.child({ area: 'users' });
    this.clock = deps.clock ?? systemClock;
    this.hosts = createHostPolicy(() => ({
      allowedHosts: this.config.list(USER_STORE_ALLOWED_HOSTS),
      denyPrivate: this.config.bool(USER_STORE_DENY_PRIVATE_HOSTS),
      purpose: 'user stores',
      settings: { allowedHosts: USER_STORE_ALLOWED_HOSTS, denyPrivate: USER_STORE_DENY_PRIVATE_HOSTS },
    }));
  }

  private storeDeps() {
    return { logger: this.logger, clock: this.clock, hosts: this.hosts };
  }

  /** Refuses (ERR2302, naming the key) a configuration whose hosts the host policy refuses; nothing is connected. */
  private checkHosts(type: ResolverType, config: StoredResolverConfig): void {
    for (const { key, host } of type.hosts?.(config) ?? []) {
      const why = this.hosts.refuse(host);
      if (why) throw Errors.resolverHostRefused({ key, why });
    }
  }

  // ------------------------------------------------------------------ loading

  /** (Re)reads resolvers and realms; keeps store objects whose config did not change (pools, breakers). */
  async load(): Promise<void> {
    const run = async () => {
      const [rows, realmRows] = await Promise.all([
        this.db.kysely.selectFrom('resolvers').selectAll().execute(),
        this.db.kysely.selectFrom('realms').selectAll().execute(),
      ]);
      const next = new Map<string, ResolverEntry>();
      for (const row of rows) {
        const type = resolverType(row.type);
        if (!type) {
          this.logger.error({ resolver: row.name, type: row.type }, 'unknown resolver type; resolver ignored');
          continue;
        }
        const old = this.resolvers.get(row.name);
        if (old && old.stored === row.config && old.type === type) {
          next.set(row.name, old);
          continue;
        }
        try {
          const config = unsealSecrets(type, JSON.parse(row.config) as StoredResolverConfig, (v) => this.keyring.decryptString('config', v));
          next.set(row.name, { name: row.name, type, config, stored: row.config, store: type.create(row.name, config, this.storeDeps()) });
        } catch (e) {
          this.logger.error({ resolver: row.name, err: e }, 'resolver configuration unreadable; resolver ignored');
        }
      }
      for (const [name, old] of this.resolvers) {
        if (next.get(name) !== old) void old.store.close().catch(() => undefined);
      }
      this.resolvers = next;
      this.realms = new Map(realmRows.map((r) => [r.name, JSON.parse(r.resolvers) as string[]]));
      this.cache.clear();
    };
    // serialise concurrent reloads
    const previous = this.loading ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(run);
    this.loading = current;
    try {
      await current;
    } finally {
      if (this.loading === current) this.loading = undefined;
    }
  }

  /** Re-reads when another node (or this one) changes resolvers or realms. */
  watch(watcher: RevisionWatcher): void {
    watcher.on('users', () => this.load());
  }

  /** Closes every store's connections. */
  async close(): Promise<void> {
    await Promise.all([...this.resolvers.values()].map((r) => r.store.close().catch(() => undefined)));
    this.resolvers.clear();
  }

  // ------------------------------------------------------------------ realms and parsing

  defaultRealm(): string | undefined {
    const r = this.config.string('DefaultRealm').trim().toLowerCase();
    return r ? r : undefined;
  }

  realmExists(realm: string): boolean {
    return this.realms.has(realm.toLowerCase());
  }

  realmNames(): string[] {
    return [...this.realms.keys()].sort();
  }

  /** Realms whose resolver list contains this resolver. */
  realmsOfResolver(resolver: string): string[] {
    return [...this.realms].filter(([, list]) => list.includes(resolver)).map(([name]) => name).sort();
  }

  /** Resolver names of a realm, in lookup order. */
  resolversOfRealm(realm: string): string[] {
    return [...(this.realms.get(realm.toLowerCase()) ?? [])];
  }

  resolverClass(resolver: string): string | undefined {
    const r = this.resolvers.get(resolver);
    return r ? `${r.type.classPrefix}.${r.name}` : undefined;
  }

  /**
   * spec 1.1: a `realm` parameter wins (login taken literally); else, with
   * config splitAtSign (default true), `login@realm` is split at the last '@'
   * when the suffix is a known realm; `DOMAIN\login` is split at the backslash
   * (DOMAIN is the realm when it is a known realm). Otherwise the default
   * realm. Realm names are lower-case; '' when there is none.
   */
  splitUser(user: string, realm?: string): { login: string; realm: string } {
    if (realm !== undefined && realm.trim() !== '') return { login: user, realm: realm.trim().toLowerCase() };
    const fallback = this.defaultRealm() ?? '';
    if (this.config.bool('splitAtSign')) {
      const at = user.lastIndexOf('@');
      if (at > 0) {
        const suffix = user.slice(at + 1).toLowerCase();
        if (this.realmExists(suffix)) return { login: user.slice(0, at), realm: suffix };
      }
    }
    const slash = user.indexOf('\\');
    if (slash > 0 && slash < user.length - 1) {
      const domain = user.slice(0, slash).toLowerCase();
      return { login: user.slice(slash + 1), realm: this.realmExists(domain) ? domain : fallback };
    }
    return { login: user, realm: fallback };
  }

  // ------------------------------------------------------------------ lookups

  private ttlMs(): number {
    return this.config.number('UserCacheTTL') * 1000;
  }

  private cacheGet(key: string): StoreUser | undefined {
    const hit = this.cache.get(key);
    if (!hit) return undefined;
    if (hit.expires <= this.clock.now() || this.ttlMs() === 0) {
      this.cache.delete(key);
      return undefined;
    }
    return hit.user;
  }

  private cachePut(resolver: string, user: StoreUser, login?: string): void {
    const ttl = this.ttlMs();
    if (ttl === 0) return;
    const expires = this.clock.now() + ttl;
    while (this.cache.size >= CACHE_MAX_ENTRIES) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    const copy: StoreUser = { ...user, info: { ...user.info } };
    this.cache.set(`${resolver}\0id\0${user.userId}`, { user: copy, expires });
    this.cache.set(`${resolver}\0login\0${login ?? user.login}`, { user: copy, expires });
  }

  /** Clears the user cache (`/system/resolverCacheFlush`). */
  flushCache(): void {
    this.cache.clear();
  }

  private toDirectoryUser(entry: ResolverEntry, user: StoreUser, realm: string): DirectoryUser {
    return {
      login: user.login,
      userId: user.userId,
      resolver: entry.name,
      resolverClass: `${entry.type.classPrefix}.${entry.name}`,
      realm,
      info: { ...user.info },
    };
  }

  private async lookupIn(entry: ResolverEntry, login: string): Promise<StoreUser | null> {
    const cached = this.cacheGet(`${entry.name}\0login\0${login}`);
    if (cached) return cached;
    const user = await entry.store.lookup(login);
    if (user) this.cachePut(entry.name, user, login);
    return user;
  }

  private async byIdIn(entry: ResolverEntry, userId: string): Promise<StoreUser | null> {
    const cached = this.cacheGet(`${entry.name}\0id\0${userId}`);
    if (cached) return cached;
    const user = await entry.store.byId(userId);
    if (user) this.cachePut(entry.name, user);
    return user;
  }

  /**
   * Resolves `login` in the realm's resolvers, in order. null = no such user.
   * Throws UserStoreUnavailableError when a resolver cannot be asked. If the
   * user is not found and the login contains '@' with a known realm after
   * the last '@', the split is retried in that realm (spec 1.1).
   */
  async findUser(login: string, realm: string): Promise<DirectoryUser | null> {
    const realmName = realm.toLowerCase();
    if (login !== '' && !login.includes('\0')) {
      for (const name of this.realms.get(realmName) ?? []) {
        const entry = this.resolvers.get(name);
        if (!entry) continue;
        const user = await this.lookupIn(entry, login);
        if (user) return this.toDirectoryUser(entry, user, realmName);
      }
    }
    const at = login.lastIndexOf('@');
    if (at > 0) {
      const suffix = login.slice(at + 1).toLowerCase();
      if (suffix !== realmName && this.realmExists(suffix)) return this.findUser(login.slice(0, at), suffix);
    }
    return null;
  }

  async findById(resolver: string, userId: string, realm: string): Promise<DirectoryUser | null> {
    const entry = this.resolvers.get(resolver);
    if (!entry || userId === '') return null;
    const user = await this.byIdIn(entry, userId);
    return user ? this.toDirectoryUser(entry, user, realm.toLowerCase()) : null;
  }

  /** False for wrong, empty or NUL-containing passwords. Throws UserStoreUnavailableError. */
  async checkPassword(user: DirectoryUser, password: string): Promise<boolean> {
    if (typeof password !== 'string' || password === '' || password.includes('\0')) return false;
    const entry = this.resolvers.get(user.resolver);
    if (!entry) return false;
    const storeUser = await this.byIdIn(entry, user.userId);
    if (!storeUser) return false;
    return entry.store.checkPassword(storeUser, password);
  }

  /**
   * Users of a realm (or of the given resolvers) matching `search`, at most
   * `limit` (`/admin/userlist`). Resolvers are asked in realm order.
   */
  async listUsers(realm: string, search: UserSearch, limit: number, onlyResolver?: string): Promise<DirectoryUser[]> {
    const realmName = realm.toLowerCase();
    const out: DirectoryUser[] = [];
    for (const name of this.realms.get(realmName) ?? []) {
      if (onlyResolver && name !== onlyResolver) continue;
      const entry = this.resolvers.get(name);
      if (!entry) continue;
      const users = await entry.store.search(search, limit - out.length);
      for (const u of users) out.push(this.toDirectoryUser(entry, u, realmName));
      if (out.length >= limit) break;
    }
    return out.slice(0, limit);
  }

  // ------------------------------------------------------------------ administration

  resolverNames(): string[] {
    return [...this.resolvers.keys()].sort();
  }

  /** `/system/getResolvers` entries (LinOTP shape). */
  listResolvers(): Record<string, ResolverSummary> {
    const out: Record<string, ResolverSummary> = {};
    for (const name of this.resolverNames()) {
      const r = this.resolvers.get(name)!;
      const firstKey = Object.keys(r.config).sort()[0] ?? 'type';
      out[name] = {
        resolvername: name,
        entry: `linotp.${r.type.type}.${firstKey}.${name}`,
        type: r.type.type,
        spec: `${r.type.classPrefix}.${name}`,
        admin: false,
        ...(isTrue(r.config.readonly) ? { readonly: true } : {}),
      };
    }
    return out;
  }

  /** `/system/getResolver`: configuration with secrets replaced by `__CENSORED__`. */
  describeResolver(name: string): { type: string | null; data: Record<string, string>; resolver: string; spec?: string; admin?: boolean; readonly?: boolean } {
    const r = this.resolvers.get(name);
    if (!r) return { type: null, data: {}, resolver: name };
    return {
      type: r.type.type,
      data: censorSecrets(r.type, r.config),
      resolver: name,
      spec: `${r.type.classPrefix}.${name}`,
      admin: false,
      ...(isTrue(r.config.readonly) ? { readonly: true } : {}),
    };
  }

  /**
   * Creates, updates or renames a resolver (`/system/setResolver`).
   * `previousName` absent = create (the name must be new); equal = update;
   * different = rename (realms and token owners follow). Secret values sent
   * as `__CENSORED__` keep the stored value.
   */
  async setResolver(name: string, typeName: string, params: Record<string, string>, previousName?: string): Promise<void> {
    if (!RESOLVER_NAME.test(name)) {
      throw Errors.invalidParameter({ name: 'name', why: 'resolver names have at least 4 characters of A-Z a-z 0-9 _ -' });
    }
    const type = resolverType(typeName);
    if (!type) throw Errors.unknownResolverType({ type: typeName });
    const mode = !previousName ? 'create' : previousName === name ? 'update' : 'rename';
    if (mode !== 'update' && this.resolvers.has(name)) {
      throw Errors.resolverExists({ mode, name });
    }
    const previous = previousName ? this.resolvers.get(previousName) : undefined;
    if (mode !== 'create' && !previous) throw Errors.unknownResolver({ name: previousName! });
    if (previous && previous.type !== type) throw Errors.resolverTypeChange();

    const merged = restoreSecrets(type, params, previous?.config, (key) => {
      throw Errors.resolverSecretNotStored({ key });
    });
    const config = type.normalize(merged);
    this.checkHosts(type, config);
    const stored = JSON.stringify(sealSecrets(type, config, (v) => this.keyring.encrypt('config', v)));
    const now = this.clock.now();
    await this.db.kysely.transaction().execute(async (trx) => {
      if (mode === 'create') {
        await trx.insertInto('resolvers').values({ name, type: type.type, config: stored, created_at: now, updated_at: now }).execute();
        return;
      }
      if (mode === 'update') {
        await trx.updateTable('resolvers').set({ config: stored, updated_at: now }).where('name', '=', name).execute();
        return;
      }
      const old = previousName!;
      await trx.insertInto('resolvers').values({ name, type: type.type, config: stored, created_at: now, updated_at: now }).execute();
      await trx.deleteFrom('resolvers').where('name', '=', old).execute();
      for (const [realm, list] of this.realms) {
        if (!list.includes(old)) continue;
        await trx.updateTable('realms').set({ resolvers: JSON.stringify(list.map((r) => (r === old ? name : r))) }).where('name', '=', realm).execute();
      }
      // token owners follow the rename (LinOTP migrates them too)
      await trx.updateTable('tokens').set({ resolver: name, resolver_class: `${type.classPrefix}.${name}` }).where('resolver', '=', old).execute();
    });
    await this.changed();
  }

  /** Deletes a resolver; refused while a realm uses it. False when it did not exist. */
  async deleteResolver(name: string): Promise<boolean> {
    const used = this.realmsOfResolver(name);
    if (used.length > 0) {
      throw Errors.resolverInUse({ name, realms: used.map((r) => `'${r}'`).join(', ') });
    }
    const res = await this.db.kysely.deleteFrom('resolvers').where('name', '=', name).executeTakeFirst();
    await this.changed();
    return Number(res.numDeletedRows) > 0;
  }

  /**
   * Defines a realm (`/system/setRealm`) with resolver specs
   * (`useridresolver.LDAPIdResolver.IdResolver.<name>`) or plain resolver names, in order.
   */
  async setRealm(realm: string, specs: string[]): Promise<void> {
    const name = realm.trim().toLowerCase();
    if (!REALM_NAME.test(name)) throw Errors.invalidParameter({ name: 'realm', why: 'realm names have 1-64 of a-z 0-9 _ . -' });
    const names: string[] = [];
    for (const raw of specs.map((s) => s.trim().replace(/"/g, '')).filter(Boolean)) {
      const type = resolverTypeOfSpec(raw);
      const resolver = type ? raw.slice(type.classPrefix.length + 1) : raw;
      const entry = this.resolvers.get(resolver);
      if (!entry || (type && entry.type !== type)) {
        throw Errors.unknownResolverSpec({ spec: raw });
      }
      if (!names.includes(resolver)) names.push(resolver);
    }
    if (names.length === 0) throw Errors.missingParameter({ name: 'resolvers' });
    const resolvers = JSON.stringify(names);
    await this.db.kysely.transaction().execute(async (trx) => {
      const updated = await trx.updateTable('realms').set({ resolvers }).where('name', '=', name).executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) {
        const exists = await trx.selectFrom('realms').select('name').where('name', '=', name).executeTakeFirst();
        if (!exists) await trx.insertInto('realms').values({ name, resolvers, created_at: this.clock.now() }).execute();
      }
    });
    await this.changed();
  }

  /** Deletes a realm; clears DefaultRealm when it was the default. False when it did not exist. */
  async deleteRealm(realm: string): Promise<boolean> {
    const name = realm.trim().toLowerCase();
    const res = await this.db.kysely.deleteFrom('realms').where('name', '=', name).executeTakeFirst();
    if (this.defaultRealm() === name) await this.config.delete('DefaultRealm');
    await this.changed();
    return Number(res.numDeletedRows) > 0;
  }

  /** Sets (or with '' clears) the default realm; false when the realm does not exist. */
  async setDefaultRealm(realm: string): Promise<boolean> {
    const name = realm.trim().toLowerCase();
    if (name === '') {
      if (this.config.has('DefaultRealm')) await this.config.delete('DefaultRealm');
      return false;
    }
    if (!this.realmExists(name)) return false;
    await this.config.set('DefaultRealm', name);
    return true;
  }

  /** `/system/getRealms` (LinOTP shape); one realm when `realm` is given. */
  describeRealms(realm?: string): Record<string, { realmname: string; entry: string; useridresolver: string[]; default?: 'true'; admin: boolean }> {
    const def = this.defaultRealm();
    const out: Record<string, { realmname: string; entry: string; useridresolver: string[]; default?: 'true'; admin: boolean }> = {};
    for (const name of this.realmNames()) {
      if (realm !== undefined && realm !== '' && name !== realm.toLowerCase()) continue;
      out[name] = {
        realmname: name,
        entry: `linotp.useridresolver.group.${name}`,
        useridresolver: this.resolversOfRealm(name).map((r) => this.resolverClass(r) ?? r),
        ...(def === name ? { default: 'true' as const } : {}),
        admin: false,
      };
    }
    return out;
  }

  /**
   * `/system/testResolver`: tests a stored resolver by name, or an unsaved
   * configuration (`__CENSORED__` secrets taken from `name` when it exists).
   * With `login`, a connection that works also looks that user up: `user` is its
   * attributes, or null when the store does not know the login (`lookupError` when the
   * lookup itself failed).
   */
  async testResolver(name: string, typeName?: string, params?: Record<string, string>, login?: string): Promise<StoreHealth & { user?: UserInfo | null; lookupError?: string }> {
    const existing = this.resolvers.get(name);
    if (!params || Object.keys(params).length === 0) {
      if (!existing) throw Errors.unknownResolver({ name });
      return withLookup(existing.store, await existing.store.test(), login);
    }
    const type = resolverType(typeName ?? existing?.type.type ?? '');
    if (!type) throw Errors.unknownResolverType({ type: typeName ?? '' });
    const config = type.normalize(restoreSecrets(type, params, existing?.config, () => ''));
    this.checkHosts(type, config);
    const store = type.create(`${name || 'test'}`, config, this.storeDeps());
    try {
      return await withLookup(store, await store.test(), login);
    } finally {
      await store.close();
    }
  }

  /** After a local change: tell other nodes, and re-read here at once. */
  private async changed(): Promise<void> {
    await bumpRevision(this.db, 'users');
    await this.load();
  }
}

/** A test result, with one user looked up by login when the connection works (the resolver test's "look up one user"). */
async function withLookup(store: UserStore, health: StoreHealth, login: string | undefined): Promise<StoreHealth & { user?: UserInfo | null; lookupError?: string }> {
  if (!health.ok || login === undefined || login === '') return health;
  try {
    const user = await store.lookup(login);
    return { ...health, user: user ? { ...user.info } : null };
  } catch (e) {
    return { ...health, lookupError: e instanceof Error ? e.message : String(e) };
  }
}
