// Invariant: on PostgreSQL and MariaDB no query holds a request past the query time limit: one
// without an answer fails as an outage (ERR2008 to the faces) within the limit, its connection is
// closed and never handed out again, and the pool goes on serving; migrations run unbounded.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, QueryTimeoutError } from '../../src/store/db.ts';
import { isDatabaseUnavailable } from '../../src/store/unavailable.ts';
import { availableDialects, createTestDb } from '../helpers/db.ts';

const LIMIT_MS = 300;

for (const { dialect, skip } of await availableDialects()) {
  if (dialect === 'sqlite') continue; // no network between otpd and SQLite
  describe(`query time limit on ${dialect}`, { skip }, () => {
    const sleep = (seconds: number) => (dialect === 'postgres' ? sql`select pg_sleep(${seconds})` : sql`select sleep(${seconds})`);

    test('a query past the limit fails as an outage within it; the pool serves on; migrations are exempt', async () => {
      const t = await createTestDb(dialect);
      const db = await openDatabase(t.url, { queryTimeoutMs: LIMIT_MS });
      try {
        const t0 = Date.now();
        const err = await sleep(3).execute(db.kysely).then(() => undefined, (e: unknown) => e);
        const took = Date.now() - t0;
        assert.ok(err instanceof QueryTimeoutError || (err instanceof Error && /did not answer within 300 ms/.test(err.message)), String(err));
        assert.ok(isDatabaseUnavailable(err), 'answered as an outage (ERR2008)');
        assert.ok(took >= LIMIT_MS - 20 && took < LIMIT_MS + 1500, `failed after ${took} ms`);
        // the pool goes on: the broken connection is not handed out again
        for (let i = 0; i < 12; i++) assert.equal((await sql<{ one: number }>`select 1 as one`.execute(db.kysely)).rows[0]!.one, 1);
        // inside a transaction too; the next transaction commits
        const inTrx = await db.kysely.transaction().execute(async (trx) => { await sleep(3).execute(trx); }).then(() => undefined, (e: unknown) => e);
        assert.ok(isDatabaseUnavailable(inTrx), String(inTrx));
        await db.kysely.transaction().execute(async (trx) => { await sql`select 1`.execute(trx); });
        // what runs under withoutQueryTimeout (migrations) may take longer
        await db.withoutQueryTimeout!(() => sleep(0.6).execute(db.kysely));
        // under the limit: unchanged
        await sleep(0.05).execute(db.kysely);
      } finally {
        await db.close();
        await t.drop();
      }
    });
  });
}
