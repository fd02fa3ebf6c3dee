import type { Transaction } from 'kysely';
import type { Db } from '../store/db.ts';
import type { Database } from '../store/schema.ts';
import { parseJsonObject } from '../util/json.ts';

/** The database or an open transaction. */
type Executor = Db['kysely'] | Transaction<Database>;

/** The user an enrollment claim is for. */
export interface ClaimOwner {
  resolver: string;
  userId: string;
}

/**
 * Autoenrollment's writes: the `enrollment_claims` table (one enrollment per user,
 * its primary key decides parallel first logins) and taking an autoenrolled token back.
 */
export class EnrollmentRepository {
  constructor(private readonly db: Db) {}

  async claimOf(user: ClaimOwner): Promise<{ tokenId: number } | undefined> {
    const row = await this.db.kysely.selectFrom('enrollment_claims').select('token_id')
      .where('resolver', '=', user.resolver).where('user_id', '=', user.userId).executeTakeFirst();
    return row ? { tokenId: Number(row.token_id) } : undefined;
  }

  /** Writes the claim unless the user already has one; true only for the request that wrote it. */
  async claim(trx: Executor, user: ClaimOwner, tokenId: number, now: number): Promise<boolean> {
    let claim = trx.insertInto('enrollment_claims').values({ resolver: user.resolver, user_id: user.userId, token_id: tokenId, created_at: now });
    claim = this.db.dialect === 'mysql' ? claim.ignore() : claim.onConflict((oc) => oc.columns(['resolver', 'user_id']).doNothing());
    const res = await claim.executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Releases the user's claim on `tokenId` (that token was removed or given to someone else). */
  async release(user: ClaimOwner, tokenId: number): Promise<void> {
    await this.db.kysely.deleteFrom('enrollment_claims')
      .where('resolver', '=', user.resolver).where('user_id', '=', user.userId).where('token_id', '=', tokenId).execute();
  }

  /** Releases every claim on the token. */
  async releaseToken(tokenId: number): Promise<void> {
    await this.db.kysely.deleteFrom('enrollment_claims').where('token_id', '=', tokenId).execute();
  }

  /**
   * Takes back an autoenrolled token (PIN from the user store) that was never used and
   * has no challenge left: its claim, realms and row. False when it does not qualify.
   */
  async undoUnused(serial: string): Promise<boolean> {
    const db = this.db.kysely;
    const token = await db.selectFrom('tokens').select(['id', 'token_info', 'last_auth_success']).where('serial', '=', serial).executeTakeFirst();
    if (!token || token.last_auth_success !== null || parseJsonObject<string>(token.token_info).pin_source !== 'store') return false;
    const challenges = await db.selectFrom('challenges').select('id').where('token_id', '=', token.id).execute();
    if (challenges.length > 0) return false;
    await db.deleteFrom('enrollment_claims').where('token_id', '=', token.id).execute();
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('token_realms').where('token_id', '=', token.id).execute();
      await trx.deleteFrom('tokens').where('id', '=', token.id).where('last_auth_success', 'is', null).execute();
    });
    return true;
  }
}
