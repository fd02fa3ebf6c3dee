import type { Logger } from 'pino';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Db } from '../store/db.ts';
import { unsealSecrets } from './config.ts';
import { resolverType } from './registry.ts';
import type { ResolverType, StoreDeps, StoredResolverConfig, UserStore } from './types.ts';

/** A resolver as loaded: its type, decrypted configuration and open store. */
export interface ResolverEntry {
  name: string;
  type: ResolverType;
  /** Decrypted configuration (secrets in clear, in memory only). */
  config: StoredResolverConfig;
  /** The stored JSON, to notice changes on reload. */
  stored: string;
  store: UserStore;
}

/**
 * The resolvers (with their open stores) and realms as last read from the `resolvers`
 * and `realms` tables. The directory's lookups and both administrations read them here;
 * only `load` changes them.
 */
export class LoadedResolvers {
  private readonly db: Db;
  private readonly keyring: KeyRing;
  private readonly logger: Logger;
  private readonly storeDeps: () => StoreDeps;
  private readonly onLoad: () => void;
  private resolvers = new Map<string, ResolverEntry>();
  private realms = new Map<string, string[]>();
  private loading: Promise<void> | undefined;

  /** `onLoad` runs as soon as a (re)load has replaced what is held (the directory clears its cache). */
  constructor(deps: { db: Db; keyring: KeyRing; logger: Logger; storeDeps: () => StoreDeps; onLoad: () => void }) {
    this.db = deps.db;
    this.keyring = deps.keyring;
    this.logger = deps.logger;
    this.storeDeps = deps.storeDeps;
    this.onLoad = deps.onLoad;
  }

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
      this.onLoad();
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

  /** Closes every store's connections. */
  async close(): Promise<void> {
    await Promise.all([...this.resolvers.values()].map((r) => r.store.close().catch(() => undefined)));
    this.resolvers.clear();
  }

  resolver(name: string): ResolverEntry | undefined {
    return this.resolvers.get(name);
  }

  resolverNames(): string[] {
    return [...this.resolvers.keys()].sort();
  }

  resolverClass(resolver: string): string | undefined {
    const r = this.resolvers.get(resolver);
    return r ? `${r.type.classPrefix}.${r.name}` : undefined;
  }

  realmExists(realm: string): boolean {
    return this.realms.has(realm.toLowerCase());
  }

  realmNames(): string[] {
    return [...this.realms.keys()].sort();
  }

  /** Every realm with its resolver names, in lookup order (a copy). */
  realmEntries(): Array<[realm: string, resolvers: string[]]> {
    return [...this.realms].map(([name, list]) => [name, [...list]]);
  }

  /** Realms whose resolver list contains this resolver. */
  realmsOfResolver(resolver: string): string[] {
    return [...this.realms].filter(([, list]) => list.includes(resolver)).map(([name]) => name).sort();
  }

  /** Resolver names of a realm, in lookup order. */
  resolversOfRealm(realm: string): string[] {
    return [...(this.realms.get(realm.toLowerCase()) ?? [])];
  }
}
