// The JSON routes the management UI's system pages need: the runtime-config catalogue
// (/system/getConfigCatalogue, read-only, system read), local administrators
// (/admin/admins/list|create|delete: system read/write, audited with the name and never the
// password, no answer holding a hash, creation only from a login session, no admin removing
// itself), the audit chain check (/audit/verify, audit view) and the audit search's time range
// (from/to).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CONFIG } from '../../src/config/catalogue.ts';
import { Errors } from '../../src/errors.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const codeOf = (r: { json: any }) => r.json.result.error?.code;

async function sessionOf(t: TestApp, username = 'admin', password = 'admin-password-1'): Promise<Record<string, string>> {
  const res = await t.app.inject({ method: 'POST', url: '/admin/login', payload: new URLSearchParams({ username, password }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(res.statusCode, 200, res.body);
  const cookies = Object.fromEntries(res.cookies.map((c) => [c.name, c.value]));
  return { cookie: `access_token_cookie=${cookies.access_token_cookie}; csrf_access_token=${cookies.csrf_access_token}`, 'x-csrf-token': cookies.csrf_access_token };
}

describe('system routes for the management pages', () => {
  const clock = new FakeClock(Date.UTC(2026, 2, 10, 12, 0, 0));
  let t: TestApp;
  let readerKey: string;
  before(async () => {
    t = await startTestApp({ clock });
    await t.services.admins.add('reader', 'reader-password-1');
    readerKey = await t.services.admins.createApiKey('reader', 'reader');
  });
  after(() => t?.close());

  test('getConfigCatalogue: every key with its kind, bounds, default, help and whether it is stored', async () => {
    const r = await t.admin('/system/getConfigCatalogue');
    assert.equal(r.status, 200, r.body);
    const { keys, families } = r.json.result.value as { keys: any[]; families: any[] };
    assert.deepEqual(keys.map((k) => k.key), Object.keys(CONFIG));
    const byKey = new Map(keys.map((k) => [k.key, k]));
    assert.deepEqual(byKey.get('DefaultOtpLen'), {
      key: 'DefaultOtpLen', kind: 'integer', type: 'integer 6–10', minimum: 6, maximum: 10, default: '6',
      help: 'OTP digits of new tokens', origin: 'LinOTP', stored: false,
    });
    assert.equal(byKey.get('PrependPin').kind, 'boolean');
    assert.deepEqual(byKey.get('hotp.hashlib').choices, ['sha1', 'sha256', 'sha512']);
    assert.deepEqual(byKey.get('totp.timeStep').choices, ['30', '60']);
    assert.equal(byKey.get('mayOverwriteClient').kind, 'list');
    assert.equal(byKey.get('SMSProviderConfig').kind, 'secret');
    assert.equal(byKey.get('DeliveryLimitPerUser').format, 'send limit');
    assert.equal(byKey.get('RadiusReplyAttributes').default, null);
    assert.equal(byKey.get('AutoResyncTimeout').type, null);
    assert.match(byKey.get('AutoResyncTimeout').refused, /otpd does not resynchronise/);
    assert.ok(families.length > 0 && families.every((f) => f.family === true && !('stored' in f)));
    assert.ok(families.some((f) => f.key === '<TYPE>_CHALLENGE_PROMPT'));

    assert.equal((await t.admin('/system/setConfig', { key: 'DefaultOtpLen', value: '8' })).json.result.status, true);
    const after = (await t.admin('/system/getConfigCatalogue')).json.result.value.keys.find((k: any) => k.key === 'DefaultOtpLen');
    assert.equal(after.stored, true);
    await t.admin('/system/delConfig', { key: 'DefaultOtpLen' });
    assert.equal((await t.admin('/system/getConfigCatalogue')).json.result.value.keys.find((k: any) => k.key === 'DefaultOtpLen').stored, false);
  });

  test('admins: list without hashes, create from a session only, refusals by code, delete with keys; audited without the password', async () => {
    const session = await sessionOf(t);
    const made = await t.post('/admin/admins/create', { name: 'ops', password: 'ops-password-9' }, session);
    assert.equal(made.json.result.value, true, made.body);
    assert.equal(codeOf(await t.post('/admin/admins/create', { name: 'ops', password: 'ops-password-9' }, session)), Errors.adminExists.code);
    assert.equal(codeOf(await t.post('/admin/admins/create', { name: 'short', password: 'x' }, session)), Errors.invalidParameter.code);
    assert.equal(codeOf(await t.post('/admin/admins/create', { name: 'bad name', password: 'long-enough-1' }, session)), Errors.invalidParameter.code);
    assert.equal(codeOf(await t.post('/admin/admins/create', { name: 'ops' }, session)), Errors.missingParameter.code);
    assert.equal(codeOf(await t.admin('/admin/admins/create', { name: 'bykey', password: 'bykey-password-1' })), Errors.adminSessionRequired.code);
    assert.equal(await t.services.admins.exists('bykey'), false);
    assert.equal(await t.services.admins.checkLogin('ops', 'ops-password-9'), true);

    const list = await t.admin('/admin/admins/list');
    const rows = list.json.result.value as any[];
    assert.deepEqual(rows.map((a) => a.name), ['admin', 'ops', 'reader']);
    assert.deepEqual(Object.keys(rows[0]).sort(), ['activeApiKeys', 'created', 'name']);
    assert.equal(rows.find((a) => a.name === 'reader').activeApiKeys, 1);
    assert.equal(rows[1].created, new Date(clock.now()).toISOString());
    const hashes = await t.services.db.kysely.selectFrom('admins').select('password_hash').execute();
    for (const h of hashes) assert.ok(!list.body.includes(h.password_hash));

    const opsKey = await t.services.admins.createApiKey('ops', 'job');
    assert.equal((await t.post('/system/getConfig', {}, bearer(opsKey))).status, 200);
    assert.equal(codeOf(await t.post('/admin/admins/delete', { name: 'admin' }, session)), Errors.cannotRemoveSelf.code);
    assert.equal(codeOf(await t.post('/admin/admins/delete', { name: 'ops' }, bearer(opsKey))), Errors.cannotRemoveSelf.code);
    assert.equal(codeOf(await t.admin('/admin/admins/delete', { name: 'nobody' })), Errors.noSuchAdmin.code);
    assert.equal((await t.admin('/admin/admins/delete', { name: 'ops' })).json.result.value, true);
    assert.equal((await t.post('/system/getConfig', {}, bearer(opsKey))).status, 401, 'its API keys went with it');
    assert.equal(await t.services.admins.exists('ops'), false);

    await t.services.audit.settled();
    const audit = await t.services.db.kysely.selectFrom('audit').selectAll().where('action', 'like', 'admin/admins/%').orderBy('id').execute();
    assert.ok(audit.some((a) => a.action === 'admin/admins/create' && a.success === '1' && a.info === 'ops' && a.administrator === 'admin'));
    assert.ok(audit.some((a) => a.action === 'admin/admins/delete' && a.success === '1' && a.info === 'ops'));
    assert.ok(audit.some((a) => a.action === 'admin/admins/create' && a.success === '0' && a.info === 'ops'), 'a refusal is audited too');
    for (const a of audit) assert.ok(!JSON.stringify(a).includes('ops-password-9') && !JSON.stringify(a).includes('bykey-password-1'));
  });

  test('system policies apply to the new routes', async () => {
    await t.admin('/system/setPolicy', { name: 'sysadmin', scope: 'system', action: 'write, read', realm: '*', user: 'admin', client: '*', active: 'True' });
    await t.admin('/system/setPolicy', { name: 'sysread', scope: 'system', action: 'read', realm: '*', user: 'reader', client: '*', active: 'True' });
    await t.admin('/system/setPolicy', { name: 'auditor', scope: 'audit', action: 'view', realm: '*', user: 'admin', client: '*', active: 'True' });
    try {
      assert.equal((await t.post('/system/getConfigCatalogue', {}, bearer(readerKey))).json.result.status, true);
      assert.equal((await t.post('/admin/admins/list', {}, bearer(readerKey))).json.result.status, true);
      const reader = await sessionOf(t, 'reader', 'reader-password-1');
      assert.equal(codeOf(await t.post('/admin/admins/create', { name: 'sneaky', password: 'sneaky-password-1' }, reader)), Errors.notAllowed.code);
      assert.equal(codeOf(await t.post('/admin/admins/delete', { name: 'admin' }, bearer(readerKey))), Errors.notAllowed.code);
      assert.equal(codeOf(await t.post('/audit/verify', {}, bearer(readerKey))), Errors.notAllowed.code);
      assert.equal((await t.admin('/audit/verify')).json.result.value.ok, true);
    } finally {
      for (const name of ['auditor', 'sysread', 'sysadmin']) await t.admin('/system/delPolicy', { name });
    }
    assert.equal(await t.services.admins.exists('sneaky'), false);
  });

  test('audit/verify: intact, then a changed row is named', async () => {
    await t.services.audit.settled();
    const ok = (await t.admin('/audit/verify')).json.result.value;
    assert.equal(ok.ok, true);
    assert.ok(ok.rows > 10);
    assert.deepEqual(ok.problems, []);
    const victim = await t.services.db.kysely.selectFrom('audit').select(['id', 'seq']).where('action', '=', 'admin/admins/create').orderBy('id').executeTakeFirstOrThrow();
    await t.services.db.kysely.updateTable('audit').set({ info: 'rewritten' }).where('id', '=', victim.id).execute();
    const broken = (await t.admin('/audit/verify')).json.result.value;
    assert.equal(broken.ok, false);
    assert.equal(broken.firstBroken.id, Number(victim.id));
    assert.equal(broken.firstBroken.seq, Number(victim.seq));
    assert.match(broken.problems[0], new RegExp(`^row ${victim.id}: content does not match its hash`));
    await t.services.audit.settled();
    const row = await t.services.db.kysely.selectFrom('audit').select(['action_detail']).where('action', '=', 'audit/verify').orderBy('id', 'desc').executeTakeFirstOrThrow();
    assert.match(row.action_detail, /^chain BROKEN: row \d+/);
  });

  test('audit/search from/to: dates in UTC (to takes in the whole day), date-times, bad values refused', async () => {
    const at = async (iso: string, user: string) => {
      clock.set(Date.parse(iso));
      await t.post('/validate/check', { user, pass: 'x' });
    };
    await at('2026-04-01T23:59:59.000Z', 'range-a');
    await at('2026-04-02T00:00:00.000Z', 'range-b');
    await at('2026-04-02T18:30:00.000Z', 'range-c');
    await at('2026-04-03T00:00:00.000Z', 'range-d');
    await t.services.audit.settled();
    const users = async (params: Record<string, string>) => {
      const r = await t.admin('/audit/search', { user: 'range-*', rp: '100', sortorder: 'asc', ...params });
      assert.equal(r.status, 200, r.body);
      return (r.json.rows as { cell: unknown[] }[]).map((row) => row.cell[8]);
    };
    assert.deepEqual(await users({ from: '2026-04-02', to: '2026-04-02' }), ['range-b', 'range-c']);
    assert.deepEqual(await users({ from: '2026-04-02' }), ['range-b', 'range-c', 'range-d']);
    assert.deepEqual(await users({ to: '2026-04-01' }), ['range-a']);
    assert.deepEqual(await users({ from: '2026-04-02T01:00:00Z', to: '2026-04-03T00:00:00Z' }), ['range-c', 'range-d']);
    assert.deepEqual(await users({ from: '2026-04-02T20:00:00+02:00' }), ['range-c', 'range-d'], 'a zone is honoured');
    const csv = await t.admin('/audit/search', { user: 'range-*', from: '2026-04-02', to: '2026-04-02', outform: 'csv' });
    assert.equal(csv.body.trim().split('\n').length, 2);
    for (const bad of ['yesterday', '2026-13-01', '2026-02-30', '2026-04-02T10:00', '2026-04-02 10:00:00Z']) {
      const r = await t.admin('/audit/search', { from: bad });
      assert.equal(codeOf(r), Errors.invalidParameter.code, bad);
    }
    assert.equal(codeOf(await t.admin('/audit/search', { to: 'soon' })), Errors.invalidParameter.code);
  });
});
