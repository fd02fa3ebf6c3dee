// Invariant of the SQLite group-commit driver: a write's promise resolves only when the
// write is committed (visible to another connection), concurrent writes share a commit,
// conditional writes keep exactly one winner, a failing statement does not take the others
// down, a statement that makes SQLite roll the whole transaction back ends the group (no write
// then runs outside a transaction), and explicit transactions stay isolated and roll back completely.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../../src/store/db.ts';

let dir: string;
let db: Db;
let observer: Database.Database;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'otpd-group-'));
  db = await openDatabase(`sqlite:${join(dir, 'g.sqlite')}`);
  await sql`create table t (id integer primary key, n integer not null, u text unique)`.execute(db.kysely);
  observer = new Database(join(dir, 'g.sqlite'), { readonly: true });
});
after(async () => {
  observer.close();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const k = () => db.kysely as any;

test('a write resolves only after its commit; concurrent writes share one', async () => {
  const seenAtResolve: number[] = [];
  const writes = Array.from({ length: 50 }, (_, i) =>
    k().insertInto('t').values({ id: i + 1, n: 0, u: `u${i}` }).execute().then(() => {
      seenAtResolve.push((observer.prepare('select count(*) as c from t').get() as { c: number }).c);
    }),
  );
  assert.equal((observer.prepare('select count(*) as c from t').get() as { c: number }).c, 0, 'nothing committed before the turn ends');
  await Promise.all(writes);
  assert.ok(seenAtResolve.every((c) => c === 50), 'every writer saw all 50 rows committed: one group');
});

test('conditional writes in one group: exactly one winner', async () => {
  const results = await Promise.all(Array.from({ length: 20 }, () => k().updateTable('t').set({ n: 1 }).where('id', '=', 1).where('n', '=', 0).executeTakeFirst()));
  assert.equal(results.filter((r: { numUpdatedRows: bigint }) => r.numUpdatedRows === 1n).length, 1);
});

test('a failing statement rejects alone; the rest of the group commits', async () => {
  const [bad, good] = await Promise.allSettled([
    k().insertInto('t').values({ id: 100, n: 0, u: 'u1' }).execute(),
    k().insertInto('t').values({ id: 101, n: 0, u: 'fresh' }).execute(),
  ]);
  assert.equal(bad.status, 'rejected');
  assert.equal(good.status, 'fulfilled');
  assert.ok(observer.prepare('select 1 from t where id = 101').get());
});

test('explicit transactions are isolated from the group and roll back completely', async () => {
  let outside: Promise<unknown> | undefined;
  await assert.rejects(
    k().transaction().execute(async (trx: any) => {
      await trx.insertInto('t').values({ id: 200, n: 0, u: 'tx1' }).execute();
      outside = k().insertInto('t').values({ id: 201, n: 0, u: 'outside' }).execute();
      await trx.insertInto('t').values({ id: 202, n: 0, u: 'tx2' }).execute();
      throw new Error('abort');
    }),
    /abort/,
  );
  await outside;
  assert.equal(observer.prepare('select 1 from t where id = 200').get(), undefined);
  assert.equal(observer.prepare('select 1 from t where id = 202').get(), undefined);
  assert.ok(observer.prepare('select 1 from t where id = 201').get(), 'the outside write waited and then committed on its own');
});

// SQLite rolls a whole transaction back by itself when a statement fails with SQLITE_FULL (here:
// the file may not grow past max_page_count, as on a full disk). The group's earlier writes are
// then gone, and the group must end with them: before, the statements after the failing one ran
// outside any transaction (each committed on its own) while the group's COMMIT then failed
// ("no transaction is active"), so their callers were told "failed" for writes that were durable.
test('a statement that makes SQLite roll the group back ends the group: what resolved is committed, what failed is not', async () => {
  await k().insertInto('t').values([{ id: 300, n: 0, u: 'full-a' }, { id: 301, n: 0, u: 'full-c' }]).execute();
  const pages = Number((observer.prepare('pragma page_count').get() as { page_count: number }).page_count);
  await sql.raw(`pragma max_page_count = ${pages + 1}`).execute(db.kysely);
  try {
    const [a, b, c] = await Promise.allSettled([
      k().updateTable('t').set({ n: 1 }).where('id', '=', 300).execute(),
      k().insertInto('t').values({ id: 302, n: 0, u: 'x'.repeat(200_000) }).execute(),
      k().updateTable('t').set({ n: 1 }).where('id', '=', 301).execute(),
    ]);
    assert.equal(b.status, 'rejected');
    assert.equal((b as PromiseRejectedResult).reason.code, 'SQLITE_FULL');
    const committed = (id: number) => (observer.prepare('select n from t where id = ?').get(id) as { n: number }).n === 1;
    for (const [id, r] of [[300, a], [301, c]] as const) {
      assert.equal(committed(id), r.status === 'fulfilled', `row ${id}: ${r.status} ${(r as PromiseRejectedResult).reason ?? ''}`);
      if (r.status === 'rejected') assert.equal(r.reason.code, 'SQLITE_FULL', `row ${id}: a database error, not "no transaction is active"`);
    }
    assert.equal(a.status, 'rejected', 'the write before the failing one was rolled back with the group');
    assert.equal(c.status, 'fulfilled', 'the write after it went to a new group');
  } finally {
    await sql.raw('pragma max_page_count = 1073741823').execute(db.kysely);
  }
  await k().insertInto('t').values({ id: 303, n: 0, u: 'after' }).execute();
  assert.ok(observer.prepare('select 1 from t where id = 303').get(), 'the group commit works on');
});

test('atomically work after a statement that lost the group fails instead of waiting forever', async () => {
  const dbAny = db as Required<Db>;
  const pages = Number((observer.prepare('pragma page_count').get() as { page_count: number }).page_count);
  await sql.raw(`pragma max_page_count = ${pages + 1}`).execute(db.kysely);
  try {
    const atom = dbAny.atomically((exec) => exec(sql`insert into t (id, n, u) values (400, 0, 'atom')`.compile(db.kysely)));
    const big = k().insertInto('t').values({ id: 401, n: 0, u: 'y'.repeat(200_000) }).execute();
    const [x, y] = await Promise.allSettled([atom.then((r) => r.committed), big]);
    assert.equal(y.status, 'rejected');
    assert.equal(x.status, 'rejected', 'the atomically work of the lost group failed (it would have stayed pending)');
    assert.equal(observer.prepare('select 1 from t where id = 400').get(), undefined);
  } finally {
    await sql.raw('pragma max_page_count = 1073741823').execute(db.kysely);
  }
});
