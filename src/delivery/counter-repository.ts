import { sql, type Kysely, type Transaction } from 'kysely';
import type { Db } from '../store/db.ts';
import { transaction } from '../store/transaction.ts';
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
   * conditional increment (`count < max`) in one transaction; the first
   * bucket at its limit rolls everything back and is returned.
   */
  async consume(buckets: CounterBucket[]): Promise<{ ok: true } | { ok: false; bucket: CounterBucket }> {
    try {
      // a deadlock or serialisation failure runs the whole transaction again (store/transaction.ts)
      return await transaction(this.db, async (trx) => {
        for (const b of buckets) if (!(await this.countOne(trx, b))) throw new OverLimit(b);
        return { ok: true as const };
      }, { readCommitted: true, attempts: 9 });
    } catch (e) {
      if (e instanceof OverLimit) return { ok: false, bucket: e.bucket };
      throw e;
    }
  }

  /** One conditional increment; false when the bucket is at its limit. */
  private async countOne(trx: Transaction<Database>, b: CounterBucket): Promise<boolean> {
    const row = { scope: b.scope, bucket: b.bucket, window_start: b.windowStart, count: 1, expires_at: b.expiresAt };
    const increment = () =>
      trx
        .updateTable('delivery_counters')
        .set({ count: sql`${sql.ref('count')} + 1` })
        .where('scope', '=', b.scope)
        .where('bucket', '=', b.bucket)
        .where('window_start', '=', b.windowStart)
        .where('count', '<', b.max)
        .executeTakeFirst();
    if (this.db.dialect !== 'mysql') {
      // One atomic statement: insert the window's row, or count up while below the limit.
      const res = await trx
        .insertInto('delivery_counters')
        .values(row)
        .onConflict((oc) =>
          oc
            .columns(['scope', 'bucket', 'window_start'])
            .doUpdateSet({ count: sql`${sql.ref('delivery_counters.count')} + 1` })
            .where('delivery_counters.count', '<', b.max),
        )
        .executeTakeFirst();
      return n(res.numInsertedOrUpdatedRows) === 1;
    }
    // MySQL: update first (row locks in a fixed order), create the row only when missing;
    // INSERT IGNORE before UPDATE would take shared locks and deadlock under bursts.
    if (n((await increment()).numUpdatedRows) === 1) return true;
    const inserted = await trx.insertInto('delivery_counters').values(row).ignore().executeTakeFirst();
    if (n(inserted.numInsertedOrUpdatedRows) === 1) return true;
    return n((await increment()).numUpdatedRows) === 1;
  }

  async counterValue(scope: string, bucket: string, windowStart: number): Promise<number> {
    const row = await this.k.selectFrom('delivery_counters').select('count').where('scope', '=', scope).where('bucket', '=', bucket).where('window_start', '=', windowStart).executeTakeFirst();
    return n(row?.count);
  }

  async pruneCounters(now: number): Promise<void> {
    await this.k.deleteFrom('delivery_counters').where('expires_at', '<', now).execute();
  }
}

class OverLimit extends Error {
  constructor(readonly bucket: CounterBucket) {
    super('over limit');
  }
}
