import { isTrue } from '../config/defaults.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { Errors } from '../errors.ts';
import type { Db } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';
import type { HostPolicy } from '../util/net.ts';
import { censorSecrets, restoreSecrets, sealSecrets } from './config.ts';
import type { LoadedResolvers } from './loaded-resolvers.ts';
import { resolverType } from './registry.ts';
import type { ResolverType, StoreDeps, StoreHealth, StoredResolverConfig, UserInfo, UserStore } from './types.ts';

/** LinOTP's rule for resolver names (`linotp/lib/resolver.py`). */
const RESOLVER_NAME = /^[a-zA-Z0-9_-]{4,}$/;

/** A resolver as `/system/getResolvers` lists it. */
export interface ResolverSummary {
  resolvername: string;
  entry: string;
  type: string;
  spec: string;
  admin: boolean;
  readonly?: boolean;
}

/** A resolver as `/system/getResolver` shows it (`type: null` when there is none by that name). */
export interface ResolverDescription {
  type: string | null;
  data: Record<string, string>;
  resolver: string;
  spec?: string;
  admin?: boolean;
  readonly?: boolean;
}

/** `/system/testResolver`'s answer: the store's health, and the user looked up when a login was given. */
export type ResolverTest = StoreHealth & { user?: UserInfo | null; lookupError?: string };

/**
 * Resolver administration (`/system/setResolver`, `delResolver`, `getResolvers`,
 * `getResolver`, `testResolver`): secrets sealed at rest and censored on the way out,
 * hosts checked against the user-store host policy before anything is saved or connected.
 */
export class ResolverAdmin {
  private readonly db: Db;
  private readonly keyring: KeyRing;
  private readonly clock: Clock;
  private readonly hosts: HostPolicy;
  private readonly loaded: LoadedResolvers;
  private readonly storeDeps: () => StoreDeps;
  private readonly changed: () => Promise<void>;

  /** `changed` runs after every stored change (tells other nodes and re-reads). */
  constructor(deps: { db: Db; keyring: KeyRing; clock: Clock; hosts: HostPolicy; loaded: LoadedResolvers; storeDeps: () => StoreDeps; changed: () => Promise<void> }) {
    this.db = deps.db;
    this.keyring = deps.keyring;
    this.clock = deps.clock;
    this.hosts = deps.hosts;
    this.loaded = deps.loaded;
    this.storeDeps = deps.storeDeps;
    this.changed = deps.changed;
  }

  /** `/system/getResolvers` entries (LinOTP shape). */
  listResolvers(): Record<string, ResolverSummary> {
    const out: Record<string, ResolverSummary> = {};
    for (const name of this.loaded.resolverNames()) {
      const r = this.loaded.resolver(name)!;
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
  describeResolver(name: string): ResolverDescription {
    const r = this.loaded.resolver(name);
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
   * Every check of {@link setResolver} without writing: the name, the type (and no type
   * change), the configuration (placeholders restored, normalized by the type's schema) and
   * its hosts against the host policy. Returns the configuration as it would be stored (in clear).
   */
  prepare(name: string, typeName: string, params: Record<string, string>, previousName?: string): { type: ResolverType; config: StoredResolverConfig; mode: 'create' | 'update' | 'rename' } {
    if (!RESOLVER_NAME.test(name)) {
      throw Errors.invalidParameter({ name: 'name', why: 'resolver names have at least 4 characters of A-Z a-z 0-9 _ -' });
    }
    const type = resolverType(typeName);
    if (!type) throw Errors.unknownResolverType({ type: typeName });
    const mode = !previousName ? 'create' : previousName === name ? 'update' : 'rename';
    if (mode !== 'update' && this.loaded.resolver(name)) {
      throw Errors.resolverExists({ mode, name });
    }
    const previous = previousName ? this.loaded.resolver(previousName) : undefined;
    if (mode !== 'create' && !previous) throw Errors.unknownResolver({ name: previousName! });
    if (previous && previous.type !== type) throw Errors.resolverTypeChange();

    const merged = restoreSecrets(type, params, previous?.config, (key) => {
      throw Errors.resolverSecretNotStored({ key });
    });
    const config = type.normalize(merged);
    this.checkHosts(type, config);
    return { type, config, mode };
  }

  /** A stored resolver's type and configuration with its secrets in clear (in memory only: config apply/export compare and reference them). */
  stored(name: string): { type: ResolverType; config: StoredResolverConfig } | undefined {
    const r = this.loaded.resolver(name);
    return r ? { type: r.type, config: { ...r.config } } : undefined;
  }

  /**
   * Creates, updates or renames a resolver (`/system/setResolver`).
   * `previousName` absent = create (the name must be new); equal = update;
   * different = rename (realms and token owners follow). Secret values sent
   * as `__CENSORED__` keep the stored value.
   */
  async setResolver(name: string, typeName: string, params: Record<string, string>, previousName?: string): Promise<void> {
    const { type, config, mode } = this.prepare(name, typeName, params, previousName);
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
      for (const [realm, list] of this.loaded.realmEntries()) {
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
    const used = this.loaded.realmsOfResolver(name);
    if (used.length > 0) {
      throw Errors.resolverInUse({ name, realms: used.map((r) => `'${r}'`).join(', ') });
    }
    const res = await this.db.kysely.deleteFrom('resolvers').where('name', '=', name).executeTakeFirst();
    await this.changed();
    return Number(res.numDeletedRows) > 0;
  }

  /**
   * `/system/testResolver`: tests a stored resolver by name, or an unsaved
   * configuration (`__CENSORED__` secrets taken from `name` when it exists).
   * With `login`, a connection that works also looks that user up: `user` is its
   * attributes, or null when the store does not know the login (`lookupError` when the
   * lookup itself failed).
   */
  async testResolver(name: string, typeName?: string, params?: Record<string, string>, login?: string): Promise<ResolverTest> {
    const existing = this.loaded.resolver(name);
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

  /** Refuses (ERR2302, naming the key) a configuration whose hosts the host policy refuses; nothing is connected. */
  private checkHosts(type: ResolverType, config: StoredResolverConfig): void {
    for (const { key, host } of type.hosts?.(config) ?? []) {
      const why = this.hosts.refuse(host);
      if (why) throw Errors.resolverHostRefused({ key, why });
    }
  }
}

/** A test result, with one user looked up by login when the connection works (the resolver test's "look up one user"). */
async function withLookup(store: UserStore, health: StoreHealth, login: string | undefined): Promise<ResolverTest> {
  if (!health.ok || login === undefined || login === '') return health;
  try {
    const user = await store.lookup(login);
    return { ...health, user: user ? { ...user.info } : null };
  } catch (e) {
    return { ...health, lookupError: e instanceof Error ? e.message : String(e) };
  }
}
