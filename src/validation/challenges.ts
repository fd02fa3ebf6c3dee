import { sql, type Transaction } from 'kysely';
import type { Db } from '../store/db.ts';
import type { ChallengeTable, Database } from '../store/schema.ts';
import { randomDigits } from '../crypto/random.ts';
import { parseJsonObject } from '../util/json.ts';
import { PreparedQuery } from '../store/prepared.ts';
import { drive, type Steps } from '../store/transaction.ts';

/** The clean-up of every OTP check, compiled once (store/prepared.ts). */
const expiredOfOne = new PreparedQuery<{ id: number; now: number }>((k, p) =>
  k.deleteFrom('challenges').where('token_id', 'in', [p.id]).where('expires_at', '<=', p.now));

// a trigger's statements, compiled once
const insertQuery = new PreparedQuery<Omit<ChallengeTable, 'id'>>((k, p) => k.insertInto('challenges').values({
  transaction_id: p.transaction_id, token_id: p.token_id, serial: p.serial, subject: p.subject, otp_hash: p.otp_hash,
  counter: p.counter, status: p.status, received_count: p.received_count, valid_tan: p.valid_tan, fail_count: p.fail_count, message: p.message,
  client: p.client, created_at: p.created_at, expires_at: p.expires_at, data: p.data,
}));
const supersedeQuery = new PreparedQuery<{ tokenId: number; subject: string }>((k, p) => k.updateTable('challenges').set({ status: 'closed' })
  .where('token_id', '=', p.tokenId).where('subject', '=', p.subject).where('status', '=', 'open'));
const newestOpenSinceQuery = new PreparedQuery<{ tokenId: number; subject: string; now: number; since: number }>((k, p) => k.selectFrom('challenges').select('transaction_id')
  .where('token_id', '=', p.tokenId).where('subject', '=', p.subject).where('status', '=', 'open')
  .where('expires_at', '>', p.now).where('created_at', '>', p.since)
  .orderBy('id', 'desc').limit(1));
const openQuery = new PreparedQuery<{ tokenId: number; now: number }>((k, p) => k.selectFrom('challenges').selectAll()
  .where('token_id', '=', p.tokenId).where('status', '=', 'open').where('expires_at', '>', p.now).orderBy('id'));
const openOfTransactionQuery = new PreparedQuery<{ tokenId: number; now: number; transactionId: string }>((k, p) => k.selectFrom('challenges').selectAll()
  .where('token_id', '=', p.tokenId).where('status', '=', 'open').where('expires_at', '>', p.now).where('transaction_id', '=', p.transactionId).orderBy('id'));

export interface Challenge {
  id: number;
  transactionId: string;
  tokenId: number;
  serial: string;
  subject: string;
  otpHash: string;
  counter: number;
  status: 'open' | 'closed';
  receivedCount: number;
  /** Answered with the right code (spec 1.3.6 `valid_tan`). */
  validTan: boolean;
  failCount: number;
  message: string;
  client: string;
  createdAt: number;
  expiresAt: number;
  data: Record<string, unknown>;
}

function fromRow(r: ChallengeTable & { id: number }): Challenge {
  const data = parseJsonObject(r.data);
  return {
    id: Number(r.id), transactionId: r.transaction_id, tokenId: Number(r.token_id), serial: r.serial, subject: r.subject,
    otpHash: r.otp_hash, counter: Number(r.counter), status: r.status as 'open' | 'closed', receivedCount: Number(r.received_count), validTan: Number(r.valid_tan) === 1,
    failCount: Number(r.fail_count), message: r.message, client: r.client, createdAt: Number(r.created_at), expiresAt: Number(r.expires_at), data,
  };
}

/** The database or an open transaction. */
type Executor = Db['kysely'] | Transaction<Database>;

/** Challenges (transactions) in the database, so every node sees them. */
export class ChallengeRepository {
  constructor(private readonly db: Db) {}

  /** A fresh transaction id: `length` random digits (config TransactionIdLength, 12..17). */
  newTransactionId(length: number): string {
    return randomDigits(Math.min(17, Math.max(12, length)));
  }

  row(c: Omit<Challenge, 'id' | 'receivedCount' | 'validTan' | 'failCount' | 'status'>): Omit<ChallengeTable, 'id'> {
    return {
      transaction_id: c.transactionId, token_id: c.tokenId, serial: c.serial, subject: c.subject, otp_hash: c.otpHash,
      counter: c.counter, status: 'open', received_count: 0, valid_tan: 0, fail_count: 0, message: c.message,
      client: c.client, created_at: c.createdAt, expires_at: c.expiresAt, data: JSON.stringify(c.data),
    };
  }

  async insert(c: Omit<Challenge, 'id' | 'receivedCount' | 'validTan' | 'failCount' | 'status'>, exec: Executor = this.db.kysely): Promise<void> {
    await drive(exec, this.insertSteps(exec, c));
  }

  /** {@link insert} as a step (store/transaction.ts atomicSteps). */
  *insertSteps(k: Executor, c: Omit<Challenge, 'id' | 'receivedCount' | 'validTan' | 'failCount' | 'status'>): Steps<void> {
    yield insertQuery.bind(k, this.db.dialect, this.row(c));
  }

  /** Closes the open challenges of a token for one subject (a new challenge supersedes them). */
  async supersede(tokenId: number, subject: string, exec: Executor = this.db.kysely): Promise<void> {
    await drive(exec, this.supersedeSteps(exec, tokenId, subject));
  }

  /** {@link supersede} as a step. */
  *supersedeSteps(k: Executor, tokenId: number, subject: string): Steps<void> {
    yield supersedeQuery.bind(k, this.db.dialect, { tokenId, subject });
  }

  /** Transaction id of the newest open, unexpired challenge of the token for this subject created after `since`. */
  async newestOpenSince(tokenId: number, subject: string, now: number, since: number, exec: Executor = this.db.kysely): Promise<string | undefined> {
    return drive(exec, this.newestOpenSinceSteps(exec, tokenId, subject, now, since));
  }

  /** {@link newestOpenSince} as a step. */
  *newestOpenSinceSteps(k: Executor, tokenId: number, subject: string, now: number, since: number): Steps<string | undefined> {
    const res = yield newestOpenSinceQuery.bind(k, this.db.dialect, { tokenId, subject, now, since });
    return (res.rows[0] as { transaction_id: string } | undefined)?.transaction_id;
  }

  /** Open challenges of a token serial (any age), with their data. */
  async openOfSerial(serial: string): Promise<{ id: number; data: Record<string, unknown> }[]> {
    const rows = await this.db.kysely.selectFrom('challenges').select(['id', 'data']).where('serial', '=', serial).where('status', '=', 'open').execute();
    return rows.map((r) => ({ id: Number(r.id), data: parseJsonObject(r.data) }));
  }

  async deleteById(id: number): Promise<void> {
    await this.db.kysely.deleteFrom('challenges').where('id', '=', id).execute();
  }

  async deleteByTransaction(transactionId: string): Promise<void> {
    await this.db.kysely.deleteFrom('challenges').where('transaction_id', '=', transactionId).execute();
  }

  /** Open, unexpired challenges of a token (optionally of one transaction). */
  async open(tokenId: number, now: number, transactionId?: string): Promise<Challenge[]> {
    const { kysely, dialect } = this.db;
    const res = transactionId === undefined
      ? await openQuery.run(kysely, dialect, { tokenId, now })
      : await openOfTransactionQuery.run(kysely, dialect, { tokenId, now, transactionId });
    return res.rows.map((r) => fromRow(r as ChallengeTable & { id: number }));
  }

  async byTransaction(transactionId: string): Promise<Challenge[]> {
    const rows = await this.db.kysely.selectFrom('challenges').selectAll().where((eb) => eb.or([eb('transaction_id', '=', transactionId), eb('transaction_id', 'like', `${transactionId}.%`)])).execute();
    return rows.map((r) => fromRow(r as ChallengeTable & { id: number }));
  }

  /** Closes a challenge once: true only for the request that closed it. */
  async close(id: number, valid: boolean): Promise<boolean> {
    const res = await this.db.kysely.updateTable('challenges').set({ status: 'closed', valid_tan: valid ? 1 : 0, received_count: sql`received_count + 1` }).where('id', '=', id).where('status', '=', 'open').executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Counts a wrong answer; closes the challenge when its attempt cap is reached. */
  async recordFailure(id: number, maxAttempts: number): Promise<void> {
    await this.db.kysely.updateTable('challenges').set({ fail_count: sql`fail_count + 1`, received_count: sql`received_count + 1` }).where('id', '=', id).execute();
    await this.db.kysely.updateTable('challenges').set({ status: 'closed' }).where('id', '=', id).where('fail_count', '>=', maxAttempts).execute();
  }

  async deleteExpired(tokenIds: number[], now: number): Promise<void> {
    if (tokenIds.length === 1) await expiredOfOne.run(this.db.kysely, this.db.dialect, { id: tokenIds[0], now });
    else if (tokenIds.length) await this.db.kysely.deleteFrom('challenges').where('token_id', 'in', tokenIds).where('expires_at', '<=', now).execute();
  }
}
