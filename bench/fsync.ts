/**
 * Baseline F: durable commits on the data directory's disk, as otpd's SQLite does them (WAL,
 * synchronous=FULL): single-row commits per second, and rows per second at 50 rows a commit.
 *   node bench/fsync.ts DIR SECONDS   → {"single_commits_per_s":…,"rows_per_s_at_50":…}
 */
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

const [dir, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 2);
const path = join(dir, 'fsync-baseline.sqlite');
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('create table if not exists t (id integer primary key, counter integer not null, note text not null)');
const insert = db.prepare('insert into t (counter, note) values (?, ?)');

function rate(rowsPerCommit: number, forMs: number): number {
  const many = db.transaction((n: number) => {
    for (let k = 0; k < n; k++) insert.run(k, 'a row about the size of a counter write');
  });
  let rows = 0;
  const start = performance.now();
  while (performance.now() - start < forMs) {
    if (rowsPerCommit === 1) insert.run(rows, 'a row about the size of a counter write');
    else many(rowsPerCommit);
    rows += rowsPerCommit;
  }
  return rows / ((performance.now() - start) / 1000);
}

const single = rate(1, seconds * 500);
const batched = rate(50, seconds * 500);
db.close();
for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
process.stdout.write(`${JSON.stringify({ single_commits_per_s: Math.round(single), rows_per_s_at_50: Math.round(batched) })}\n`);
