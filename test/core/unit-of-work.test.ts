// Invariant of a unit of work on the SQLite group-commit driver (one request): its writes
// resolve as soon as they ran, but the unit settles only when every one of them is committed
// (visible to another connection), and rejects when a group holding one of them failed to
// commit; writes outside the unit, or after it ended, still wait for their own commit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { openDatabase, outsideUnitOfWork, type Db } from '../../src/store/db.ts';

let dir: string;
let db: Db;
let observer: Database.Database;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'otpd-unit-'));
  db = await openDatabase(`sqlite:${join(dir, 'u.sqlite')}`);
  await sql`create table t (id integer primary key, n integer not null)`.execute(db.kysely);
  await sql`create table parent (id integer primary key)`.execute(db.kysely);
  // a deferred foreign key is checked at COMMIT: a way to make a group's commit fail
  await sql`create table child (id integer primary key, parent_id integer references parent(id) deferrable initially deferred)`.execute(db.kysely);
  observer = new Database(join(dir, 'u.sqlite'), { readonly: true });
});
after(async () => {
  observer.close();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const k = () => db.kysely as any;
const committed = (id: number) => observer.prepare('select 1 from t where id = ?').get(id) !== undefined;

test('inside a unit, writes resolve before their commit; the unit settles after it', async () => {
  const seen: boolean[] = [];
  await db.unitOfWork(async () => {
    await k().insertInto('t').values({ id: 1, n: 0 }).execute();
    seen.push(committed(1));
    const res = await k().updateTable('t').set({ n: 1 }).where('id', '=', 1).where('n', '=', 0).executeTakeFirst();
    assert.equal(res.numUpdatedRows, 1n, 'the result of a conditional write is there at once');
    await k().insertInto('t').values({ id: 2, n: 0 }).execute();
    seen.push(committed(2));
  });
  assert.deepEqual(seen, [false, false], 'no write had committed when it resolved');
  assert.ok(committed(1) && committed(2), 'both committed when the unit settled');
});

test('concurrent units: exactly one conditional winner, every unit durable when it settles', async () => {
  await k().insertInto('t').values({ id: 10, n: 0 }).execute();
  const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => db.unitOfWork(async () => {
    const res = await k().updateTable('t').set({ n: i + 1 }).where('id', '=', 10).where('n', '=', 0).executeTakeFirst();
    await k().insertInto('t').values({ id: 100 + i, n: i }).execute();
    return res.numUpdatedRows === 1n;
  }).then((won) => ({ won, durable: committed(100 + i) }))));
  assert.equal(wins.filter((w) => w.won).length, 1);
  assert.ok(wins.every((w) => w.durable));
});

test('a failed commit fails the unit, and the other writes of its group with it', async () => {
  const unit = db.unitOfWork(async () => {
    await k().insertInto('t').values({ id: 300, n: 0 }).execute();
    await k().insertInto('child').values({ id: 1, parent_id: 999 }).execute();
    return 'answered';
  });
  const plain = k().insertInto('t').values({ id: 301, n: 0 }).execute();
  await assert.rejects(unit, /FOREIGN KEY/);
  await assert.rejects(plain, /FOREIGN KEY/);
  assert.equal(committed(300), false);
  assert.equal(committed(301), false);
  // the driver goes on: the next group commits
  await k().insertInto('t').values({ id: 302, n: 0 }).execute();
  assert.ok(committed(302));
});

test('the work\'s own error wins over nothing to commit; writes made before it still commit', async () => {
  await assert.rejects(db.unitOfWork(async () => {
    await k().insertInto('t').values({ id: 400, n: 0 }).execute();
    throw new Error('refused');
  }), /refused/);
  assert.ok(committed(400), 'the unit settled only after its write committed');
});

test('outside a unit, and for work that outlives it, a write waits for its own commit', async () => {
  let late: Promise<boolean> | undefined;
  let outside: Promise<boolean> | undefined;
  await db.unitOfWork(async () => {
    outside = outsideUnitOfWork(() => k().insertInto('t').values({ id: 500, n: 0 }).execute().then(() => committed(500)));
    late = new Promise((resolve) => setTimeout(resolve, 20)).then(() => k().insertInto('t').values({ id: 501, n: 0 }).execute()).then(() => committed(501));
  });
  assert.equal(await outside, true, 'outsideUnitOfWork: resolved after its commit');
  assert.equal(await late, true, 'a write after the unit ended: resolved after its commit');
});
