// Invariant: SQLite's data directory running out of space under load (a small tmpfs the test
// mounts, filled up mid-run) is a clear error: ERR2008 in the envelope (never a 500, never a
// stack trace, never a valid OTP refused), RADIUS silent, within a bound; the database stays
// intact (PRAGMA integrity_check), and the service resumes by itself when space returns, with
// no acknowledged success lost.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { Errors } from '../../src/errors.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { assertCleanAnswers, assertNoAcknowledgedSuccessLost, assertNoHalfWrittenRows, isAccept, Load, OtpdNode, summary, waitForRecovery } from './harness.ts';

const skip = process.getuid?.() !== 0 ? 'mounting a tmpfs needs root' : false;
const root = mkdtempSync('/dev/shm/otpd-faults-diskfull-');
const mnt = join(root, 'mnt');
let mounted = false;
let node: OtpdNode | undefined;
let smtp: SmtpSink | undefined;

after(async () => {
  if (process.env.FAULTS_KEEP_LOG && node) writeFileSync(process.env.FAULTS_KEEP_LOG, node.log);
  await node?.stop();
  await smtp?.stop();
  if (mounted) execFileSync('umount', ['-l', mnt]);
  rmSync(root, { recursive: true, force: true });
});

/** Writes zeros into `path` until the file system is full. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
}

// Found by this test: a request whose group COMMIT failed with SQLITE_FULL was answered as an
// internal error, which /validate/check turns into "value false": valid OTPs refused (most runs,
// up to 30 of them). Now ERR2008 (api/route.ts). The group commit also ends a group whose
// transaction SQLite rolled back by itself (store/sqlite-group.ts, test/core/sqlite-group.test.ts).
test('disk full mid-run: ERR2008, database intact, service resumes when space returns', { skip }, async () => {
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0700', 'tmpfs', mnt]);
  mounted = true;
  smtp = await new SmtpSink().start();
  node = await OtpdNode.create({ dir: mnt, smtpPort: smtp.port, tokens: 12 });
  await node.start();
  const load = new Load(node);
  const filler = join(mnt, 'filler');
  let fullFrom = 0;
  let fullUntil = 0;
  const t0 = Date.now();
  const report = await load.run({
    durationMs: 16_000,
    concurrency: 10,
    at: {
      3000: async () => {
        fill(filler);
        fullFrom = Date.now() - t0;
      },
      10_000: async () => {
        rmSync(filler);
        fullUntil = Date.now() - t0;
      },
    },
  });
  const counts = summary(report);
  console.log(`disk full ${fullFrom}-${fullUntil} ms`, counts, report.answers.filter((a) => a.ms > 1000 && !a.kind.startsWith('radius')).map((a) => `${a.kind}@${a.at}+${a.ms}=${a.code ?? a.value}`).join(' '));
  assertCleanAnswers(report, { maxMs: 8000, codes: [Errors.databaseUnavailable.code] });
  const refusedValid = report.answers.filter((a) => (a.kind === 'success' && a.value === false) || (a.kind === 'radius-success' && a.value === 'Access-Reject'));
  const history = (r: typeof refusedValid[number]) => report.answers.filter((a) => a.serial === r.serial && Math.abs(a.counter! - r.counter!) <= 1)
    .map((a) => `${a.kind}@${a.at}+${a.ms}#${a.counter}=${a.code ?? a.value ?? a.error}`).join(' ');
  assert.deepEqual(refusedValid.map((a) => `${a.kind}@${a.at}+${a.ms} ${a.serial}#${a.counter}: ${history(a)}`), [], `valid OTPs refused (full ${fullFrom}-${fullUntil} ms): ${JSON.stringify(counts)}`);
  const whileFull = report.answers.filter((a) => a.at > fullFrom + 300 && a.at + a.ms < fullUntil && a.kind === 'success');
  // a write that fits in the WAL's pages already on disk still commits; the first one that needs
  // more space fails, and from then on until space returns
  assert.ok(whileFull.some((a) => a.code === Errors.databaseUnavailable.code) && whileFull.every((a) => a.code === Errors.databaseUnavailable.code || isAccept(a)),
    `valid OTPs while the disk was full (${fullFrom}-${fullUntil} ms): ${whileFull.map((a) => a.code ?? a.value).join(',')} ${JSON.stringify(counts)}`);
  assert.ok(report.answers.some((a) => a.kind === 'success' && isAccept(a) && a.at > fullUntil), `no success after space returned: ${JSON.stringify(counts)}`);
  await waitForRecovery(load);
  await assertNoAcknowledgedSuccessLost(node, report);
  await assertNoHalfWrittenRows(node);
  await node.stop();
  const db = new Database(join(mnt, 'data', 'otpd.sqlite'), { readonly: true });
  try {
    assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
  } finally {
    db.close();
  }
  const verify = execFileSync(process.execPath, [join(import.meta.dirname, '../../bin/otpd.mjs'), 'audit', 'verify'], { cwd: mnt, env: { ...process.env, ...node.env }, encoding: 'utf8' });
  assert.match(verify, /intact/);
});
