// Invariant: an API key works only while it is neither revoked nor expired, and a refused key
// gets the ordinary not-authenticated answer (ERR2001, HTTP 401). Keys can be listed (id,
// label, created, expires, last used: never the key or its hash) and revoked one by one; a
// password change revokes the admin's keys unless explicitly kept. Last use is recorded at
// most once a minute per key. An API key cannot mint further keys (that would outlive its
// expiry); audit rows and logs never hold a key.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const refusedAsUnauthenticated = (r: { status: number; json: any }) => r.status === 401 && r.json.result.status === false && r.json.result.error.code === 2001;

async function sessionOf(t: TestApp, username = 'admin', password = 'admin-password-1'): Promise<Record<string, string>> {
  const res = await t.app.inject({ method: 'POST', url: '/admin/login', payload: new URLSearchParams({ username, password }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(res.statusCode, 200, res.body);
  const cookies = Object.fromEntries(res.cookies.map((c) => [c.name, c.value]));
  return { cookie: `access_token_cookie=${cookies.access_token_cookie}; csrf_access_token=${cookies.csrf_access_token}`, 'x-csrf-token': cookies.csrf_access_token };
}

describe('API keys: list, revoke, expiry, last use', () => {
  const clock = new FakeClock();
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ clock });
    await t.services.admins.add('ops', 'ops-password-1');
  });
  after(() => t?.close());

  test('list shows metadata, never the key or its hash', async () => {
    const key = await t.services.admins.createApiKey('ops', 'backup job');
    const r = await t.admin('/admin/apikey/list', { admin: 'ops' });
    assert.equal(r.status, 200, r.body);
    const keys = r.json.result.value as any[];
    assert.equal(keys.length, 1);
    assert.deepEqual(Object.keys(keys[0]).sort(), ['admin', 'created', 'expires', 'id', 'label', 'lastUsed', 'prefix', 'revoked', 'state'].sort());
    assert.equal(keys[0].label, 'backup job');
    assert.equal(keys[0].state, 'active');
    assert.equal(keys[0].created, new Date(clock.now()).toISOString());
    assert.equal(keys[0].expires, null);
    assert.equal(keys[0].lastUsed, null);
    const hash = (await t.services.db.kysely.selectFrom('api_keys').select('key_hash').where('id', '=', keys[0].id).executeTakeFirstOrThrow()).key_hash;
    // otpd_<8-char prefix>_<secret>; both parts are base64url and may contain '_' themselves
    const secret = key.slice('otpd_'.length + 8 + 1);
    assert.equal(secret.length, 43);
    assert.ok(!r.body.includes(secret) && !r.body.includes(hash));
    const all = await t.admin('/admin/apikey/list');
    assert.deepEqual((all.json.result.value as any[]).map((k) => k.admin).sort(), ['admin', 'ops']);
  });

  test('revoking one key by id refuses it and leaves the others working', async () => {
    const a = await t.services.admins.createApiKey('ops', 'a');
    const b = await t.services.admins.createApiKey('ops', 'b');
    const list = (await t.admin('/admin/apikey/list', { admin: 'ops' })).json.result.value as any[];
    const idB = list.find((k) => k.label === 'b').id;
    assert.equal((await t.post('/system/getConfig', {}, bearer(b))).status, 200);
    const rev = await t.admin('/admin/apikey/revoke', { id: String(idB) });
    assert.equal(rev.status, 200, rev.body);
    assert.equal(rev.json.result.value, true);
    assert.ok(refusedAsUnauthenticated(await t.post('/system/getConfig', {}, bearer(b))));
    assert.equal((await t.post('/system/getConfig', {}, bearer(a))).status, 200);
    const after = (await t.admin('/admin/apikey/list', { admin: 'ops' })).json.result.value as any[];
    assert.equal(after.find((k) => k.id === idB).state, 'revoked');
    // revoking again or an unknown id: a clear error, not a silent success
    const again = await t.admin('/admin/apikey/revoke', { id: String(idB) });
    assert.equal(again.json.result.status, false);
    assert.equal(again.json.result.error.code, Errors.apiKeyRevoked.code);
    const unknown = await t.admin('/admin/apikey/revoke', { id: '999999' });
    assert.equal(unknown.json.result.error.code, Errors.noSuchApiKey.code);
    const bad = await t.admin('/admin/apikey/revoke', { id: 'abc' });
    assert.equal(bad.json.result.error.code, Errors.invalidParameter.code);
    // the audit has the revocation, never a key
    const rows = await t.services.db.kysely.selectFrom('audit').selectAll().where('action', 'like', 'admin/apikey/%').execute();
    assert.ok(rows.some((x) => x.action === 'admin/apikey/revoke' && x.success === '1' && x.action_detail.includes(`api key ${idB}`)));
    for (const k of [a, b, t.apiKey]) assert.ok(rows.every((x) => !JSON.stringify(x).includes(k)));
  });

  test('a key created with an expiry is refused from then on', async () => {
    const session = await sessionOf(t);
    const created = await t.post('/admin/apikey/create', { admin: 'ops', label: 'short', expires: '1h' }, session);
    assert.equal(created.status, 200, created.body);
    const { key, id, expires } = created.json.result.value;
    assert.match(key, /^otpd_/);
    assert.equal(expires, new Date(clock.now() + 3_600_000).toISOString());
    assert.equal((await t.post('/system/getConfig', {}, bearer(key))).status, 200);
    clock.advance(3_600_000 - 1);
    assert.equal((await t.post('/system/getConfig', {}, bearer(key))).status, 200);
    clock.advance(1);
    assert.ok(refusedAsUnauthenticated(await t.post('/system/getConfig', {}, bearer(key))));
    const listed = ((await t.admin('/admin/apikey/list', { admin: 'ops' })).json.result.value as any[]).find((k) => k.id === id);
    assert.equal(listed.state, 'expired');
    // the creation is audited without the key
    const rows = await t.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'admin/apikey/create').execute();
    assert.ok(rows.some((x) => x.success === '1' && x.action_detail.includes(`api key ${id}`)));
    assert.ok(rows.every((x) => !JSON.stringify(x).includes(key)));
  });

  test('an expiry date and bad expiries', async () => {
    const session = await sessionOf(t);
    const at = await t.post('/admin/apikey/create', { admin: 'ops', expires: '2027-06-30' }, session);
    assert.equal(at.json.result.value.expires, '2027-06-30T00:00:00.000Z');
    for (const bad of ['yesterday', '0d', '-1h', '2020-01-01', '2027-13-01', '5 days', '2027-06-30T10:00:00']) {
      const r = await t.post('/admin/apikey/create', { admin: 'ops', expires: bad }, session);
      assert.equal(r.json.result.status, false, bad);
      assert.equal(r.json.result.error.code, Errors.invalidParameter.code, bad);
      assert.match(r.json.result.error.message, /'expires'/, bad);
    }
    const none = await t.post('/admin/apikey/create', { admin: 'nobody' }, session);
    assert.equal(none.json.result.error.code, Errors.noSuchAdmin.code);
  });

  test('an API key cannot create keys', async () => {
    const r = await t.admin('/admin/apikey/create', { admin: 'admin' });
    assert.equal(r.json.result.status, false);
    assert.equal(r.json.result.error.code, Errors.sessionRequired.code);
    const keys = await t.services.db.kysely.selectFrom('api_keys').select('id').where('admin', '=', 'admin').execute();
    assert.equal(keys.length, 1, 'no key was added');
  });

  test('last use is recorded, at most once a minute per key', async () => {
    const key = await t.services.admins.createApiKey('ops', 'lastused');
    const lastUsed = async () => ((await t.admin('/admin/apikey/list', { admin: 'ops' })).json.result.value as any[]).find((k) => k.label === 'lastused').lastUsed;
    const t0 = clock.now();
    await t.post('/system/getConfig', {}, bearer(key));
    assert.equal(await lastUsed(), new Date(t0).toISOString());
    clock.advance(59_999);
    await Promise.all(Array.from({ length: 10 }, () => t.post('/system/getConfig', {}, bearer(key))));
    assert.equal(await lastUsed(), new Date(t0).toISOString(), 'not rewritten within the minute');
    clock.advance(1);
    await t.post('/system/getConfig', {}, bearer(key));
    assert.equal(await lastUsed(), new Date(t0 + 60_000).toISOString());
  });

  test('a password change revokes the admin\'s keys unless they are kept explicitly', async () => {
    await t.services.admins.add('rotator', 'rotator-password-1');
    const k1 = await t.services.admins.createApiKey('rotator', 'one');
    const other = await t.services.admins.createApiKey('ops', 'other admin');
    await t.services.admins.setPassword('rotator', 'rotator-password-2');
    assert.ok(refusedAsUnauthenticated(await t.post('/system/getConfig', {}, bearer(k1))));
    assert.equal((await t.post('/system/getConfig', {}, bearer(other))).status, 200, 'other admins keep their keys');
    const k2 = await t.services.admins.createApiKey('rotator', 'two');
    await t.services.admins.setPassword('rotator', 'rotator-password-3', { keepApiKeys: true });
    assert.equal((await t.post('/system/getConfig', {}, bearer(k2))).status, 200);
    const admins = await t.services.admins.list();
    assert.equal(admins.find((a) => a.name === 'rotator')!.apiKeys, 1, 'only usable keys are counted');
  });
});

describe('API keys: admin policies', () => {
  test('system read lists, system write creates and revokes', async () => {
    const t = await startTestApp();
    try {
      await t.services.admins.add('reader', 'reader-password-1');
      const readerKey = await t.services.admins.createApiKey('reader', 'reader');
      const set = await t.admin('/system/setPolicy', { name: 'sysadmin', scope: 'system', action: 'write, read', realm: '*', user: 'admin', client: '*', active: 'True' });
      assert.equal(set.json.result.status, true, set.body);
      await t.admin('/system/setPolicy', { name: 'sysread', scope: 'system', action: 'read', realm: '*', user: 'reader', client: '*', active: 'True' });
      assert.equal((await t.post('/admin/apikey/list', {}, bearer(readerKey))).json.result.status, true);
      const victim = (await t.services.admins.listApiKeys('admin'))[0].id;
      const refused = await t.post('/admin/apikey/revoke', { id: String(victim) }, bearer(readerKey));
      assert.equal(refused.json.result.error.code, 410);
      assert.equal((await t.services.admins.listApiKeys('admin'))[0].state, 'active');
      const session = await sessionOf(t, 'reader', 'reader-password-1');
      assert.equal((await t.post('/admin/apikey/create', { label: 'mine' }, session)).json.result.error.code, 410);
      assert.equal((await t.admin('/admin/apikey/revoke', { id: String(victim + 1) })).json.result.value, true, 'the system writer may revoke');
    } finally {
      await t.close();
    }
  });
});

describe('API keys: command line', () => {
  const BIN = join(import.meta.dirname, '../../bin/otpd.mjs');
  const dir = mkdtempSync(join(tmpdir(), 'otpd-apikey-cli-'));
  const cli = (args: string[], input?: string) =>
    spawnSync(process.execPath, [BIN, ...args], { cwd: dir, input, encoding: 'utf8', env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_LOG_LEVEL: 'warn' } });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('apikey NAME --expires, apikey list, apikey revoke ID, password --keep-api-keys, --help', () => {
    assert.equal(cli(['admin', 'add', 'root'], 'root-password-1\n').status, 0);
    const made = cli(['admin', 'apikey', 'root', '--label', 'ci', '--expires', '30d']);
    assert.equal(made.status, 0, made.stderr);
    const key = made.stdout.trim();
    assert.match(key, /^otpd_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}$/);
    assert.match(made.stderr, /expires 20\d\d-/);
    const listed = cli(['admin', 'apikey', 'list', 'root']);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /^ID\tADMIN\tLABEL/);
    assert.match(listed.stdout, /\troot\tci\t/);
    assert.ok(!listed.stdout.includes(key.slice('otpd_'.length + 8 + 1)), 'the secret part of the key is never listed');
    const id = listed.stdout.split('\n')[1].split('\t')[0];
    const revoked = cli(['admin', 'apikey', 'revoke', id]);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.match(cli(['admin', 'apikey', 'list']).stdout, /\trevoked\b/);
    const badExpiry = cli(['admin', 'apikey', 'root', '--expires', 'soon']);
    assert.equal(badExpiry.status, 1);
    assert.match(badExpiry.stderr, /expires/);
    assert.equal(cli(['admin', 'apikey', 'revoke', 'x']).status, 1);
    // a password change revokes keys; --keep-api-keys keeps them
    cli(['admin', 'apikey', 'root']);
    const changed = cli(['admin', 'password', 'root'], 'root-password-2\n');
    assert.match(changed.stdout, /revoked 1 API key/);
    cli(['admin', 'apikey', 'root']);
    const kept = cli(['admin', 'password', 'root', '--keep-api-keys'], 'root-password-3\n');
    assert.equal(kept.status, 0, kept.stderr);
    assert.doesNotMatch(kept.stdout, /revoked/);
    assert.equal(cli(['admin', 'apikey', 'list', 'root']).stdout.split('\n').filter((l) => l.includes('\tactive')).length, 1);
    const help = cli(['admin', 'apikey', '--help']);
    assert.match(help.stdout, /--expires/);
    assert.match(help.stdout, /list \[name\]/);
    assert.match(help.stdout, /revoke <id>/);
    assert.match(cli(['admin', 'password', '--help']).stdout, /--keep-api-keys/);
  });
});
