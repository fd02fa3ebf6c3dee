// Invariant: /metrics (prom-client, one registry per otpd instance) moves the series of what
// happened — HTTP requests by route pattern and envelope status, validation outcomes by reason,
// challenges created and answered, provider attempts, send limits tripped, user-store latency and
// errors by resolver, the database's connections, process metrics — and never shows a user name,
// a serial, an address, a PIN, an OTP, a password or a raw URL: labels stay bounded. Two
// instances in one process count apart.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { hotp } from '../../src/otp/hotp.ts';
import { freePort } from '../fixtures/slapd.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { availableDialects } from '../helpers/db.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');
const HMAC_PIN = 'hmacpin-4711';
const MAIL_PIN = 'mailpin-0815';
const BIND_PW = 'bind-secret-pw-99';
const MAP = JSON.stringify({ userid: 'id', username: 'login', password: 'pw', email: 'mail', mobile: 'mobile' });

type Labels = Record<string, string>;

/** Every sample of the exposition: name, labels, value. */
function samples(text: string): { name: string; labels: Labels; value: number }[] {
  const out: { name: string; labels: Labels; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels: Labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the sample with exactly these labels; 0 when the series has not appeared yet. */
function valueOf(text: string, name: string, labels: Labels = {}): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  const hit = samples(text).find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want);
  return hit?.value ?? 0;
}

async function scrape(t: TestApp): Promise<string> {
  const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${t.apiKey}` } });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return res.body;
}

/** What `action` changed: the value after minus the value before, for each named series. */
async function delta(t: TestApp, series: [string, Labels][], action: () => Promise<void>): Promise<number[]> {
  const before = await scrape(t);
  await action();
  await t.services.delivery.idle();
  const after = await scrape(t);
  return series.map(([name, labels]) => valueOf(after, name, labels) - valueOf(before, name, labels));
}

describe('/metrics on prom-client', () => {
  let t: TestApp;
  let smtp: SmtpSink;
  let usersDir: string;

  before(async () => {
    smtp = await new SmtpSink({}).start();
    t = await startTestApp();
    usersDir = testTmpDir('otpd-metrics-users-');
    const path = join(usersDir, 'users.db');
    const db = new SQLite(path);
    db.exec('create table users_t (id integer primary key, login varchar(64) not null, pw varchar(255), mail varchar(128), mobile varchar(32))');
    db.prepare('insert into users_t values (?, ?, ?, ?, ?)').run(1, 'alice', null, 'alice@example.org', '+4915123456789');
    db.prepare('insert into users_t values (?, ?, ?, ?, ?)').run(2, 'bob', null, 'bob@example.org', '+12015550123');
    db.close();
    const ok = async (path: string, form: Record<string, string>) => {
      const res = await t.admin(path, form);
      assert.equal(res.json?.result?.value, true, `${path}: ${res.body}`);
    };
    await ok('/system/setResolver', { name: 'people', type: 'sqlresolver', Connect: `sqlite:///${path}`, Table: 'users_t', Map: MAP });
    await ok('/system/setRealm', { realm: 'corp', resolvers: 'useridresolver.SQLIdResolver.IdResolver.people' });
    await ok('/system/setDefaultRealm', { realm: 'corp' });
    // a user store whose table is missing, and a directory nobody listens for
    await ok('/system/setResolver', { name: 'broken', type: 'sqlresolver', Connect: `sqlite:///${path}`, Table: 'no_such_table', Map: MAP });
    await ok('/system/setRealm', { realm: 'brokensql', resolvers: 'useridresolver.SQLIdResolver.IdResolver.broken' });
    await ok('/system/setResolver', {
      name: 'ldapdown', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: `ldap://127.0.0.1:${await freePort()}`, LDAPBASE: 'dc=example,dc=org',
      BINDDN: 'cn=admin,dc=example,dc=org', BINDPW: BIND_PW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '2',
    });
    await ok('/system/setRealm', { realm: 'brokenldap', resolvers: 'useridresolver.LDAPIdResolver.IdResolver.ldapdown' });
    await t.services.delivery.setProvider({
      type: 'email', name: 'mail', className: 'SMTPEmailProvider', timeout: '3', isDefault: true,
      config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: smtp.port, EMAIL_FROM: 'otpd@example.org' }),
    });
    await ok('/admin/init', { type: 'hmac', serial: 'HMETRIC1', otpkey: KEY, user: 'alice', pin: HMAC_PIN });
    await ok('/admin/init', { type: 'email', serial: 'EMETRIC1', email_address: 'bob@example.org', user: 'bob', pin: MAIL_PIN });
  });
  after(async () => {
    await t?.close();
    await smtp?.stop();
    if (usersDir) rmSync(usersDir, { recursive: true, force: true });
  });

  test('/metrics needs an admin API key', async () => {
    assert.equal((await t.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401);
  });

  test('a success: HTTP request by route pattern and envelope status, validation by reason, user-store latency', async () => {
    const http: Labels = { route: '/validate/check', method: 'POST', code: '200', envelope_status: 'true' };
    const store: Labels = { resolver: 'people', type: 'sqlresolver', operation: 'lookup' };
    await t.services.users.flushCache();
    const moved = await delta(t, [
      ['otpd_http_requests_total', http],
      ['otpd_http_request_duration_seconds_count', { route: '/validate/check', method: 'POST', envelope_status: 'true' }],
      ['otpd_validation_total', { reason: 'authenticated', result: 'accept' }],
      ['otpd_user_store_request_duration_seconds_count', store],
      ['otpd_user_store_errors_total', store],
    ], async () => {
      const res = await t.post('/validate/check', { user: 'alice', pass: `${HMAC_PIN}${hotp(seed, 0)}` });
      assert.equal(res.json.result.value, true, res.body);
    });
    assert.deepEqual(moved, [1, 1, 1, 1, 0]);
    const text = await scrape(t);
    const le = samples(text).filter((s) => s.name === 'otpd_http_request_duration_seconds_bucket' && s.labels.route === '/validate/check');
    assert.ok(le.some((s) => s.labels.le === '+Inf' && s.value >= 1), 'a latency histogram with buckets');
  });

  test('a wrong OTP: reason wrongOtp, result reject', async () => {
    const wrong = hotp(seed, 1) === '000000' ? '111111' : '000000';
    const moved = await delta(t, [
      ['otpd_validation_total', { reason: 'wrongOtp', result: 'reject' }],
      ['otpd_validation_total', { reason: 'authenticated', result: 'accept' }],
    ], async () => {
      const res = await t.post('/validate/check', { user: 'alice', pass: `${HMAC_PIN}${wrong}` });
      assert.equal(res.json.result.value, false, res.body);
    });
    assert.deepEqual(moved, [1, 0]);
  });

  test('an e-mail challenge: created, delivered by provider, answered wrong then right', async () => {
    const mails = smtp.mails.length;
    let transactionId = '';
    const created = await delta(t, [
      ['otpd_validation_total', { reason: 'challengeCreated', result: 'challenge' }],
      ['otpd_challenges_created_total', { type: 'email' }],
      ['otpd_delivery_attempts_total', { channel: 'email', provider: 'mail', result: 'accepted' }],
      ['otpd_delivery_messages_total', { status: 'accepted' }],
    ], async () => {
      const res = await t.post('/validate/check', { user: 'bob', pass: MAIL_PIN });
      assert.equal(res.json.result.value, false, res.body);
      transactionId = res.json.detail.transactionid;
      assert.ok(transactionId, res.body);
    });
    assert.deepEqual(created, [1, 1, 1, 1]);
    await waitFor(() => smtp.mails.length > mails, { what: 'the code by mail' });
    const code = /(\d{6,})\s*$/.exec(smtp.mails.at(-1)!.raw)![1]!;
    const wrong = code === '000000' ? '111111' : '000000';
    const answered = await delta(t, [
      ['otpd_challenges_answered_total', { type: 'email', result: 'wrong' }],
      ['otpd_challenges_answered_total', { type: 'email', result: 'valid' }],
      ['otpd_validation_total', { reason: 'authenticated', result: 'accept' }],
    ], async () => {
      assert.equal((await t.post('/validate/check', { user: 'bob', pass: wrong, transactionid: transactionId })).json.result.value, false);
      const res = await t.post('/validate/check', { user: 'bob', pass: code, transactionid: transactionId });
      assert.equal(res.json.result.value, true, res.body);
    });
    assert.deepEqual(answered, [1, 1, 1]);
  });

  test('a send limit tripped: counted by limit, nothing sent', async () => {
    assert.equal((await t.admin('/system/setConfig', { key: 'DeliveryLimitPerUser', value: '1/3600' })).json.result.status, true);
    try {
      const moved = await delta(t, [
        ['otpd_delivery_refused_by_limit_total', { limit: 'limit:user' }],
        ['otpd_validation_total', { reason: 'challengeFailed', result: 'reject' }],
        ['otpd_challenges_created_total', { type: 'email' }],
      ], async () => {
        // the limit's window already holds the code of the test before
        const res = await t.post('/validate/check', { user: 'bob', pass: MAIL_PIN });
        assert.equal(res.json.result.value, false, res.body);
      });
      assert.deepEqual(moved, [1, 1, 0]);
    } finally {
      await t.admin('/system/setConfig', { key: 'DeliveryLimitPerUser', value: '10/3600' });
    }
  });

  test('user-store errors (SQL, LDAP): counted by resolver and operation; the answer is an error envelope', async () => {
    const moved = await delta(t, [
      ['otpd_user_store_errors_total', { resolver: 'broken', type: 'sqlresolver', operation: 'lookup' }],
      ['otpd_user_store_errors_total', { resolver: 'ldapdown', type: 'ldapresolver', operation: 'lookup' }],
      ['otpd_user_store_request_duration_seconds_count', { resolver: 'ldapdown', type: 'ldapresolver', operation: 'lookup' }],
      ['otpd_validation_total', { reason: 'userStoreUnavailable', result: 'unavailable' }],
      ['otpd_http_requests_total', { route: '/validate/check', method: 'POST', code: '200', envelope_status: 'false' }],
    ], async () => {
      for (const realm of ['brokensql', 'brokenldap']) {
        const res = await t.post('/validate/check', { user: 'carol', realm, pass: '123456' });
        assert.equal(res.json.result.status, false, res.body);
        assert.equal(res.json.result.error.code, 2004, res.body);
      }
    });
    assert.deepEqual(moved.map((n, i) => (i === 4 ? n >= 2 : n)), [1, 1, 1, 2, true]);
  });

  test('no user name, serial, address, secret or raw URL in the output; route patterns only', async () => {
    // a URL full of things that must not become labels
    await t.app.inject({ method: 'GET', url: `/validate/check?user=alice&pass=${HMAC_PIN}123456` });
    await t.app.inject({ method: 'GET', url: '/no/such/path/bob@example.org' });
    const text = await scrape(t);
    for (const secret of ['alice', 'bob', 'carol', 'example.org', 'HMETRIC1', 'EMETRIC1', HMAC_PIN, MAIL_PIN, BIND_PW, KEY, t.apiKey, '127.0.0.1', '+4915123456789', '?']) {
      assert.ok(!text.includes(secret), `${secret} in /metrics`);
    }
    for (const s of samples(text)) {
      if (s.labels.route !== undefined) assert.match(s.labels.route, /^(\/[\w/*:.-]*|unmatched)$/, `route label ${s.labels.route}`);
    }
    assert.ok(valueOf(text, 'otpd_http_requests_total', { route: 'unmatched', method: 'GET', code: '404', envelope_status: 'false' }) >= 1);
    assert.ok(valueOf(text, 'otpd_http_requests_total', { route: '/validate/check', method: 'GET', code: '200', envelope_status: 'true' }) >= 1);
  });

  test('process metrics and the series kept before prom-client are there; SQLite shows its group commit, no pool', async () => {
    const text = await scrape(t);
    const names = new Set(samples(text).map((s) => s.name));
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(names.has(name), `${name} missing`);
    }
    for (const status of ['accepted', 'delivered', 'failed', 'expired', 'transient']) assert.match(text, new RegExp(`^otpd_delivery_messages_total\\{status="${status}"\\} \\d+$`, 'm'));
    for (const what of ['config', 'policies', 'users', 'delivery_providers', 'poll']) assert.match(text, new RegExp(`^otpd_reload_failures_total\\{what="${what}"\\} 0$`, 'm'));
    assert.match(text, /^# TYPE otpd_radius_requests_total counter$/m);
    assert.ok(valueOf(text, 'otpd_db_sqlite_group_commits_total') > 0);
    assert.ok(valueOf(text, 'otpd_db_sqlite_group_writes_total') >= valueOf(text, 'otpd_db_sqlite_group_commits_total'));
    assert.ok(names.has('otpd_db_sqlite_waiting_statements'));
    assert.ok(![...names].some((n) => n.startsWith('otpd_db_pool_')), 'no pool series on SQLite');
  });

  test('statements queued behind an explicit transaction show in the SQLite gauge; transactions stay one at a time', async () => {
    const db = t.services.db;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inside = 0;
    let most = 0;
    const tx = (hold?: Promise<void>) => db.kysely.transaction().execute(async (trx) => {
      most = Math.max(most, ++inside);
      await trx.selectFrom('config').select('key').execute();
      await hold;
      inside--;
    });
    // two begun in the same turn: the check for a running transaction and taking the connection are one step
    await Promise.all([tx(), tx()]);
    assert.equal(most, 1, 'never two transactions at once');
    const first = tx(gate);
    await waitFor(() => inside === 1, { what: 'the first transaction to start' });
    // a second transaction and a plain write queue behind the first
    const second = tx();
    const write = db.kysely.deleteFrom('config').where('key', '=', 'no-such-key').execute();
    try {
      await waitFor(() => db.stats().sqlite!.waitingStatements === 2, { what: 'two statements queued' });
      // the registry itself: a scrape through HTTP would queue too (its API key is looked up)
      assert.equal(valueOf((await t.services.metrics.text()).body, 'otpd_db_sqlite_waiting_statements'), 2);
    } finally {
      release();
    }
    await Promise.all([first, second, write]);
    assert.equal(most, 1, 'never two transactions at once');
    assert.equal(db.stats().sqlite!.waitingStatements, 0);
  });

  test('two instances in one process count apart (one registry each)', async () => {
    const other = await startTestApp();
    try {
      const text = await scrape(other);
      assert.equal(valueOf(text, 'otpd_validation_total', { reason: 'authenticated', result: 'accept' }), 0);
      assert.ok(valueOf(await scrape(t), 'otpd_validation_total', { reason: 'authenticated', result: 'accept' }) >= 2);
      assert.ok(text.includes('process_cpu_user_seconds_total'), 'process metrics in each registry');
    } finally {
      await other.close();
    }
  });
});

describe('/metrics: a scraper administrator limited by policies (docs/metrics.md)', () => {
  test('system read lets it scrape; with policies in every admin scope it may change and read nothing else', async () => {
    const t = await startTestApp();
    try {
      await t.services.admins.add('prometheus', 'scraper-password-1');
      const key = await t.services.admins.createApiKey('prometheus', 'prometheus scrape');
      for (const [name, scope, action, user] of [
        ['sysadmins', 'system', '*', 'admin'], ['scraper', 'system', 'read', 'prometheus'],
        ['tokenadmins', 'admin', '*', 'admin'], ['auditors', 'audit', 'view', 'admin'],
      ]) {
        const res = await t.admin('/system/setPolicy', { name, scope, action, user, realm: '*', client: '*' });
        assert.equal(res.json.result.status, true, res.body);
      }
      const as = (method: 'GET' | 'POST', url: string) => t.app.inject({ method, url, headers: { authorization: `Bearer ${key}` } });
      const scraped = await as('GET', '/metrics');
      assert.equal(scraped.statusCode, 200, scraped.body);
      assert.match(scraped.body, /^otpd_http_requests_total\{/m);
      for (const url of ['/system/setConfig?key=splitAtSign&value=false', '/admin/init?type=hmac&otpkey=3132&serial=X1', '/audit/search']) {
        const res = await as(url.startsWith('/audit') ? 'GET' : 'POST', url);
        assert.equal(JSON.parse(res.body).result.error?.code, 410, `${url}: refused by the policies, ${res.body}`);
      }
      assert.equal(t.services.config.bool('splitAtSign'), true);
      assert.equal(await t.services.tokens.repository.bySerial('X1'), undefined);
    } finally {
      await t.close();
    }
  });
});

describe('metrics cost a CLI command nothing', () => {
  test('the services without the HTTP app do not load prom-client; the first count does', () => {
    const dir = testTmpDir('otpd-metrics-cli-');
    try {
      const script = `
        import { createRequire } from 'node:module';
        import { loadSettings } from './src/config/settings.ts';
        import { createServices } from './src/services.ts';
        const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/prom-client/'));
        const s = await createServices({ settings: loadSettings({ OTPD_DATA_DIR: ${JSON.stringify(dir)}, OTPD_LOG_LEVEL: 'silent' }, ${JSON.stringify(dir)}) });
        const before = loaded();
        await s.validation.check({ user: 'nobody', pass: 'x', client: '127.0.0.1', entry: 'check' });
        console.log(JSON.stringify({ before, after: loaded() }));
        await s.close();`;
      const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(res.status, 0, res.stderr);
      assert.deepEqual(JSON.parse(res.stdout.trim().split('\n').at(-1)!), { before: false, after: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('/metrics: the connection pool of PostgreSQL and MariaDB', async () => {
  for (const { dialect, skip } of (await availableDialects()).filter((d) => d.dialect !== 'sqlite')) {
    test(`${dialect}: in-use and idle connections, the limit and the queue; no SQLite series`, { skip }, async () => {
      const t = await startTestApp({ dialect });
      try {
        const text = await scrape(t);
        const idle = valueOf(text, 'otpd_db_pool_connections', { state: 'idle' });
        const inUse = valueOf(text, 'otpd_db_pool_connections', { state: 'in_use' });
        assert.match(text, /^otpd_db_pool_connections\{state="idle"\} \d+$/m);
        assert.ok(idle + inUse >= 1, `connections open: ${idle} idle, ${inUse} in use`);
        assert.equal(valueOf(text, 'otpd_db_pool_max_connections'), 10);
        assert.match(text, /^otpd_db_pool_waiting_requests \d+$/m);
        assert.ok(!text.includes('otpd_db_sqlite_'), 'no SQLite series');
      } finally {
        await t.close();
      }
    });
  }
});
