// Invariant of the SQLite driver's durability: SQLite runs synchronous=OFF (COMMIT does not
// sync the WAL) and the driver fsyncs (fdatasync) the WAL file itself, off the event loop; no write, unit
// of work or explicit transaction resolves before that fsync of its commit has finished.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../../src/store/db.ts';

let dir: string;
let db: Db;
const realFsync = fs.fdatasync;
/** When each fsync of the driver finished (performance.now), held back by `holdMs`. */
const synced: number[] = [];
let holdMs = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'otpd-walsync-'));
  (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
    realFsync(fd, (e) => setTimeout(() => {
      synced.push(performance.now());
      cb(e);
    }, holdMs));
  }) as typeof fs.fdatasync;
  syncBuiltinESMExports();
  db = await openDatabase(`sqlite:${join(dir, 'w.sqlite')}`);
  await sql`create table t (id integer primary key, n integer not null)`.execute(db.kysely);
});
after(async () => {
  await db.close();
  (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = realFsync;
  syncBuiltinESMExports();
  rmSync(dir, { recursive: true, force: true });
});

const k = () => db.kysely as any;

test('the database runs in WAL mode (synchronous=OFF is asserted by openDatabase on its own connection)', () => {
  const raw = new Database(join(dir, 'w.sqlite'), { readonly: true });
  try {
    assert.equal(String(raw.pragma('journal_mode', { simple: true })).toLowerCase(), 'wal');
  } finally {
    raw.close();
  }
});

test('a plain write resolves only after the WAL fsync of its commit', async () => {
  holdMs = 80;
  const before = synced.length;
  await k().insertInto('t').values({ id: 1, n: 0 }).execute();
  const resolvedAt = performance.now();
  assert.ok(synced.length > before, 'an fsync ran');
  assert.ok(resolvedAt >= synced.at(-1)!, 'resolved after it finished');
});

test('a unit of work settles only after the fsync; the event loop runs meanwhile', async () => {
  holdMs = 80;
  const before = synced.length;
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  await db.unitOfWork(async () => {
    await k().insertInto('t').values({ id: 2, n: 0 }).execute();
    await k().updateTable('t').set({ n: 1 }).where('id', '=', 2).execute();
  });
  const settledAt = performance.now();
  clearInterval(timer);
  assert.ok(synced.length > before);
  assert.ok(settledAt >= synced.at(-1)!);
  assert.ok(ticks >= 5, `timers ran while the fsync was held (${ticks} ticks)`);
});

test('an explicit transaction resolves only after the fsync of its COMMIT', async () => {
  holdMs = 80;
  const before = synced.length;
  await k().transaction().execute(async (trx: any) => {
    await trx.insertInto('t').values({ id: 3, n: 0 }).execute();
  });
  assert.ok(synced.length > before);
  assert.ok(performance.now() >= synced.at(-1)!);
});
