// Invariant: /readyz and RADIUS Status-Server report "ready" only while the database answers;
// a flood of probes costs the database one query per interval, not one per probe. A PostgreSQL on
// the same host is reached over its Unix socket with the socket directory as the URL's host
// (docs/configuration.md), and the URL logged says so without anything else.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase } from '../../src/store/db.ts';
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

const PG_SOCKET_DIR = '/var/run/postgresql';
const pg = (await availableDialects()).find((d) => d.dialect === 'postgres')!;
test('PostgreSQL over its Unix socket: postgres://user@%2Fvar%2Frun%2Fpostgresql/db', { skip: pg.skip }, async () => {
  const t = await createTestDb('postgres');
  const name = t.url.slice(t.url.lastIndexOf('/') + 1);
  const url = `postgres://postgres@${encodeURIComponent(PG_SOCKET_DIR)}/${name}`;
  const db = await openDatabase(url);
  try {
    assert.equal(await readiness(db), 'ready');
    await db.kysely.insertInto('config').values({ key: 'socket.check', value: 'v', type: '', description: '' }).execute();
    // the row is in the database the TCP connection sees: the same server, not another one
    const row = await t.db.kysely.selectFrom('config').select('value').where('key', '=', 'socket.check').executeTakeFirst();
    assert.equal(row?.value, 'v');
    assert.equal(db.safeUrl, url);
    const [{ addr }] = (await sql<{ addr: string | null }>`select inet_client_addr()::text as addr`.execute(db.kysely)).rows;
    assert.equal(addr, null, 'a Unix-socket connection has no client address');
  } finally {
    await db.close();
    await t.drop();
  }
});
