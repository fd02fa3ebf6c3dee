// OTPD_LOG_FILE: `serve` appends its JSON log to the file (created mode 0640) instead of stdout,
// and reopens it on SIGHUP, as logrotate expects: after the file is renamed and SIGHUP sent,
// new lines go to a new file at the configured path, and no line is lost (lines written
// between the rename and the signal are in the renamed file). A path that cannot be opened
// stops start-up naming the setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { testTmpDir } from '../helpers/tmp.ts';
import { BIN, spawnServe } from '../helpers/serve.ts';
import { waitFor } from '../helpers/wait.ts';

type Line = { level: number; msg: string; reqId?: string; res?: { statusCode: number } };
const lines = (path: string): Line[] => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
/** Ids of the requests whose "request completed" line is in the file. */
const completed = (path: string) => new Set(lines(path).filter((l) => l.msg === 'request completed').map((l) => l.reqId));

test('the log goes to OTPD_LOG_FILE (0640) and SIGHUP reopens it after a rename, losing no line', async () => {
  const dir = testTmpDir('otpd-logfile-');
  const logFile = join(dir, 'otpd.log');
  const rotated = join(dir, 'otpd.log.1');
  const server = await spawnServe(dir, { OTPD_LOG_FILE: 'otpd.log' }); // relative: to the working directory
  try {
    const request = async () => {
      const res = await fetch(`${server.url}/healthz`);
      assert.equal(res.status, 200);
      return res.headers.get('x-request-id')!;
    };
    const before = [await request(), await request()];
    assert.equal(statSync(logFile).mode & 0o777, 0o640);
    assert.doesNotMatch(server.output(), /"msg"/, 'no log line on stdout or stderr');
    await waitFor(() => before.every((id) => completed(logFile).has(id)), { what: 'the first requests in the log file' });
    assert.ok(lines(logFile).some((l) => l.msg === 'otpd listening'));

    renameSync(logFile, rotated);
    const betweenRenameAndSignal = [await request(), await request()];
    server.child.kill('SIGHUP');
    await waitFor(() => existsSync(logFile) && lines(logFile).some((l) => l.msg === 'SIGHUP: log file reopened'), { what: 'the reopened log file' });
    const after = [await request(), await request(), await request()];
    await waitFor(() => after.every((id) => completed(logFile).has(id)), { what: 'the later requests in the new file' });

    const old = completed(rotated);
    const fresh = completed(logFile);
    for (const id of [...before, ...betweenRenameAndSignal]) assert.ok(old.has(id), `request ${id} before SIGHUP is in the renamed file`);
    for (const id of after) assert.ok(fresh.has(id) && !old.has(id), `request ${id} after SIGHUP is in the new file only`);
    for (const id of old) assert.ok(!fresh.has(id), 'no line is written twice');
    assert.equal(statSync(logFile).mode & 0o777, 0o640, 'the new file gets the same mode');
    assert.ok(server.child.exitCode === null, 'SIGHUP does not end the process');
  } finally {
    const exit = await server.stop();
    assert.equal(exit.code, 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a log file that cannot be opened stops start-up naming OTPD_LOG_FILE', () => {
  const dir = testTmpDir('otpd-logfile-');
  try {
    const r = spawnSync(process.execPath, [BIN, 'serve'], {
      cwd: dir, encoding: 'utf8', timeout: 20_000,
      env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: '0', OTPD_LOG_FILE: join(dir, 'no/such/dir/otpd.log') },
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /otpd: log file .*no\/such\/dir\/otpd\.log \(OTPD_LOG_FILE\): ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
