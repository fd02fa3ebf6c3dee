import type { Db } from '../store/db.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Clock } from '../util/clock.ts';
import { hashAdminPassword, verifyAdminPassword } from '../crypto/password.ts';
import { randomToken } from '../crypto/random.ts';
import { Errors } from '../errors.ts';
import { insertIgnore } from '../store/insert.ts';
import { LoginThrottle } from './throttle.ts';

const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
/** Hash of a password nobody has, checked for unknown names so timing does not reveal them. */
let dummyHash: Promise<string> | undefined;

export type LoginOutcome = { ok: true } | { ok: false; throttled: false } | { ok: false; throttled: true; retryAfterSeconds: number };

/**
 * Local administrators (never depend on the directory), their sessions and API keys.
 * Passwords are scrypt hashes; session cookies and API keys are stored as keyed hashes.
 */
export class AdminService {
  readonly throttle: LoginThrottle;

  constructor(private readonly db: Db, private readonly keyring: KeyRing, private readonly clock: Clock) {
    this.throttle = new LoginThrottle(db, keyring, clock);
    // ready before the first unknown name arrives, so that one is not slower than the rest
    dummyHash ??= hashAdminPassword(randomToken(16));
  }

  static checkName(name: string): void {
    if (!NAME.test(name)) throw Errors.invalidParameter({ name: 'name', why: `'${name}': use 1-64 of A-Z a-z 0-9 _ . @ -` });
  }

  async add(name: string, password: string): Promise<void> {
    AdminService.checkName(name);
    checkPassword(password);
    const exists = await this.db.kysely.selectFrom('admins').select('name').where('name', '=', name).executeTakeFirst();
    if (exists) throw Errors.adminExists({ name });
    await this.db.kysely.insertInto('admins').values({ name, password_hash: await hashAdminPassword(password), created_at: this.clock.now() }).execute();
  }

  /**
   * Creates the admin unless one of that name exists (the admin of OTPD_ADMIN_USER at start):
   * one conditional insert, so nodes started together on one database do not race into a
   * duplicate key. True when this call created it.
   */
  async addIfMissing(name: string, password: string): Promise<boolean> {
    AdminService.checkName(name);
    checkPassword(password);
    if (await this.exists(name)) return false;
    const res = await insertIgnore(this.db.dialect, this.db.kysely, 'admins', { name, password_hash: await hashAdminPassword(password), created_at: this.clock.now() }).executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /**
   * Sets a password and ends the admin's sessions. The admin's API keys are revoked too,
   * unless `keepApiKeys`: a password is usually changed because it may be known to someone
   * else, who could have created keys with it. Returns the number of keys revoked.
   */
  async setPassword(name: string, password: string, opts: { keepApiKeys?: boolean } = {}): Promise<{ revokedApiKeys: number }> {
    checkPassword(password);
    const res = await this.db.kysely.updateTable('admins').set({ password_hash: await hashAdminPassword(password) }).where('name', '=', name).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw Errors.noSuchAdmin({ name });
    await this.db.kysely.deleteFrom('sessions').where('admin', '=', name).execute();
    if (opts.keepApiKeys) return { revokedApiKeys: 0 };
    const revoked = await this.db.kysely.updateTable('api_keys').set({ revoked_at: this.clock.now() }).where('admin', '=', name).where('revoked_at', 'is', null).executeTakeFirst();
    return { revokedApiKeys: Number(revoked.numUpdatedRows) };
  }

  async remove(name: string): Promise<void> {
    const res = await this.db.kysely.deleteFrom('admins').where('name', '=', name).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw Errors.noSuchAdmin({ name });
    await this.db.kysely.deleteFrom('sessions').where('admin', '=', name).execute();
    await this.db.kysely.deleteFrom('api_keys').where('admin', '=', name).execute();
  }

  /** Admins with the number of their usable (neither revoked nor expired) API keys. */
  async list(): Promise<{ name: string; created_at: number; apiKeys: number }[]> {
    const admins = await this.db.kysely.selectFrom('admins').select(['name', 'created_at']).orderBy('name').execute();
    const keys = await this.listApiKeys();
    return admins.map((a) => ({ name: a.name, created_at: Number(a.created_at), apiKeys: keys.filter((k) => k.admin === a.name && k.state === 'active').length }));
  }

  async count(): Promise<number> {
    const rows = await this.db.kysely.selectFrom('admins').select('name').execute();
    return rows.length;
  }

  async exists(name: string): Promise<boolean> {
    return !!(await this.db.kysely.selectFrom('admins').select('name').where('name', '=', name).executeTakeFirst());
  }

  /**
   * Checks an /admin/login attempt under the login throttle (src/admins/throttle.ts). Known
   * and unknown names take the same path: one reservation, then one scrypt (against a dummy
   * hash for an unknown name). A refused attempt checks no password and counts no failure.
   */
  async login(name: string, password: string, client: string): Promise<LoginOutcome> {
    const reservation = await this.throttle.reserve(name, client);
    if (!reservation.ok) return { ok: false, throttled: true, retryAfterSeconds: Math.ceil(reservation.retryAfterMs / 1000) };
    const good = await this.checkLogin(name, password);
    if (good) await this.throttle.succeeded(reservation);
    return good ? { ok: true } : { ok: false, throttled: false };
  }

  /** One password check, without the throttle: use `login` for anything a client can reach. */
  async checkLogin(name: string, password: string): Promise<boolean> {
    // names outside the allowed form cannot exist; a case- or pad-insensitive collation must not match them
    const row = NAME.test(name) ? await this.db.kysely.selectFrom('admins').select(['name', 'password_hash']).where('name', '=', name).executeTakeFirst() : undefined;
    if (!row || row.name !== name) {
      dummyHash ??= hashAdminPassword(randomToken(16));
      await verifyAdminPassword(password, await dummyHash);
      return false;
    }
    return verifyAdminPassword(password, row.password_hash);
  }

  async createSession(admin: string, cookie: string, csrf: string, seconds: number): Promise<void> {
    const now = this.clock.now();
    await this.db.kysely.deleteFrom('sessions').where('expires_at', '<', now).execute();
    await this.db.kysely.insertInto('sessions').values({ id: this.keyring.hash('session', cookie), admin, csrf, created_at: now, expires_at: now + seconds * 1000 }).execute();
  }

  async findSession(cookie: string): Promise<{ admin: string; csrf: string } | null> {
    const row = await this.db.kysely.selectFrom('sessions').select(['admin', 'csrf', 'expires_at']).where('id', '=', this.keyring.hash('session', cookie)).executeTakeFirst();
    if (!row || Number(row.expires_at) <= this.clock.now()) return null;
    return { admin: row.admin, csrf: row.csrf };
  }

  async endSession(cookie: string): Promise<void> {
    await this.db.kysely.deleteFrom('sessions').where('id', '=', this.keyring.hash('session', cookie)).execute();
  }

  /** Creates an API key; the clear key is returned once and only its keyed hash is stored. */
  async createApiKey(admin: string, label = '', opts: { expiresAt?: number } = {}): Promise<string> {
    return (await this.issueApiKey(admin, label, opts)).key;
  }

  /** Like `createApiKey`, also returning the new key's id (for listings and revocation). */
  async issueApiKey(admin: string, label = '', opts: { expiresAt?: number } = {}): Promise<{ id: number; key: string; expiresAt: number | null }> {
    if (!(await this.exists(admin))) throw Errors.noSuchAdmin({ name: admin });
    if (label.length > 255 || /[\0-\x1f\x7f]/.test(label)) throw Errors.invalidParameter({ name: 'label', why: 'at most 255 characters, no control characters' });
    const now = this.clock.now();
    if (opts.expiresAt !== undefined && !(opts.expiresAt > now)) throw Errors.invalidParameter({ name: 'expires', why: 'not in the future' });
    const prefix = randomToken(6);
    const key = `otpd_${prefix}_${randomToken(32)}`;
    const keyHash = this.keyring.hash('apikey', key);
    await this.db.kysely
      .insertInto('api_keys')
      .values({ admin, label, prefix, key_hash: keyHash, created_at: now, last_used_at: null, expires_at: opts.expiresAt ?? null, revoked_at: null })
      .execute();
    const row = await this.db.kysely.selectFrom('api_keys').select('id').where('key_hash', '=', keyHash).executeTakeFirstOrThrow();
    return { id: Number(row.id), key, expiresAt: opts.expiresAt ?? null };
  }

  /** API keys (of one admin, or all), oldest first: metadata only, never the key or its hash. */
  async listApiKeys(admin?: string): Promise<ApiKeyInfo[]> {
    let q = this.db.kysely.selectFrom('api_keys').select(['id', 'admin', 'label', 'prefix', 'created_at', 'expires_at', 'last_used_at', 'revoked_at']).orderBy('id');
    if (admin !== undefined) q = q.where('admin', '=', admin);
    const now = this.clock.now();
    const time = (v: number | null) => (v === null ? null : Number(v));
    return (await q.execute()).map((r) => {
      const expiresAt = time(r.expires_at);
      const revokedAt = time(r.revoked_at);
      return {
        id: Number(r.id), admin: r.admin, label: r.label, prefix: r.prefix,
        createdAt: Number(r.created_at), expiresAt, lastUsedAt: time(r.last_used_at), revokedAt,
        state: revokedAt !== null ? 'revoked' : expiresAt !== null && expiresAt <= now ? 'expired' : 'active',
      };
    });
  }

  /** Revokes one API key by id; it is refused from now on. Returns the key's admin. */
  async revokeApiKey(id: number): Promise<{ admin: string }> {
    const row = await this.db.kysely.selectFrom('api_keys').select(['admin', 'revoked_at']).where('id', '=', id).executeTakeFirst();
    if (!row) throw Errors.noSuchApiKey({ id });
    const res = await this.db.kysely.updateTable('api_keys').set({ revoked_at: this.clock.now() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw Errors.apiKeyRevoked({ id });
    return { admin: row.admin };
  }

  /**
   * The admin an API key acts as, or null (unknown, revoked or expired). Last use is
   * written at most once a minute per key, so busy scripts add no write per request.
   */
  async verifyApiKey(key: string): Promise<string | null> {
    if (!/^otpd_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}$/.test(key)) return null;
    const row = await this.db.kysely
      .selectFrom('api_keys')
      .select(['id', 'admin', 'expires_at', 'revoked_at', 'last_used_at'])
      .where('key_hash', '=', this.keyring.hash('apikey', key))
      .executeTakeFirst();
    if (!row) return null;
    const now = this.clock.now();
    if (row.revoked_at !== null || (row.expires_at !== null && Number(row.expires_at) <= now)) return null;
    const staleBefore = now - LAST_USED_RESOLUTION_MS;
    if (row.last_used_at === null || Number(row.last_used_at) <= staleBefore) {
      // conditional, so parallel requests of the same minute write it once
      await this.db.kysely
        .updateTable('api_keys')
        .set({ last_used_at: now })
        .where('id', '=', row.id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', staleBefore)]))
        .execute();
    }
    return row.admin;
  }
}

/** How often last use of an API key is written at most. */
const LAST_USED_RESOLUTION_MS = 60_000;

export interface ApiKeyInfo {
  id: number;
  admin: string;
  label: string;
  /** The key's public part: keys look like `otpd_<prefix>_<secret>`. */
  prefix: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
  state: 'active' | 'expired' | 'revoked';
}

function checkPassword(password: string): void {
  if (password.length < 8) throw Errors.invalidParameter({ name: 'password', why: 'must have at least 8 characters' });
  if (password.length > 1024 || password.includes('\0')) throw Errors.invalidParameter({ name: 'password', why: 'longer than 1024 characters or contains NUL' });
}
