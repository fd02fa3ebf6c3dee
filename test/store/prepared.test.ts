// A prepared query (store/prepared.ts) runs exactly the SQL Kysely compiles for the same query,
// with each run's values in the placeholders' places, on every dialect; a placeholder that
// would not be one bound parameter (a literal, part of a string) fails instead of running.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { availableDialects, createTestDb, type TestDb } from '../helpers/db.ts';
import { PreparedQuery } from '../../src/store/prepared.ts';

for (const { dialect, skip } of await availableDialects()) {
  describe(`prepared queries on ${dialect}`, { skip }, () => {
    let t: TestDb;
    before(async () => {
      t = await createTestDb(dialect);
      await t.db.kysely.insertInto('account_attempts').values([
        { realm: 'r', user_key: 'a', login: 'a', fail_count: 1, delay_ms: 0, pending: 0, pending_at: 0, window_start: 0, last_attempt: 0 },
        { realm: 'r', user_key: 'b', login: 'b', fail_count: 2, delay_ms: 0, pending: 0, pending_at: 0, window_start: 0, last_attempt: 0 },
      ]).execute();
    });
    after(() => t?.drop());

    test('the SQL is the builder\'s, the values are each run\'s, repeated placeholders included', async () => {
      const build = (k: typeof t.db.kysely, p: { user: string; add: number; below: number }) => k.updateTable('account_attempts')
        .set({ fail_count: sql`fail_count + ${p.add}`, last_attempt: p.add })
        .where('realm', '=', 'r').where('user_key', '=', p.user).where('fail_count', '<', p.below);
      const q = new PreparedQuery<{ user: string; add: number; below: number }>(build);
      const direct = build(t.db.kysely, { user: 'a', add: 5, below: 10 }).compile();
      const res = await q.run(t.db.kysely, t.db.dialect, { user: 'a', add: 5, below: 10 });
      assert.equal(Number(res.numAffectedRows), 1);
      // the first run compiled it; a second with other values reuses that SQL
      assert.equal(Number((await q.run(t.db.kysely, t.db.dialect, { user: 'b', add: 3, below: 3 })).numAffectedRows), 1);
      assert.equal(Number((await q.run(t.db.kysely, t.db.dialect, { user: 'b', add: 3, below: 3 })).numAffectedRows), 0, 'fail_count 5 is not below 3');
      const rows = await t.db.kysely.selectFrom('account_attempts').select(['user_key', 'fail_count', 'last_attempt']).orderBy('user_key').execute();
      assert.deepEqual(rows.map((r) => [r.user_key, Number(r.fail_count), Number(r.last_attempt)]), [['a', 6, 5], ['b', 5, 3]]);
      // what ran is what Kysely compiles
      const seen: string[] = [];
      const spy = new PreparedQuery<{ user: string; add: number; below: number }>((k, p) => {
        const b = build(k, p);
        seen.push(b.compile().sql);
        return b;
      });
      await spy.run(t.db.kysely, t.db.dialect, { user: 'zz', add: 1, below: 1 });
      assert.deepEqual(seen, [direct.sql]);
    });

    test('selects return the rows', async () => {
      const q = new PreparedQuery<{ user: string }>((k, p) => k.selectFrom('account_attempts').selectAll().where('realm', '=', 'r').where('user_key', '=', p.user));
      const res = await q.run(t.db.kysely, t.db.dialect, { user: 'b' });
      assert.equal(res.rows.length, 1);
      assert.equal((res.rows[0] as { login: string }).login, 'b');
      assert.equal((await q.run(t.db.kysely, t.db.dialect, { user: 'nobody' })).rows.length, 0);
    });

    test('a placeholder that is not one bound parameter, or a missing value, fails', async () => {
      const lit = new PreparedQuery<{ n: number }>((k, p) => k.selectFrom('account_attempts').selectAll().where(sql<boolean>`fail_count < ${sql.lit(p.n)}`));
      await assert.rejects(lit.run(t.db.kysely, t.db.dialect, { n: 1 }), /placeholder/);
      const inside = new PreparedQuery<{ user: string }>((k, p) => k.selectFrom('account_attempts').selectAll().where('user_key', 'like', `${p.user}%`));
      await assert.rejects(inside.run(t.db.kysely, t.db.dialect, { user: 'a' }), /placeholder is part of a value/);
      const q = new PreparedQuery<{ user: string }>((k, p) => k.selectFrom('account_attempts').selectAll().where('user_key', '=', p.user));
      await assert.rejects(q.run(t.db.kysely, t.db.dialect, {} as { user: string }), /no value for user/);
    });
  });
}
