import type { Db } from '../store/db.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Clock } from '../util/clock.ts';
import { hashAdminPassword, verifyAdminPassword } from '../crypto/password.ts';
import { randomToken } from '../crypto/random.ts';
import { ErrorCodes, OtpdError } from '../errors.ts';
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
  }

  static checkName(name: string): void {
    if (!NAME.test(name)) throw new OtpdError(ErrorCodes.parameter, `invalid admin name '${name}': use 1-64 of A-Z a-z 0-9 _ . @ -`);
  }

  async add(name: string, password: string): Promise<void> {
    AdminService.checkName(name);
    checkPassword(password);
    const exists = await this.db.kysely.selectFrom('admins').select('name').where('name', '=', name).executeTakeFirst();
    if (exists) throw new OtpdError(ErrorCodes.parameter, `admin '${name}' exists already`);
    await this.db.kysely.insertInto('admins').values({ name, password_hash: await hashAdminPassword(password), created_at: this.clock.now() }).execute();
  }

  async setPassword(name: string, password: string): Promise<void> {
    checkPassword(password);
    const res = await this.db.kysely.updateTable('admins').set({ password_hash: await hashAdminPassword(password) }).where('name', '=', name).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new OtpdError(ErrorCodes.notFound, `no admin '${name}'`);
    await this.db.kysely.deleteFrom('sessions').where('admin', '=', name).execute();
  }

  async remove(name: string): Promise<void> {
    const res = await this.db.kysely.deleteFrom('admins').where('name', '=', name).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new OtpdError(ErrorCodes.notFound, `no admin '${name}'`);
    await this.db.kysely.deleteFrom('sessions').where('admin', '=', name).execute();
    await this.db.kysely.deleteFrom('api_keys').where('admin', '=', name).execute();
  }

  async list(): Promise<{ name: string; created_at: number; apiKeys: number }[]> {
    const admins = await this.db.kysely.selectFrom('admins').select(['name', 'created_at']).orderBy('name').execute();
    const keys = await this.db.kysely.selectFrom('api_keys').select('admin').execute();
    return admins.map((a) => ({ name: a.name, created_at: Number(a.created_at), apiKeys: keys.filter((k) => k.admin === a.name).length }));
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
  async createApiKey(admin: string, label = ''): Promise<string> {
    if (!(await this.exists(admin))) throw new OtpdError(ErrorCodes.notFound, `no admin '${admin}'`);
    const prefix = randomToken(6);
    const key = `otpd_${prefix}_${randomToken(32)}`;
    await this.db.kysely.insertInto('api_keys').values({ admin, label, prefix, key_hash: this.keyring.hash('apikey', key), created_at: this.clock.now(), last_used_at: null }).execute();
    return key;
  }

  async verifyApiKey(key: string): Promise<string | null> {
    if (!/^otpd_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}$/.test(key)) return null;
    const row = await this.db.kysely.selectFrom('api_keys').select(['id', 'admin']).where('key_hash', '=', this.keyring.hash('apikey', key)).executeTakeFirst();
    if (!row) return null;
    await this.db.kysely.updateTable('api_keys').set({ last_used_at: this.clock.now() }).where('id', '=', row.id).execute();
    return row.admin;
  }
}

function checkPassword(password: string): void {
  if (password.length < 8) throw new OtpdError(ErrorCodes.parameter, 'admin password must have at least 8 characters');
  if (password.length > 1024 || password.includes('\0')) throw new OtpdError(ErrorCodes.parameter, 'admin password too long or contains NUL');
}
