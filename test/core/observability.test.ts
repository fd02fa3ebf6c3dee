// What a maintainer reads: every log line of a request carries its request id (also lines
// logged by services that never see the request, and only once), the "request completed" line
// its status and response time; the request id is in the audit row the request wrote (and
// finds it through /audit/search) and in the X-Request-Id answer header. No line holds a PIN,
// an OTP, a password, the Authorization or Cookie header or the body, and no line has two
// `msg` keys. A failed reload of config or policies is logged with its error and counted in
// /metrics. On a terminal the log is human-readable, else JSON; OTPD_LOG_FORMAT overrides.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request, type IncomingMessage } from 'node:http';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { captureLogs, type CapturedLogs } from '../helpers/logs.ts';
import { waitFor } from '../helpers/wait.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { bumpRevision } from '../../src/store/revisions.ts';
import { loadSettings, SettingsError } from '../../src/config/settings.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');
const PIN = 'pin-4711-secret';

describe('request logging and the audit', () => {
  let t: TestApp;
  let logs: CapturedLogs;
  before(async () => {
    logs = captureLogs('debug');
    t = await startTestApp({ logger: logs.logger });
    await t.admin('/admin/init', { type: 'hmac', serial: 'OBS1', otpkey: KEY, pin: PIN });
  });
  after(async () => t.close());

  /**
   * Two equally specific policies that disagree: the policy service (which never sees the
   * request) warns at the next lookup. Setting them reloads the policies, which reports anew.
   */
  const conflictingPolicies = async () => {
    for (const [name, action] of [['obs_a', 'otppin=token_pin'], ['obs_b', 'otppin=ignore_pin']]) {
      const set = await t.admin('/system/setPolicy', { name, scope: 'authentication', action, realm: '*', user: '*', client: '*' });
      assert.equal(set.json.result.status, true, set.body);
    }
  };
  const isConflict = (l: { msg?: unknown }) => /equally specific/.test(String(l.msg));

  test('every line of a request carries its id once; the completed line has status and response time', async () => {
    await conflictingPolicies();
    const from = logs.raw.length;
    const res = await t.app.inject({
      method: 'POST', url: '/validate/check', payload: `serial=OBS1&pass=${PIN}${hotp(seed, 0)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.statusCode, 200);
    const reqId = String(res.headers['x-request-id']);
    assert.match(reqId, /^[0-9a-f-]{36}$/, 'a UUID, unique across restarts and nodes');
    const raw = logs.raw.slice(from);
    const lines = raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    const mine = lines.filter((l) => l.reqId === reqId);
    assert.deepEqual(lines.filter((l) => l.reqId !== reqId).map((l) => l.msg), [], 'no line of this request without its id');
    assert.ok(mine.some(isConflict), `the policy service's warning is logged during the request: ${mine.map((l) => l.msg).join(' | ')}`);
    for (const line of raw) assert.equal(line.match(/"reqId":/g)?.length, 1, `reqId once: ${line}`);
    const incoming = mine.find((l) => l.msg === 'incoming request') as { req: Record<string, unknown> } | undefined;
    assert.deepEqual(incoming?.req, { method: 'POST', path: '/validate/check', remoteAddress: '127.0.0.1' });
    const completed = mine.find((l) => l.msg === 'request completed') as { res: { statusCode: number }; responseTime: number } | undefined;
    assert.ok(completed, 'a "request completed" line');
    assert.equal(completed.res.statusCode, 200);
    assert.equal(typeof completed.responseTime, 'number');
    assert.ok(completed.responseTime >= 0);

    const audit = await t.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'validate/check').where('serial', '=', 'OBS1').execute();
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.request_id, reqId, 'the audit row names the request that wrote it');
    const found = await t.admin('/audit/search', { request_id: reqId });
    assert.equal(found.json.total, 1);
    assert.equal(found.json.rows[0].cell[4], 'validate/check');
    assert.equal(found.json.rows[0].cell.length, 17, "LinOTP's cells, no column added");
  });

  test('requests on a real socket are logged with their id too (the body arrives on socket events)', async () => {
    await conflictingPolicies();
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const from = logs.raw.length;
      // the body's second half is sent once the server has logged the request: it arrives on a
      // later socket event, outside the context entered when the request came in
      const body = new URLSearchParams({ serial: 'OBS1', pass: `${PIN}${hotp(seed, 1)}` }).toString();
      const answer = new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(`${address}/validate/check`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } }, resolve);
        req.on('error', reject);
        req.write(body.slice(0, 10));
        void waitFor(() => logs.raw.slice(from).some((l) => l.includes('incoming request')), { what: 'the "incoming request" line' })
          .then(() => req.end(body.slice(10)), reject);
      });
      const res = await answer;
      res.resume();
      assert.equal(res.statusCode, 200);
      const reqId = String(res.headers['x-request-id']);
      await waitFor(() => logs.raw.slice(from).some((l) => l.includes('request completed')), { what: 'the "request completed" line' });
      const audit = await t.services.db.kysely.selectFrom('audit').select('request_id').where('action', '=', 'validate/check').orderBy('id', 'desc').executeTakeFirstOrThrow();
      assert.equal(audit.request_id, reqId);
      const lines = logs.raw.slice(from).map((l) => JSON.parse(l) as { reqId?: string; msg: string });
      assert.ok(lines.some(isConflict), `the policy service's warning is logged during the request: ${lines.map((l) => l.msg).join(' | ')}`);
      assert.deepEqual(lines.filter((l) => l.reqId !== reqId), [], 'every line carries the id of the request');
    } finally {
      await t.app.server.close();
      for (const name of ['obs_a', 'obs_b']) assert.equal((await t.admin('/system/delPolicy', { name })).json.result.status, true);
    }
  });

  test('no line holds a PIN, an OTP, a password, the Authorization or Cookie header, or two msg keys', async () => {
    const otp = hotp(seed, 5);
    const from = logs.raw.length;
    await t.app.inject({ method: 'GET', url: `/validate/check?serial=OBS1&pass=${PIN}${otp}` });
    await t.post('/validate/check', { user: 'nobody', pass: 'body-password-0815' });
    await t.post('/admin/login', { username: 'admin', password: 'admin-password-1' });
    await t.post('/admin/show', {}, { cookie: 'access_token_cookie=cookie-value-0815; csrf_access_token=csrf-0815', 'x-csrf-token': 'csrf-0815' });
    await t.admin('/system/getConfig');
    const raw = logs.raw.slice(from);
    assert.ok(raw.length >= 10, `${raw.length} lines`);
    const text = raw.join('\n');
    for (const secret of [PIN, otp, 'body-password-0815', 'admin-password-1', 'cookie-value-0815', 'csrf-0815', t.apiKey, 'Bearer']) {
      assert.ok(!text.includes(secret), `${secret} is in the log`);
    }
    assert.ok(text.includes('"path":"/validate/check"'), 'the path is logged, its query string is not');
    for (const line of logs.raw) assert.ok((line.match(/"msg":/g)?.length ?? 0) <= 1, `two msg keys: ${line}`);
  });

  test('a failed reload of config or policies is logged with its error and counted in /metrics', async () => {
    const metric = async (what: string) => {
      const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${t.apiKey}` } });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.body;
      const m = body.match(new RegExp(`^otpd_reload_failures_total\\{what="${what}"\\} (\\d+)$`, 'm'));
      assert.ok(m, body);
      return Number(m[1]);
    };
    assert.equal(await metric('config'), 0);
    assert.equal(await metric('policies'), 0);
    const db = t.services.db;
    const from = logs.raw.length;
    await sql`ALTER TABLE config RENAME TO config_gone`.execute(db.kysely);
    await sql`ALTER TABLE policies RENAME TO policies_gone`.execute(db.kysely);
    try {
      await bumpRevision(db, 'config');
      await bumpRevision(db, 'policies');
      await t.services.watcher.poll();
      await waitFor(() => t.services.watcher.failures.get('config') === 1 && t.services.watcher.failures.get('policies') === 1, { what: 'both reloads to fail' });
    } finally {
      await sql`ALTER TABLE config_gone RENAME TO config`.execute(db.kysely);
      await sql`ALTER TABLE policies_gone RENAME TO policies`.execute(db.kysely);
    }
    assert.equal(await metric('config'), 1);
    assert.equal(await metric('policies'), 1);
    const errors = logs.lines().slice(from).filter((l) => l.level === 50);
    for (const what of ['config', 'policies']) {
      const line = errors.find((l) => l.revision === what) as { msg: string; err?: { message: string; stack: string } } | undefined;
      assert.ok(line, `an error line for ${what}`);
      assert.match(line.msg, new RegExp(`reloading ${what} failed`));
      assert.match(line.err?.message ?? '', /no such table/, 'the error object, not only its message');
      assert.match(line.err?.stack ?? '', /\n\s+at /);
    }
    // the next reload that works is not counted
    await bumpRevision(db, 'config');
    await t.services.watcher.poll();
    await t.services.policies.settled();
    assert.equal(await metric('config'), 1);
  });
});

describe('log format', () => {
  const script = (format: string) =>
    `import { createLogger } from ${JSON.stringify(join(ROOT, 'src/util/logger.ts'))};` +
    `createLogger('info', 1, ${JSON.stringify(format)}).info({ serial: 'S1', pass: 'never-0815' }, 'hello there');`;
  const run = (format: string) => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(format)], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    return res.stdout;
  };

  test('JSON when stdout is not a terminal (auto), or when asked', () => {
    for (const format of ['auto', 'json']) {
      const line = JSON.parse(run(format).trim()) as Record<string, unknown>;
      assert.equal(line.msg, 'hello there');
      assert.equal(line.serial, 'S1');
      assert.equal(line.pass, '***');
    }
  });

  test('human-readable when asked, and on a terminal', { skip: !existsSync('/usr/bin/script') && 'no script(1) for a terminal' }, () => {
    const pretty = run('pretty');
    assert.throws(() => JSON.parse(pretty));
    assert.match(pretty, /INFO.*hello there/);
    assert.match(pretty, /"serial":"S1"/);
    assert.doesNotMatch(pretty, /never-0815/);
    // script(1) gives the child a terminal as stdout
    const cmd = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script('auto')].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    const tty = spawnSync('/usr/bin/script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(tty.status, 0, tty.stderr);
    assert.match(tty.stdout, /INFO.*hello there/);
    assert.ok(!tty.stdout.trim().startsWith('{'), tty.stdout);
  });

  test('OTPD_LOG_FORMAT takes json, pretty or auto', () => {
    assert.equal(loadSettings({ OTPD_LOG_FORMAT: 'pretty' }, '/nonexistent').logFormat, 'pretty');
    assert.equal(loadSettings({}, '/nonexistent').logFormat, 'auto');
    assert.throws(() => loadSettings({ OTPD_LOG_FORMAT: 'xml' }, '/nonexistent'), SettingsError);
  });
});
