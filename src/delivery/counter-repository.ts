import { sql, type Kysely } from 'kysely';
import type { Db } from '../store/db.ts';
import { PreparedQuery } from '../store/prepared.ts';
import { affected, atomicSteps, type Steps } from '../store/transaction.ts';
import type { Database } from '../store/schema.ts';
import { n } from './repository.ts';

/** One send-limit window of one scope and key, with its limit. */
export interface CounterBucket {
  scope: string;
  bucket: string;
  windowStart: number;
  max: number;
  expiresAt: number;
}

/** The send-limit counters: one row per (scope, bucket, window), counted up conditionally. */
export class SendCounterRepository {
  constructor(private readonly db: Db) {}

  private get k(): Kysely<Database> {
    return this.db.kysely;
  }

  /**
   * Counts one send in every bucket, all or nothing: each bucket is a
   * conditional increment (`count < max`) in one atomic step (store/transaction.ts
   * atomicSteps: inside the group commit on SQLite, a transaction elsewhere); the
   * first bucket at its limit rolls everything back and is returned. No bucket
   * (every limit off) writes nothing.
   */
  async consume(buckets: CounterBucket[]): Promise<{ ok: true } | { ok: false; bucket: CounterBucket }> {
    if (buckets.length === 0) return { ok: true };
    try {
      // a deadlock or serialisation failure runs the whole step again (store/transaction.ts)
      await atomicSteps(this.db, (k) => this.countSteps(k, buckets), { readCommitted: true, attempts: COUNT_ATTEMPTS });
      return { ok: true };
    } catch (e) {
      if (e instanceof OverLimit) return { ok: false, bucket: e.bucket };
      throw e;
    }
  }

  /**
   * {@link consume} as a step of the caller's atomic step: the first bucket at its limit throws
   * {@link OverLimit}, which rolls the caller's whole step back (run it with COUNT_ATTEMPTS).
   */
  *countSteps(k: Kysely<Database>, buckets: CounterBucket[]): Steps<void> {
    for (const b of buckets) if (!(yield* this.countOne(k, b))) throw new OverLimit(b);
  }

  /** One conditional increment; false when the bucket is at its limit. */
  private *countOne(k: Kysely<Database>, b: CounterBucket): Steps<boolean> {
    const { dialect } = this.db;
    const v = { scope: b.scope, bucket: b.bucket, windowStart: b.windowStart, max: b.max, expiresAt: b.expiresAt };
    // One atomic statement: insert the window's row, or count up while below the limit.
    if (dialect !== 'mysql') return affected(yield upsertQuery.bind(k, dialect, v)) === 1;
    // MySQL: update first (row locks in a fixed order), create the row only when missing;
    // INSERT IGNORE before UPDATE would take shared locks and deadlock under bursts.
    if (affected(yield incrementQuery.bind(k, dialect, v)) === 1) return true;
    if (affected(yield insertIgnoreQuery.bind(k, dialect, v)) === 1) return true;
    return affected(yield incrementQuery.bind(k, dialect, v)) === 1;
  }

  async counterValue(scope: string, bucket: string, windowStart: number): Promise<number> {
    const row = await this.k.selectFrom('delivery_counters').select('count').where('scope', '=', scope).where('bucket', '=', bucket).where('window_start', '=', windowStart).executeTakeFirst();
    return n(row?.count);
  }

  async pruneCounters(now: number): Promise<void> {
    await this.k.deleteFrom('delivery_counters').where('expires_at', '<', now).execute();
  }
}

type CounterValues = { scope: string; bucket: string; windowStart: number; max: number; expiresAt: number };

// compiled once (store/prepared.ts): six of them a message with the default limits
const upsertQuery = new PreparedQuery<CounterValues>((k, p) => k
  .insertInto('delivery_counters')
  .values({ scope: p.scope, bucket: p.bucket, window_start: p.windowStart, count: 1, expires_at: p.expiresAt })
  .onConflict((oc) =>
    oc
      .columns(['scope', 'bucket', 'window_start'])
      .doUpdateSet({ count: sql`${sql.ref('delivery_counters.count')} + 1` })
      .where('delivery_counters.count', '<', p.max)));
const incrementQuery = new PreparedQuery<CounterValues>((k, p) => k
  .updateTable('delivery_counters')
  .set({ count: sql`${sql.ref('count')} + 1` })
  .where('scope', '=', p.scope)
  .where('bucket', '=', p.bucket)
  .where('window_start', '=', p.windowStart)
  .where('count', '<', p.max));
const insertIgnoreQuery = new PreparedQuery<CounterValues>((k, p) => k
  .insertInto('delivery_counters')
  .values({ scope: p.scope, bucket: p.bucket, window_start: p.windowStart, count: 1, expires_at: p.expiresAt })
  .ignore());

/** Tries of an atomic step that counts sends: bursts on PostgreSQL and MariaDB deadlock now and then. */
export const COUNT_ATTEMPTS = 9;

/** A bucket at its limit: thrown inside {@link SendCounterRepository.countSteps}, so nothing of the step stays. */
export class OverLimit extends Error {
  constructor(readonly bucket: CounterBucket) {
    super('over limit');
  }
}
