import { sql } from 'kysely';
import type { Db } from '../store/db.ts';

/** One account: a directory user in a realm. `userKey` is `<resolver>/<user id>`. */
export interface AccountKey {
  realm: string;
  userKey: string;
  login: string;
}

/**
 * How failed authentications of one account are throttled (security B.2 #12, #13, #14;
 * NIST SP 800-63B §3.2.2).
 */
export interface AttemptPolicy {
  /** Consecutive failures before refusal windows start. @default 5 */
  delayAfter: number;
  /** First refusal window; each further failure doubles it. @default 1000 */
  baseMs: number;
  /** Longest refusal window. @default 900000 */
  maxDelayMs: number;
  /** Consecutive failures after which the account is refused until a success is impossible: an admin reset. @default 100 */
  maxFail: number;
  /** Attempts of one account in flight at once while below `delayAfter`; above it, one at a time. @default 10 */
  maxParallel: number;
}

export type AccountRefusal =
  | { kind: 'throttled'; failCount: number; retryAt: number }
  | { kind: 'locked'; failCount: number };

/** The sentinel row that unknown-user answers touch, so they do the same writes as a failure. */
const UNKNOWN: AccountKey = { realm: '', userKey: '', login: '' };

/** A reservation older than this is taken as lost (a crashed node) and no longer holds a slot. */
const STALE_MS = 120_000;

/**
 * Consecutive failed authentications per account, in the database (shared by
 * nodes, survives restarts, one row per account so flooding other names evicts
 * nothing).
 *
 * Before any secret is checked, the attempt is *reserved*: one conditional write
 * that takes an in-flight slot only while the account is outside a refusal window,
 * below the hard limit counting what is in flight, and below the parallel cap
 * (one at a time once failures reached the threshold). So a parallel burst cannot
 * buy more guesses than the windows allow, while parallel logins with the right
 * password (10 at once) all go through. The attempt is then settled: a failure
 * counts and opens the next window, a success clears the account, anything that
 * was no guess (a challenge was triggered, a replay, an infrastructure error) only
 * frees its slot.
 */
export class AccountAttempts {
  constructor(private readonly db: Db) {}

  /** Read only: is the account refused right now? Costs no write (B.2 #15). */
  async refusal(key: AccountKey, now: number, policy: AttemptPolicy): Promise<AccountRefusal | null> {
    const row = await this.row(key);
    if (!row) return null;
    const failCount = Number(row.fail_count);
    if (failCount >= policy.maxFail) return { kind: 'locked', failCount };
    const retryAt = Number(row.window_start) + Number(row.delay_ms);
    if (retryAt > now) return { kind: 'throttled', failCount, retryAt };
    return null;
  }

  /** Takes an in-flight slot; false when the account is refused (nothing changed then). */
  async reserve(key: AccountKey, now: number, policy: AttemptPolicy): Promise<boolean> {
    if (await this.tryReserve(key, now, policy)) return true;
    // the account's first attempt creates its row (a parallel one may have just done so)
    if (!(await this.row(key))) await this.insertIgnore(key, now);
    return this.tryReserve(key, now, policy);
  }

  /** A failed attempt: counts it and, from the threshold on, opens the next refusal window. */
  async failed(key: AccountKey, now: number, p: AttemptPolicy): Promise<void> {
    const after = sql.lit(p.delayAfter);
    const nextDelay = sql<number>`(case when fail_count + 1 < ${after} then 0 when delay_ms = 0 then ${sql.lit(p.baseMs)} when delay_ms * 2 > ${sql.lit(p.maxDelayMs)} then ${sql.lit(p.maxDelayMs)} else delay_ms * 2 end)`;
    await this.db.kysely
      .updateTable('account_attempts')
      // MySQL evaluates SET left to right with the new values: delay_ms reads the old fail_count
      // and delay_ms, so it comes first and fail_count last.
      .set({ delay_ms: nextDelay, window_start: now, pending: sql`case when pending > 0 then pending - 1 else 0 end`, fail_count: sql`fail_count + 1` })
      .where('realm', '=', key.realm)
      .where('user_key', '=', key.userKey)
      .execute();
  }

  /** A success: the account's failures are cleared (an admin reset does the same, see `reset`). */
  async succeeded(key: AccountKey): Promise<void> {
    await this.db.kysely
      .updateTable('account_attempts')
      .set({ fail_count: 0, delay_ms: 0, window_start: 0, pending: sql`case when pending > 0 then pending - 1 else 0 end` })
      .where('realm', '=', key.realm)
      .where('user_key', '=', key.userKey)
      .execute();
  }

  /** The attempt was no guess: only its slot is freed. */
  async release(key: AccountKey): Promise<void> {
    await this.db.kysely
      .updateTable('account_attempts')
      .set({ pending: sql`case when pending > 0 then pending - 1 else 0 end` })
      .where('realm', '=', key.realm)
      .where('user_key', '=', key.userKey)
      .execute();
  }

  /** Admin reset: clears the failures of a user in every realm (or in one). */
  async reset(key: { realm?: string; userKey: string }): Promise<void> {
    let q = this.db.kysely.updateTable('account_attempts').set({ fail_count: 0, delay_ms: 0, window_start: 0 }).where('user_key', '=', key.userKey);
    if (key.realm !== undefined) q = q.where('realm', '=', key.realm);
    await q.execute();
  }

  /**
   * The database work of a failed attempt — the refusal read, a reservation round of two
   * writes, a settlement write — on one sentinel row, for an account that does not exist:
   * "user not found" takes the same work as "wrong password" (B.2 #9) without a row per name.
   */
  async decoyAttempt(now: number, policy: AttemptPolicy): Promise<void> {
    await this.refusal(UNKNOWN, now, policy);
    await Promise.all([this.touchUnknown(now), this.touchUnknown(now)]);
    await this.touchUnknown(now);
  }

  private async touchUnknown(now: number): Promise<void> {
    const res = await this.db.kysely.updateTable('account_attempts').set({ last_attempt: now })
      .where('realm', '=', UNKNOWN.realm).where('user_key', '=', UNKNOWN.userKey).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) await this.insertIgnore(UNKNOWN, now);
  }

  async state(key: AccountKey): Promise<{ failCount: number; pending: number; retryAt: number } | undefined> {
    const row = await this.row(key);
    return row && { failCount: Number(row.fail_count), pending: Number(row.pending), retryAt: Number(row.window_start) + Number(row.delay_ms) };
  }

  private async tryReserve(key: AccountKey, now: number, p: AttemptPolicy): Promise<boolean> {
    const stale = now - STALE_MS;
    const inFlight = sql<number>`(case when pending_at < ${stale} then 0 else pending end)`;
    const res = await this.db.kysely
      .updateTable('account_attempts')
      .set({ pending: sql`${inFlight} + 1`, pending_at: now, last_attempt: now, login: key.login })
      .where('realm', '=', key.realm)
      .where('user_key', '=', key.userKey)
      .where(sql<boolean>`window_start + delay_ms <= ${now}`)
      .where(sql<boolean>`fail_count + ${inFlight} < ${p.maxFail}`)
      .where(sql<boolean>`${inFlight} < (case when fail_count < ${p.delayAfter} then ${p.maxParallel} else 1 end)`)
      // Below the threshold, failures and attempts in flight together stay below the larger of
      // the two limits: a slot freed by a failure is not taken again while the earlier attempts
      // still count, so a burst spread over time (several nodes, a slow user store) checks no
      // more secrets than one arriving at once.
      .where(sql<boolean>`fail_count + ${inFlight} < (case when fail_count < ${p.delayAfter} then ${Math.max(p.delayAfter, p.maxParallel)} else fail_count + 1 end)`)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  private async row(key: AccountKey) {
    return this.db.kysely.selectFrom('account_attempts').selectAll()
      .where('realm', '=', key.realm).where('user_key', '=', key.userKey).executeTakeFirst();
  }

  private async insertIgnore(key: AccountKey, now: number): Promise<void> {
    const q = this.db.kysely.insertInto('account_attempts').values({
      realm: key.realm, user_key: key.userKey, login: key.login, fail_count: 0, delay_ms: 0, pending: 0, pending_at: 0, window_start: 0, last_attempt: now,
    });
    await (this.db.dialect === 'mysql' ? q.ignore() : q.onConflict((oc) => oc.doNothing())).execute();
  }
}

/** The account of a directory user. */
export function accountOf(user: { realm: string; resolver: string; userId: string; login: string }): AccountKey {
  return { realm: user.realm, userKey: `${user.resolver}/${user.userId}`, login: user.login };
}
