import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Db } from '../store/db.ts';
import { bumpRevision, type RevisionWatcher } from '../store/revisions.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import type { Metrics, UserStoreOperation } from '../util/metrics.ts';
import { createHostPolicy, type HostPolicy } from '../util/net.ts';
import { LoadedResolvers, type ResolverEntry } from './loaded-resolvers.ts';
import { RealmAdmin, type RealmSummary } from './realm-admin.ts';
import { ResolverAdmin, type ResolverDescription, type ResolverSummary, type ResolverTest } from './resolver-admin.ts';
import type { DirectoryUser, StoreDeps, StoredResolverConfig, StoreUser, UserSearch } from './types.ts';
import { UserCache } from './user-cache.ts';

export type { DirectoryUser, UserInfo } from './types.ts';
export type { RealmSummary } from './realm-admin.ts';
export type { ResolverDescription, ResolverSummary, ResolverTest } from './resolver-admin.ts';

/**
 * Resolvers (user stores) and realms, persisted in the `resolvers` and `realms`
 * tables, with a short-lived user cache. This is what validation, token admin
 * and the /system resolver+realm endpoints use. The lookups live here; what is
 * loaded in users/loaded-resolvers.ts, the cache in users/user-cache.ts, and the
 * administration in users/resolver-admin.ts and users/realm-admin.ts.
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

export class UserDirectory {
  private readonly db: Db;
  private readonly config: ConfigService;
  private readonly logger: Logger;
  private readonly clock: Clock;
  /** Asked before saving or testing a resolver and before each store connection. */
  private readonly hosts: HostPolicy;
  private readonly cache: UserCache;
  private readonly loaded: LoadedResolvers;
  private readonly resolverAdmin: ResolverAdmin;
  private readonly realmAdmin: RealmAdmin;
  private readonly metrics: Metrics | undefined;

  /** `metrics`: times every call that reaches a store and counts the failed ones. @default undefined */
  constructor(deps: { db: Db; keyring: KeyRing; config: ConfigService; logger: Logger; clock?: Clock; metrics?: Metrics }) {
    this.db = deps.db;
    this.metrics = deps.metrics;
    this.config = deps.config;
    this.logger = deps.logger.child({ area: 'users' });
    this.clock = deps.clock ?? systemClock;
    this.hosts = createHostPolicy(() => ({
      allowedHosts: this.config.list(USER_STORE_ALLOWED_HOSTS),
      denyPrivate: this.config.bool(USER_STORE_DENY_PRIVATE_HOSTS),
      purpose: 'user stores',
      settings: { allowedHosts: USER_STORE_ALLOWED_HOSTS, denyPrivate: USER_STORE_DENY_PRIVATE_HOSTS },
    }));
    this.cache = new UserCache(this.clock, () => this.config.number('UserCacheTTL') * 1000);
    const storeDeps = (): StoreDeps => ({ logger: this.logger, clock: this.clock, hosts: this.hosts });
    const changed = () => this.changed();
    this.loaded = new LoadedResolvers({ db: this.db, keyring: deps.keyring, logger: this.logger, storeDeps, onLoad: () => this.cache.clear() });
    this.resolverAdmin = new ResolverAdmin({ db: this.db, keyring: deps.keyring, clock: this.clock, hosts: this.hosts, loaded: this.loaded, storeDeps, changed });
    this.realmAdmin = new RealmAdmin({ db: this.db, config: this.config, clock: this.clock, loaded: this.loaded, changed });
  }

  // ------------------------------------------------------------------ loading

  /** (Re)reads resolvers and realms; keeps store objects whose config did not change (pools, breakers). */
  load(): Promise<void> {
    return this.loaded.load();
  }

  /** Re-reads when another node (or this one) changes resolvers or realms. */
  watch(watcher: RevisionWatcher): void {
    watcher.on('users', () => this.load());
  }

  /** Closes every store's connections. */
  close(): Promise<void> {
    return this.loaded.close();
  }

  // ------------------------------------------------------------------ realms and parsing

  defaultRealm(): string | undefined {
    return this.realmAdmin.defaultRealm();
  }

  realmExists(realm: string): boolean {
    return this.loaded.realmExists(realm);
  }

  realmNames(): string[] {
    return this.loaded.realmNames();
  }

  /** Realms whose resolver list contains this resolver. */
  realmsOfResolver(resolver: string): string[] {
    return this.loaded.realmsOfResolver(resolver);
  }

  /** Resolver names of a realm, in lookup order. */
  resolversOfRealm(realm: string): string[] {
    return this.loaded.resolversOfRealm(realm);
  }

  resolverClass(resolver: string): string | undefined {
    return this.loaded.resolverClass(resolver);
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

  /** A call that reaches the store, timed and (when it throws) counted by resolver and operation. */
  private ask<T>(entry: ResolverEntry, operation: UserStoreOperation, call: () => Promise<T>): Promise<T> {
    if (!this.metrics) return call();
    return this.metrics.userStoreCall({ resolver: entry.name, type: entry.type.type, operation }, call);
  }

  private async lookupIn(entry: ResolverEntry, login: string): Promise<StoreUser | null> {
    const cached = this.cache.byLogin(entry.name, login);
    if (cached) return cached;
    const user = await this.ask(entry, 'lookup', () => entry.store.lookup(login));
    if (user) this.cache.put(entry.name, user, login);
    return user;
  }

  private async byIdIn(entry: ResolverEntry, userId: string): Promise<StoreUser | null> {
    const cached = this.cache.byId(entry.name, userId);
    if (cached) return cached;
    const user = await this.ask(entry, 'byId', () => entry.store.byId(userId));
    if (user) this.cache.put(entry.name, user);
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
      for (const name of this.loaded.resolversOfRealm(realmName)) {
        const entry = this.loaded.resolver(name);
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
    const entry = this.loaded.resolver(resolver);
    if (!entry || userId === '') return null;
    const user = await this.byIdIn(entry, userId);
    return user ? this.toDirectoryUser(entry, user, realm.toLowerCase()) : null;
  }

  /** False for wrong, empty or NUL-containing passwords. Throws UserStoreUnavailableError. */
  async checkPassword(user: DirectoryUser, password: string): Promise<boolean> {
    if (typeof password !== 'string' || password === '' || password.includes('\0')) return false;
    const entry = this.loaded.resolver(user.resolver);
    if (!entry) return false;
    const storeUser = await this.byIdIn(entry, user.userId);
    if (!storeUser) return false;
    return this.ask(entry, 'checkPassword', () => entry.store.checkPassword(storeUser, password));
  }

  /**
   * Users of a realm (or of the given resolvers) matching `search`, at most
   * `limit` (`/admin/userlist`). Resolvers are asked in realm order.
   */
  async listUsers(realm: string, search: UserSearch, limit: number, onlyResolver?: string): Promise<DirectoryUser[]> {
    const realmName = realm.toLowerCase();
    const out: DirectoryUser[] = [];
    for (const name of this.loaded.resolversOfRealm(realmName)) {
      if (onlyResolver && name !== onlyResolver) continue;
      const entry = this.loaded.resolver(name);
      if (!entry) continue;
      const users = await this.ask(entry, 'search', () => entry.store.search(search, limit - out.length));
      for (const u of users) out.push(this.toDirectoryUser(entry, u, realmName));
      if (out.length >= limit) break;
    }
    return out.slice(0, limit);
  }

  // ------------------------------------------------------------------ administration (users/resolver-admin.ts, users/realm-admin.ts)

  resolverNames(): string[] {
    return this.loaded.resolverNames();
  }

  /** `/system/getResolvers` entries (LinOTP shape). */
  listResolvers(): Record<string, ResolverSummary> {
    return this.resolverAdmin.listResolvers();
  }

  /** `/system/getResolver`: configuration with secrets replaced by `__CENSORED__`. */
  describeResolver(name: string): ResolverDescription {
    return this.resolverAdmin.describeResolver(name);
  }

  /** Creates, updates (`previousName === name`) or renames a resolver (`/system/setResolver`); see ResolverAdmin.setResolver. */
  setResolver(name: string, typeName: string, params: Record<string, string>, previousName?: string): Promise<void> {
    return this.resolverAdmin.setResolver(name, typeName, params, previousName);
  }

  /** Every check of setResolver without writing; the configuration as it would be stored (in clear). See ResolverAdmin.prepare. */
  checkResolver(name: string, typeName: string, params: Record<string, string>, previousName?: string): { type: string; config: StoredResolverConfig } {
    const { type, config } = this.resolverAdmin.prepare(name, typeName, params, previousName);
    return { type: type.type, config };
  }

  /** A stored resolver's type name and configuration, secrets in clear (in memory only, for config apply/export). */
  storedResolver(name: string): { type: string; secretKeys: readonly string[]; config: StoredResolverConfig } | undefined {
    const r = this.resolverAdmin.stored(name);
    return r ? { type: r.type.type, secretKeys: r.type.secretKeys, config: r.config } : undefined;
  }

  /** Deletes a resolver; refused while a realm uses it. False when it did not exist. */
  deleteResolver(name: string): Promise<boolean> {
    return this.resolverAdmin.deleteResolver(name);
  }

  /** `/system/testResolver`: a stored resolver by name, or an unsaved configuration; see ResolverAdmin.testResolver. */
  testResolver(name: string, typeName?: string, params?: Record<string, string>, login?: string): Promise<ResolverTest> {
    return this.resolverAdmin.testResolver(name, typeName, params, login);
  }

  /** Defines a realm (`/system/setRealm`) with resolver specs or plain resolver names, in order. */
  setRealm(realm: string, specs: string[]): Promise<void> {
    return this.realmAdmin.setRealm(realm, specs);
  }

  /**
   * Every check of setRealm without writing; `typeOf` names the type of each resolver the
   * realm may list (default: the stored ones). See RealmAdmin.prepare.
   */
  checkRealm(realm: string, specs: string[], typeOf?: (resolver: string) => string | undefined): { name: string; resolvers: string[] } {
    return this.realmAdmin.prepare(realm, specs, typeOf ?? ((r) => this.loaded.resolver(r)?.type.type));
  }

  /** Deletes a realm; clears DefaultRealm when it was the default. False when it did not exist. */
  deleteRealm(realm: string): Promise<boolean> {
    return this.realmAdmin.deleteRealm(realm);
  }

  /** Sets (or with '' clears) the default realm; false when the realm does not exist. */
  setDefaultRealm(realm: string): Promise<boolean> {
    return this.realmAdmin.setDefaultRealm(realm);
  }

  /** `/system/getRealms` (LinOTP shape); one realm when `realm` is given. */
  describeRealms(realm?: string): Record<string, RealmSummary> {
    return this.realmAdmin.describeRealms(realm);
  }

  /** After a local change: tell other nodes, and re-read here at once. */
  private async changed(): Promise<void> {
    await bumpRevision(this.db, 'users');
    await this.load();
  }
}
