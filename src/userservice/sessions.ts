import type { KeyRing } from '../crypto/keyring.ts';
import { randomToken } from '../crypto/random.ts';
import type { Db } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';

/** The user a self-service session stands for (the directory is asked again for anything else). */
export interface SessionUser {
  realm: string;
  resolver: string;
  userId: string;
  login: string;
  /** The session was opened with a second factor, not with the password alone. */
  mfa: boolean;
}

/**
 * Where a login stands (spec 1.6). Only `authenticated` sessions may call the self-service API;
 * the other two exist between the password and the second factor of an `mfa_login` login.
 */
export type SessionState = 'credentials_verified' | 'challenge_triggered' | 'authenticated';

export interface SessionRecord extends SessionUser {
  state: SessionState;
  /** The challenge a `challenge_triggered` login waits for ('' otherwise). */
  transactionId: string;
  expiresAt: number;
}

/** How long a self-service session lasts. LinOTP's default `selfservice.auth_expiry` is 15 minutes. */
export const USER_SESSION_SECONDS = 15 * 60;
/** How long a login may take between its password and its second factor. */
export const PENDING_LOGIN_SECONDS = 5 * 60;

const STATES: readonly string[] = ['credentials_verified', 'challenge_triggered', 'authenticated'];

/**
 * Self-service sessions (`/userservice/*`): the cookie value is random, stored only as a keyed
 * hash (like admin sessions), and ends at its expiry or at logout. Kept apart from the admin
 * `sessions` table, so an admin session is never a user session and the other way round. A
 * login that finishes its second factor gets a new cookie (the pending one ends), so a cookie
 * seen before the second factor is worth nothing after it.
 */
export class UserSessions {
  constructor(private readonly db: Db, private readonly keyring: KeyRing, private readonly clock: Clock) {}

  /** Opens a session for the user; returns the cookie value (shown once, to the client). */
  async create(user: SessionUser, opts: { seconds?: number; state?: SessionState } = {}): Promise<string> {
    const now = this.clock.now();
    const cookie = randomToken(32);
    const state = opts.state ?? 'authenticated';
    const seconds = opts.seconds ?? (state === 'authenticated' ? USER_SESSION_SECONDS : PENDING_LOGIN_SECONDS);
    await this.db.kysely.deleteFrom('user_sessions').where('expires_at', '<', now).execute();
    await this.db.kysely.insertInto('user_sessions').values({
      id: this.id(cookie), realm: user.realm, resolver: user.resolver, user_id: user.userId, login: user.login,
      created_at: now, expires_at: now + seconds * 1000, state, mfa: user.mfa ? 1 : 0, transaction_id: '',
    }).execute();
    return cookie;
  }

  /** The session, whatever its state, or null (unknown, ended or expired). */
  async record(cookie: string): Promise<SessionRecord | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(cookie)) return null;
    const row = await this.db.kysely.selectFrom('user_sessions').selectAll().where('id', '=', this.id(cookie)).executeTakeFirst();
    if (!row || Number(row.expires_at) <= this.clock.now() || !STATES.includes(row.state)) return null;
    return {
      realm: row.realm, resolver: row.resolver, userId: row.user_id, login: row.login, mfa: Number(row.mfa) === 1,
      state: row.state as SessionState, transactionId: row.transaction_id, expiresAt: Number(row.expires_at),
    };
  }

  /** The user of an `authenticated` session, or null (unknown, ended, expired or still logging in). */
  async find(cookie: string): Promise<SessionUser | null> {
    const r = await this.record(cookie);
    if (!r || r.state !== 'authenticated') return null;
    return { realm: r.realm, resolver: r.resolver, userId: r.userId, login: r.login, mfa: r.mfa };
  }

  /** A pending login sent a code: its answer must name this transaction. */
  async challengeTriggered(cookie: string, transactionId: string): Promise<void> {
    await this.db.kysely.updateTable('user_sessions').set({ state: 'challenge_triggered', transaction_id: transactionId })
      .where('id', '=', this.id(cookie)).where('state', '!=', 'authenticated').execute();
  }

  /**
   * Ends a pending login and opens its authenticated session, once: of two parallel
   * finishes of one login only the first gets a cookie (null for the other).
   */
  async promote(cookie: string, user: SessionUser): Promise<string | null> {
    const res = await this.db.kysely.deleteFrom('user_sessions').where('id', '=', this.id(cookie)).where('state', '!=', 'authenticated').executeTakeFirst();
    if (Number(res.numDeletedRows) !== 1) return null;
    return this.create(user);
  }

  async end(cookie: string): Promise<void> {
    await this.db.kysely.deleteFrom('user_sessions').where('id', '=', this.id(cookie)).execute();
  }

  private id(cookie: string): string {
    return this.keyring.hash('user-session', cookie);
  }
}
