// Invariant of the SQLite driver's checkpoints (store/sqlite-group.ts): no fsync ever runs on the
// event loop's thread (SQLite's own automatic checkpoint, inside a COMMIT, did: the page copy and
// two fsyncs held every request), the WAL stays bounded under steady writes, writes (not reads)
// wait while a checkpoint's database-file fsync runs, a failed fsync of the database file stops
// every later write instead of restarting the WAL over pages that may be lost, and a kill -9 in
// the middle of checkpoints loses no acknowledged write.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs, { mkdtempSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../../src/store/db.ts';
import { CHECKPOINT_COMMITS } from '../../src/store/sqlite-group.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let dir: string;
const realFsync = fs.fdatasync;
/** Replaces the driver's fsync for the database file (not its WAL): `hook` decides what it does. */
let hook: ((cb: (e: NodeJS.ErrnoException | null) => void) => void) | undefined;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'otpd-ckpt-'));
  (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // not a file we know
    }
    if (hook && target.endsWith('.sqlite')) hook((e) => (e ? cb(e) : realFsync(fd, cb)));
    else realFsync(fd, cb);
  }) as typeof fs.fdatasync;
  syncBuiltinESMExports();
});
after(() => {
  (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = realFsync;
  syncBuiltinESMExports();
  rmSync(dir, { recursive: true, force: true });
});

async function open(name: string): Promise<{ db: Db; k: any; path: string }> {
  const path = join(dir, name);
  const db = await openDatabase(`sqlite:${path}`);
  await sql`create table t (id integer primary key, pad blob not null)`.execute(db.kysely);
  return { db, k: db.kysely as any, path };
}

/** Writes a child process's script: otpd's database at `path` with table t open as `db` and `k`, then `body`. */
function childScript(name: string, path: string, body: string): string {
  const script = join(dir, name);
  writeFileSync(script, `
    import { openDatabase } from ${JSON.stringify(join(ROOT, 'src/store/db.ts'))};
    const db = await openDatabase(${JSON.stringify(`sqlite:${path}`)});
    await db.kysely.schema.createTable('t').ifNotExists().addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('pad', 'blob', (c) => c.notNull()).execute();
    const k = db.kysely;
${body}`);
  return script;
}

/** One commit a call: a group of `rows` inserts of 1 KB each. */
async function commitRows(k: any, from: number, rows: number): Promise<void> {
  await Promise.all(Array.from({ length: rows }, (_, i) => k.insertInto('t').values({ id: from + i, pad: Buffer.alloc(1024, i) }).execute()));
}

test('SQLite fsyncs nothing on the event loop: every fsync of a write-heavy run is on the thread pool', { timeout: 120_000 }, () => {
  // a child process under strace: which thread called fsync/fdatasync (the main thread's id is the pid)
  const path = join(dir, 'strace.sqlite');
  const script = childScript('writer.mts', path, `
    // a marker in the trace: what SQLite did while opening the file (switching it to WAL) is not the point
    try { (await import('node:fs')).accessSync('/otpd-strace-marker'); } catch {}
    // 400 commits of 8 rows of 1 KB: 3 MB, past SQLite's own checkpoint threshold of 1000 pages
    for (let c = 0; c < 400; c++) await Promise.all(Array.from({ length: 8 }, (_, i) => k.insertInto('t').values({ id: c * 8 + i, pad: Buffer.alloc(1024, c) }).execute()));
    process.stdout.write('pid ' + process.pid + '\\n');
    process.exit(0);
  `);
  const trace = join(dir, 'strace.out');
  const res = spawnSync('strace', ['-f', '-qq', '-e', 'trace=fsync,fdatasync,access', '-o', trace, process.execPath, '--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  const pid = Number(/pid (\d+)/.exec(res.stdout)![1]);
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const from = lines.findIndex((l) => l.includes('/otpd-strace-marker'));
  assert.ok(from >= 0, 'the marker is in the trace');
  const calls = lines.slice(from).filter((l) => /\b(fsync|fdatasync)\(/.test(l));
  const onLoop = calls.filter((l) => Number(l.split(/\s+/)[0]) === pid);
  assert.ok(calls.length >= 400, `the driver fsynced (${calls.length} calls)`);
  assert.deepEqual(onLoop, [], 'no fsync on the main thread');
});

test('under steady writes the WAL stays bounded and checkpoints run', { timeout: 60_000 }, async () => {
  const { db, k, path } = await open('bounded.sqlite');
  try {
    // 2,000 commits of 8 KB: 16 MB through the WAL
    for (let c = 0; c < 2000; c++) await commitRows(k, c * 8, 8);
    const stats = db.stats() as { sqlite: { checkpoints: number; commits: number } };
    assert.ok(stats.sqlite.checkpoints >= 2000 / CHECKPOINT_COMMITS / 2, `checkpoints ran (${stats.sqlite.checkpoints})`);
    const wal = statSync(`${path}-wal`).size;
    assert.ok(wal < 4 * 1024 * 1024, `WAL ${(wal / 1e6).toFixed(1)} MB after 16 MB written`);
    const rows = await k.selectFrom('t').select(sql<number>`count(*)`.as('n')).executeTakeFirst();
    assert.equal(Number(rows.n), 16_000);
  } finally {
    await db.close();
  }
  const raw = new Database(path, { readonly: true });
  try {
    assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    raw.close();
  }
});

test('while the database file is fsynced after a checkpoint, reads go on and writes wait for it', { timeout: 30_000 }, async () => {
  const { db, k } = await open('hold.sqlite');
  let release!: () => void;
  let held = false;
  let signal!: () => void;
  const reached = new Promise<void>((r) => (signal = r));
  const pending: Promise<void>[] = [];
  try {
    await commitRows(k, 0, 1);
    hook = (go) => {
      held = true;
      release = () => {
        held = false;
        go(null);
      };
      signal();
    };
    // a write that comes after the hold began waits: race it against the hold being reached
    for (let c = 1; !held && c < CHECKPOINT_COMMITS * 3; c++) {
      const p = commitRows(k, c * 8, 8);
      pending.push(p);
      await Promise.race([p, reached]);
    }
    assert.ok(held, 'a checkpoint reached the database file fsync');
    hook = undefined;
    const read = await k.selectFrom('t').select('id').where('id', '=', 0).executeTakeFirst();
    assert.equal(read.id, 0, 'a read is answered during the fsync');
    let written = false;
    const write = k.insertInto('t').values({ id: 1_000_000, pad: Buffer.alloc(1) }).execute().then(() => (written = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(written, false, 'a write waits for the fsync');
    release();
    await write;
    await Promise.all(pending);
  } finally {
    hook = undefined;
    if (held) release();
    await db.close();
  }
});

test('a failed fsync of the database file fails every later write (an outage), and reads still work', { timeout: 30_000 }, async () => {
  const { db, k } = await open('broken.sqlite');
  try {
    await commitRows(k, 0, 1);
    let failed = false;
    hook = (go) => {
      failed = true;
      go(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    };
    for (let c = 1; !failed && c < CHECKPOINT_COMMITS * 3; c++) await commitRows(k, c * 8, 8).catch(() => undefined);
    hook = undefined;
    assert.ok(failed, 'the checkpoint fsynced the database file');
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(k.insertInto('t').values({ id: 2_000_000, pad: Buffer.alloc(1) }).execute(), (e: NodeJS.ErrnoException) => e.code === 'SQLITE_IOERR_FSYNC');
    const read = await k.selectFrom('t').select('id').where('id', '=', 0).executeTakeFirst();
    assert.equal(read.id, 0);
  } finally {
    hook = undefined;
    await db.close();
  }
});

test('kill -9 in the middle of checkpoints: every acknowledged write is there, the file is intact', { timeout: 120_000 }, async () => {
  const path = join(dir, 'kill.sqlite');
  const script = childScript('killed.mts', path, `
    for (let c = 0; ; c++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => k.insertInto('t').values({ id: c * 8 + i, pad: Buffer.alloc(1024, c) }).execute()));
      process.stdout.write(c + '\\n');
    }
  `);
  for (const ms of [700, 1300, 2100]) {
    rmSync(path, { force: true });
    rmSync(`${path}-wal`, { force: true });
    rmSync(`${path}-shm`, { force: true });
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // the first acknowledged commit, then the chosen moment
    while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, ms));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const acked = out.split('\n').filter((l) => l !== '').map(Number);
    const last = acked.at(-1)!;
    const raw = new Database(path);
    try {
      assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
      const n = (raw.prepare('select count(*) as n from t where id < ?').get((last + 1) * 8) as { n: number }).n;
      assert.equal(n, (last + 1) * 8, `all ${last + 1} acknowledged commits survived the kill at ${ms} ms`);
    } finally {
      raw.close();
    }
    assert.ok(last > CHECKPOINT_COMMITS, `the run got past a checkpoint (${last} commits)`);
  }
});

test('explicit transactions, grouped writes, atomically work and reads in parallel across checkpoints: no statement fails', { timeout: 60_000 }, async () => {
  const { db, k } = await open('parallel.sqlite');
  let next = 0;
  const errors: string[] = [];
  let ops = 0;
  const stop = Date.now() + 2500;
  const lane = async (kind: number) => {
    while (Date.now() < stop) {
      const id = next++;
      try {
        if (kind === 0) await db.unitOfWork(async () => {
          await k.insertInto('t').values({ id, pad: Buffer.alloc(64) }).execute();
          await k.updateTable('t').set({ pad: Buffer.alloc(32) }).where('id', '=', id).execute();
        });
        else if (kind === 1) await k.transaction().execute(async (trx: any) => {
          await trx.insertInto('t').values({ id, pad: Buffer.alloc(64) }).execute();
          await trx.selectFrom('t').select('id').where('id', '=', id).execute();
        });
        else if (kind === 2) await (await db.atomically!((exec) => exec(sql`insert into t (id, pad) values (${id}, x'00')`.compile(db.kysely)))).committed;
        else await k.selectFrom('t').select('id').where('id', '=', id - 1).execute();
        ops++;
      } catch (e) {
        errors.push((e as Error).message);
      }
      // a read resolves without I/O: yield, as requests arriving from sockets do
      await new Promise((r) => setImmediate(r));
    }
  };
  try {
    // 40 callers at once: two explicit transactions that both looked at a free connection in the
    // same turn once began inside each other ("cannot start a transaction within a transaction")
    await Promise.all(Array.from({ length: 40 }, (_, i) => lane(i % 4)));
    assert.deepEqual(errors.slice(0, 5), []);
    assert.ok(((db.stats() as { sqlite: { checkpoints: number } }).sqlite.checkpoints) > 0, 'checkpoints ran meanwhile');
    assert.ok(ops > 1000, `${ops} operations`);
  } finally {
    await db.close();
  }
});
