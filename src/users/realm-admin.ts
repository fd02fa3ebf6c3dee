import type { ConfigService } from '../config/service.ts';
import { Errors } from '../errors.ts';
import type { Db } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';
import type { LoadedResolvers } from './loaded-resolvers.ts';
import { resolverTypeOfSpec } from './registry.ts';

const REALM_NAME = /^[a-z0-9_.-]{1,64}$/;

/** A realm as `/system/getRealms` lists it (LinOTP shape). */
export interface RealmSummary {
  realmname: string;
  entry: string;
  useridresolver: string[];
  default?: 'true';
  admin: boolean;
}

/**
 * Realm administration (`/system/setRealm`, `delRealm`, `setDefaultRealm`, `getRealms`):
 * a realm is an ordered list of resolver names; the default realm is the config
 * entry `DefaultRealm`. Realm names are lower-case.
 */
export class RealmAdmin {
  private readonly db: Db;
  private readonly config: ConfigService;
  private readonly clock: Clock;
  private readonly loaded: LoadedResolvers;
  private readonly changed: () => Promise<void>;

  /** `changed` runs after every stored change (tells other nodes and re-reads). */
  constructor(deps: { db: Db; config: ConfigService; clock: Clock; loaded: LoadedResolvers; changed: () => Promise<void> }) {
    this.db = deps.db;
    this.config = deps.config;
    this.clock = deps.clock;
    this.loaded = deps.loaded;
    this.changed = deps.changed;
  }

  defaultRealm(): string | undefined {
    const r = this.config.string('DefaultRealm').trim().toLowerCase();
    return r ? r : undefined;
  }

  /**
   * Every check of {@link setRealm} without writing: the realm name (lower-cased) and its
   * resolver specs or names, each known to `typeOf` (a resolver name → its type name, or
   * undefined when there is none; `otpd config apply` also knows the resolvers it is about to
   * create). Returns the realm name and resolver names in order, duplicates dropped.
   */
  prepare(realm: string, specs: string[], typeOf: (resolver: string) => string | undefined): { name: string; resolvers: string[] } {
    const name = realm.trim().toLowerCase();
    if (!REALM_NAME.test(name)) throw Errors.invalidParameter({ name: 'realm', why: 'realm names have 1-64 of a-z 0-9 _ . -' });
    const names: string[] = [];
    for (const raw of specs.map((s) => s.trim().replace(/"/g, '')).filter(Boolean)) {
      const type = resolverTypeOfSpec(raw);
      const resolver = type ? raw.slice(type.classPrefix.length + 1) : raw;
      const typeName = typeOf(resolver);
      if (typeName === undefined || (type && typeName !== type.type)) {
        throw Errors.unknownResolverSpec({ spec: raw });
      }
      if (!names.includes(resolver)) names.push(resolver);
    }
    if (names.length === 0) throw Errors.missingParameter({ name: 'resolvers' });
    return { name, resolvers: names };
  }

  /**
   * Defines a realm (`/system/setRealm`) with resolver specs
   * (`useridresolver.LDAPIdResolver.IdResolver.<name>`) or plain resolver names, in order.
   */
  async setRealm(realm: string, specs: string[]): Promise<void> {
    const { name, resolvers: names } = this.prepare(realm, specs, (resolver) => this.loaded.resolver(resolver)?.type.type);
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
    if (!this.loaded.realmExists(name)) return false;
    await this.config.set('DefaultRealm', name);
    return true;
  }

  /** `/system/getRealms` (LinOTP shape); one realm when `realm` is given. */
  describeRealms(realm?: string): Record<string, RealmSummary> {
    const def = this.defaultRealm();
    const out: Record<string, RealmSummary> = {};
    for (const name of this.loaded.realmNames()) {
      if (realm !== undefined && realm !== '' && name !== realm.toLowerCase()) continue;
      out[name] = {
        realmname: name,
        entry: `linotp.useridresolver.group.${name}`,
        useridresolver: this.loaded.resolversOfRealm(name).map((r) => this.loaded.resolverClass(r) ?? r),
        ...(def === name ? { default: 'true' as const } : {}),
        admin: false,
      };
    }
    return out;
  }
}
