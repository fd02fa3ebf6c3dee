// Invariant: /readyz and RADIUS Status-Server report "ready" only while the database answers;
// a flood of probes costs the database one query per interval, not one per probe.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cachedReadiness, readiness } from '../../src/store/readiness.ts';
import { availableDialects, createTestDb } from '../helpers/db.ts';

for (const { dialect, skip } of await availableDialects()) {
  describe(`readiness on ${dialect}`, { skip }, () => {
    test('ready on a migrated database; "database unreachable" once it is gone', async () => {
      const t = await createTestDb(dialect);
      assert.equal(await readiness(t.db), 'ready');
      await t.db.close();
      assert.equal(await readiness(t.db), 'database unreachable');
      await t.drop().catch(() => undefined);
    });

    test('cached: one probe per interval, shared by callers at once; the next interval sees the outage', async () => {
      const t = await createTestDb(dialect);
      let now = 0;
      let queries = 0;
      const kysely = t.db.kysely;
      const counted = { ...t.db, kysely: kysely.withPlugin({ transformQuery: (a) => (queries++, a.node), transformResult: async (a) => a.result }) };
      const probe = cachedReadiness(counted, 1000, () => now);
      const answers = await Promise.all(Array.from({ length: 20 }, () => probe()));
      assert.deepEqual(new Set(answers), new Set(['ready']));
      const perProbe = queries;
      assert.ok(perProbe >= 1 && perProbe <= 3, `${perProbe} queries for 20 probes at once`);
      now = 999;
      assert.equal(await probe(), 'ready');
      assert.equal(queries, perProbe, 'within the interval: from the cache');
      await t.db.close();
      now = 1000;
      assert.equal(await probe(), 'database unreachable');
      await t.drop().catch(() => undefined);
    });
  });
}
