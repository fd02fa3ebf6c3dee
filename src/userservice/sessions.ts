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
}

/** How long a self-service session lasts. LinOTP's default `selfservice.auth_expiry` is 15 minutes. */
export const USER_SESSION_SECONDS = 15 * 60;

/**
 * Self-service sessions (`/userservice/*`): the cookie value is random, stored only as a keyed
 * hash (like admin sessions), and ends at its expiry or at logout. Kept apart from the admin
 * `sessions` table, so an admin session is never a user session and the other way round.
 */
export class UserSessions {
  constructor(private readonly db: Db, private readonly keyring: KeyRing, private readonly clock: Clock) {}

  /** Opens a session for the user; returns the cookie value (shown once, to the client). */
  async create(user: SessionUser, seconds = USER_SESSION_SECONDS): Promise<string> {
    const now = this.clock.now();
    const cookie = randomToken(32);
    await this.db.kysely.deleteFrom('user_sessions').where('expires_at', '<', now).execute();
    await this.db.kysely.insertInto('user_sessions').values({
      id: this.keyring.hash('user-session', cookie), realm: user.realm, resolver: user.resolver, user_id: user.userId, login: user.login,
      created_at: now, expires_at: now + seconds * 1000,
    }).execute();
    return cookie;
  }

  /** The session's user, or null (unknown, ended or expired). */
  async find(cookie: string): Promise<SessionUser | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(cookie)) return null;
    const row = await this.db.kysely.selectFrom('user_sessions').select(['realm', 'resolver', 'user_id', 'login', 'expires_at'])
      .where('id', '=', this.keyring.hash('user-session', cookie)).executeTakeFirst();
    if (!row || Number(row.expires_at) <= this.clock.now()) return null;
    return { realm: row.realm, resolver: row.resolver, userId: row.user_id, login: row.login };
  }

  async end(cookie: string): Promise<void> {
    await this.db.kysely.deleteFrom('user_sessions').where('id', '=', this.keyring.hash('user-session', cookie)).execute();
  }
}
