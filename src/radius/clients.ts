import type { Logger } from 'pino';
import type { KeyRing } from '../crypto/keyring.ts';
import { Errors, OtpdError } from '../errors.ts';
import type { Db } from '../store/db.ts';
import { bumpRevision } from '../store/revisions.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import { CidrError, formatCidr, parseCidr, sameCidr, type Cidr } from '../util/net.ts';

/** What API responses show instead of a stored secret; sent back on update it keeps the secret. */
export const CENSORED = '__CENSORED__';

/** Revision bumped on every change, so every node's RADIUS server reloads its clients. */
export const RADIUS_REVISION = 'radius';

export interface RadiusClientInput {
  /** Letters, digits, `_ . -`; at most 64 characters. */
  name: string;
  /** IP address or CIDR network. */
  address: string;
  /** Shared secret; `__CENSORED__` on update keeps the stored one. */
  secret: string;
  /** Default realm for this client's users. @default '' (none) */
  realm?: string;
  /** Drop Access-Requests without a valid Message-Authenticator (BlastRADIUS). @default true */
  require_message_authenticator?: boolean;
}

/** A client as listed by the API and CLI: the secret is censored. */
export interface RadiusClientView {
  name: string;
  address: string;
  secret: typeof CENSORED;
  realm: string;
  require_message_authenticator: boolean;
  /** 'config' for clients from the config file (re-applied at every start), else 'api'. */
  source: 'api' | 'config';
}

/** A client with its secret in clear, for the RADIUS server only. */
export interface RadiusClientRecord {
  name: string;
  address: string;
  range: Cidr;
  secret: Buffer;
  realm: string;
  requireMessageAuthenticator: boolean;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_SECRET_BYTES = 128;

const invalid = (field: string, why: string) => Errors.invalidRadiusClient({ field, why });

/**
 * The checks of a client definition that need no database (name, address, realm, flag,
 * secret), the fields as stored. `otpd config apply` runs them before writing anything.
 * @throws OtpdError 2010 naming the field
 */
export function normalizeClient(input: RadiusClientInput): { name: string; range: Cidr; address: string; realm: string; requireMessageAuthenticator: boolean; secret: string } {
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (!NAME.test(name)) throw invalid('name', '1-64 letters, digits, "_", "." or "-"');
  let range: Cidr;
  try {
    range = parseCidr(String(input.address ?? ''));
  } catch (e) {
    if (e instanceof CidrError) throw invalid('address', e.message);
    throw e;
  }
  const address = formatCidr(range);
  const realm = (input.realm ?? '').trim();
  if (realm.length > 255 || /[\x00-\x1f\x7f]/.test(realm)) throw invalid('realm', 'at most 255 printable characters');
  const requireMessageAuthenticator = input.require_message_authenticator ?? true;
  if (typeof requireMessageAuthenticator !== 'boolean') throw invalid('require_message_authenticator', 'must be true or false');
  const secret = typeof input.secret === 'string' ? input.secret : '';
  if (secret !== CENSORED) {
    if (secret.length === 0) throw invalid('secret', 'required');
    if (Buffer.byteLength(secret) > MAX_SECRET_BYTES) throw invalid('secret', `at most ${MAX_SECRET_BYTES} bytes`);
    if (/[\x00-\x1f\x7f]/.test(secret)) throw invalid('secret', 'control characters are not allowed');
  }
  return { name, range, address, realm, requireMessageAuthenticator, secret };
}

/** RADIUS clients (NAS) in the `radius_clients` table; shared secrets sealed with the key ring. */
export class RadiusClientService {
  private readonly db: Db;
  private readonly keyring: KeyRing;
  private readonly clock: Clock;

  constructor(deps: { db: Db; keyring: KeyRing; clock?: Clock }) {
    this.db = deps.db;
    this.keyring = deps.keyring;
    this.clock = deps.clock ?? systemClock;
  }

  /** Creates a client; fails when the name exists. */
  async add(input: RadiusClientInput): Promise<void> {
    const result = await this.write(input, 'api', 'create');
    if (!result.created) throw Errors.radiusClientExists({ name: input.name });
  }

  /** Creates or updates a client (`/system/setRadiusClient`). */
  async set(input: RadiusClientInput, source: 'api' | 'config' = 'api'): Promise<{ created: boolean }> {
    const { created } = await this.write(input, source, 'upsert');
    return { created };
  }

  async list(): Promise<RadiusClientView[]> {
    const rows = await this.db.kysely.selectFrom('radius_clients').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name,
      address: r.address,
      secret: CENSORED,
      realm: r.realm,
      require_message_authenticator: Number(r.require_message_authenticator) === 1,
      source: r.source === 'config' ? 'config' : 'api',
    }));
  }

  /**
   * Every client with its secret in clear (in memory only: `otpd config apply` compares against
   * it, `otpd config export` writes a reference instead); `secret` is undefined when it cannot be
   * decrypted.
   */
  async stored(): Promise<(Omit<RadiusClientView, 'secret'> & { secret: string | undefined })[]> {
    const rows = await this.db.kysely.selectFrom('radius_clients').selectAll().orderBy('name').execute();
    return rows.map((r) => {
      let secret: string | undefined;
      try {
        secret = this.keyring.decryptString('config', r.secret_enc);
      } catch {
        secret = undefined;
      }
      return {
        name: r.name, address: r.address, secret, realm: r.realm,
        require_message_authenticator: Number(r.require_message_authenticator) === 1,
        source: r.source === 'config' ? 'config' as const : 'api' as const,
      };
    });
  }

  /** True when a client of that name was removed. */
  async remove(name: string): Promise<boolean> {
    const result = await this.db.kysely.deleteFrom('radius_clients').where('name', '=', name).executeTakeFirst();
    const removed = Number(result.numDeletedRows) > 0;
    if (removed) await bumpRevision(this.db, RADIUS_REVISION);
    return removed;
  }

  /** Every client with its secret decrypted; rows that fail to decrypt or parse are reported, not loaded. */
  async loadAll(onBadRow?: (name: string, reason: string) => void): Promise<RadiusClientRecord[]> {
    const rows = await this.db.kysely.selectFrom('radius_clients').selectAll().orderBy('name').execute();
    const out: RadiusClientRecord[] = [];
    for (const r of rows) {
      try {
        out.push({
          name: r.name,
          address: r.address,
          range: parseCidr(r.address),
          secret: this.keyring.decrypt('config', r.secret_enc),
          realm: r.realm,
          requireMessageAuthenticator: Number(r.require_message_authenticator) === 1,
        });
      } catch (e) {
        onBadRow?.(r.name, (e as Error).message);
      }
    }
    return out;
  }

  /**
   * Makes the config file's clients current: creates or updates each (source 'config'),
   * and removes clients that came from the config file earlier but are no longer in it.
   * Clients created through the API or CLI are left alone. Bumps the revision only on change.
   */
  async syncConfigured(clients: RadiusClientInput[]): Promise<{ added: string[]; updated: string[]; removed: string[] }> {
    const names = new Set<string>();
    for (const [i, c] of clients.entries()) {
      if (names.has(c.name)) throw invalid(`radius.clients[${i}].name`, `duplicate name ${c.name}`);
      names.add(c.name);
      if (c.secret === CENSORED) throw invalid(`radius.clients[${i}].secret`, 'must be the secret itself');
    }
    const added: string[] = [];
    const updated: string[] = [];
    const removed: string[] = [];
    for (const [i, c] of clients.entries()) {
      try {
        const { created, changed } = await this.write(c, 'config', 'upsert', false);
        if (created) added.push(c.name);
        else if (changed) updated.push(c.name);
      } catch (e) {
        if (e instanceof OtpdError) throw invalid(`radius.clients[${i}]`, e.message);
        throw e;
      }
    }
    const stale = await this.db.kysely.selectFrom('radius_clients').select('name').where('source', '=', 'config').execute();
    for (const { name } of stale) {
      if (names.has(name)) continue;
      await this.db.kysely.deleteFrom('radius_clients').where('name', '=', name).where('source', '=', 'config').execute();
      removed.push(name);
    }
    if (added.length + updated.length + removed.length > 0) await bumpRevision(this.db, RADIUS_REVISION);
    return { added, updated, removed };
  }

  private async write(
    input: RadiusClientInput,
    source: 'api' | 'config',
    mode: 'create' | 'upsert',
    bump = true,
  ): Promise<{ created: boolean; changed: boolean }> {
    const { name, range, address, realm, requireMessageAuthenticator, secret } = normalizeClient(input);
    const existing = await this.db.kysely.selectFrom('radius_clients').selectAll().where('name', '=', name).executeTakeFirst();
    if (existing && mode === 'create') return { created: false, changed: false };
    if (secret === CENSORED && !existing) throw invalid('secret', 'required for a new client');

    const others = await this.db.kysely.selectFrom('radius_clients').select(['name', 'address']).where('name', '!=', name).execute();
    for (const other of others) {
      let otherRange: Cidr | undefined;
      try {
        otherRange = parseCidr(other.address);
      } catch {
        continue;
      }
      if (sameCidr(range, otherRange)) throw invalid('address', `${address} is already used by client ${other.name}`);
    }

    const now = this.clock.now();
    const requireFlag = requireMessageAuthenticator ? 1 : 0;
    if (existing) {
      const secretSame = secret === CENSORED || this.secretEquals(existing.secret_enc, secret);
      const changed =
        !secretSame ||
        existing.address !== address ||
        existing.realm !== realm ||
        Number(existing.require_message_authenticator) !== requireFlag ||
        existing.source !== source;
      if (!changed) return { created: false, changed: false };
      await this.db.kysely
        .updateTable('radius_clients')
        .set({
          address,
          realm,
          require_message_authenticator: requireFlag,
          source,
          updated_at: now,
          ...(secretSame ? {} : { secret_enc: this.keyring.encrypt('config', secret) }),
        })
        .where('name', '=', name)
        .execute();
      if (bump) await bumpRevision(this.db, RADIUS_REVISION);
      return { created: false, changed: true };
    }
    try {
      await this.db.kysely
        .insertInto('radius_clients')
        .values({
          name,
          address,
          secret_enc: this.keyring.encrypt('config', secret),
          realm,
          require_message_authenticator: requireFlag,
          source,
          created_at: now,
          updated_at: now,
        })
        .execute();
    } catch (e) {
      // a concurrent writer created the same name or address
      throw Errors.radiusClientConflict({ name });
    }
    if (bump) await bumpRevision(this.db, RADIUS_REVISION);
    return { created: true, changed: true };
  }

  private secretEquals(sealed: string, secret: string): boolean {
    try {
      return this.keyring.decryptString('config', sealed) === secret;
    } catch {
      return false;
    }
  }
}

/** A client from the config file (`radius.clients` in the settings). */
export interface ConfiguredRadiusClient {
  name: string;
  address: string;
  secret: string;
  realm?: string;
  require_message_authenticator?: boolean;
}

/**
 * Applies the config file's `radius.clients` at start (see RadiusClientService.syncConfigured).
 * @throws OtpdError naming the bad entry (`radius.clients[1]: address: …`)
 */
export async function syncConfiguredClients(
  clients: ConfiguredRadiusClient[],
  deps: { db: Db; keyring: KeyRing; logger?: Logger; clock?: Clock },
): Promise<{ added: string[]; updated: string[]; removed: string[] }> {
  const result = await new RadiusClientService(deps).syncConfigured(clients);
  if (deps.logger && result.added.length + result.updated.length + result.removed.length > 0) {
    deps.logger.info(result, 'RADIUS clients from the config file applied');
  }
  return result;
}
