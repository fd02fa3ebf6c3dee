// The LinOTP-compatible API surface: exact envelope, admin authentication (session + CSRF,
// API keys), token administration, and malformed input answered in the envelope, never a 500.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { hotp } from '../../src/otp/hotp.ts';

const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');

describe('core API', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  test('envelope is LinOTP byte for byte: indent 3, key order, id 0 for validate', async () => {
    await t.admin('/admin/init', { type: 'hmac', serial: 'ENV1', otpkey: KEY, pin: 'pin' });
    const res = await t.post('/validate/check', { serial: 'ENV1', pass: `pin${hotp(seed, 0)}` });
    assert.equal(res.status, 200);
    assert.equal(res.body, '{\n   "jsonrpc": "2.0802",\n   "result": {\n      "status": true,\n      "value": true\n   },\n   "version": "otpd 0.1.0",\n   "versionNumber": "0.1.0",\n   "id": 0\n}');
  });

  test('admin calls need a session or an API key', async () => {
    const anon = await t.post('/admin/show', {});
    assert.equal(anon.status, 401);
    assert.equal(anon.json.result.status, false);
    assert.equal(anon.json.result.error.code, 2001);
    const badKey = await t.post('/system/getConfig', {}, { authorization: 'Bearer otpd_AAAAAAAA_' + 'x'.repeat(43) });
    assert.equal(badKey.status, 401);
    const audit = await t.post('/audit/search', {});
    assert.equal(audit.status, 401);
  });

  test('login sets session + CSRF cookies; later calls need X-CSRF-TOKEN; logout ends the session', async () => {
    const bad = await t.post('/admin/login', { username: 'admin', password: 'wrong-password' });
    assert.equal(bad.status, 401);
    assert.equal(bad.json.result.value, false);
    assert.equal(bad.json.detail.message, 'Bad username or password');
    const res = await t.app.inject({ method: 'POST', url: '/admin/login', payload: 'username=admin&password=admin-password-1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.statusCode, 200);
    assert.match(JSON.parse(res.body).detail.warning, /no admin policy is defined/);
    const cookies = Object.fromEntries(res.cookies.map((c) => [c.name, c.value]));
    assert.ok(cookies.access_token_cookie && cookies.csrf_access_token);
    const cookieHeader = `access_token_cookie=${cookies.access_token_cookie}; csrf_access_token=${cookies.csrf_access_token}`;
    const noCsrf = await t.post('/admin/show', {}, { cookie: cookieHeader });
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.json.result.error.code, 2002);
    const good = await t.post('/admin/show', {}, { cookie: cookieHeader, 'x-csrf-token': cookies.csrf_access_token });
    assert.equal(good.status, 200);
    assert.equal(good.json.result.status, true);
    await t.post('/admin/logout', {}, { cookie: cookieHeader, 'x-csrf-token': cookies.csrf_access_token });
    const afterLogout = await t.post('/admin/show', {}, { cookie: cookieHeader, 'x-csrf-token': cookies.csrf_access_token });
    assert.equal(afterLogout.status, 401);
  });

  test('init with genkey answers the otpauth URL once; the seed is never shown by /admin/show', async () => {
    const res = await t.admin('/admin/init', { type: 'totp', genkey: '1', serial: 'GEN1' });
    assert.equal(res.json.result.value, true);
    assert.match(res.json.detail.googleurl.value, /^otpauth:\/\/totp\/otpd:GEN1\?secret=[A-Z2-7]{32}&/);
    const show = await t.admin('/admin/show', { serial: 'GEN1' });
    const secret = /secret=([A-Z2-7]+)/.exec(res.json.detail.googleurl.value)![1];
    assert.ok(!show.body.includes(secret));
    const tok = show.json.result.value.data[0];
    assert.equal(tok['LinOtp.TokenType'], 'TOTP');
    assert.equal(tok['LinOtp.TokenInfo'], '{\n"hashlib": "sha1",\n"timeStep": "30",\n"timeWindow": "1",\n"timeShift": "0"\n}');
    const alias = await t.admin('/admin/init', { type: 'HOTP', serial: 'ALIAS1', otpkey: KEY });
    assert.equal(alias.json.result.value, true);
    assert.equal((await t.admin('/admin/show', { serial: 'ALIAS1' })).json.result.value.data[0]['LinOtp.TokenType'], 'HMAC');
    const both = await t.admin('/admin/init', { type: 'hmac', genkey: '1', otpkey: KEY });
    assert.equal(both.json.result.error.code, 344);
  });

  test('show, enable/disable, reset, set, remove answer LinOTP shapes', async () => {
    await t.admin('/admin/init', { type: 'hmac', serial: 'ADM1', otpkey: KEY, pin: 'x' });
    const dis = await t.admin('/admin/disable', { serial: 'ADM1' });
    assert.equal(dis.json.result.value, 1);
    const checkDisabled = await t.post('/validate/check', { serial: 'ADM1', pass: `x${hotp(seed, 0)}` });
    assert.equal(checkDisabled.json.result.value, false);
    assert.equal((await t.admin('/admin/enable', { serial: 'ADM1' })).json.result.value, 1);
    assert.equal((await t.admin('/admin/enable', { serial: 'NOPE' })).json.detail.message, 'No token with serial NOPE');
    const set = await t.admin('/admin/set', { serial: 'ADM1', MaxFailCount: '3', description: 'desk' });
    assert.deepEqual(set.json.result.value, { 'set MaxFailCount': 1, 'set description': 1 });
    const usage = await t.admin('/admin/set', { serial: 'ADM1' });
    assert.equal(usage.json.result.error.code, 77);
    const tooBig = await t.admin('/admin/set', { serial: 'ADM1', MaxFailCount: '1000' });
    assert.equal(tooBig.json.result.error.code, Errors.invalidParameter.code);
    const show = await t.admin('/admin/show', { serial: 'ADM1' });
    assert.equal(show.json.result.value.data[0]['LinOtp.MaxFail'], 3);
    assert.equal(show.json.result.value.data[0]['LinOtp.TokenDesc'], 'desk');
    assert.deepEqual(show.json.result.value.resultset, { pages: 1, pagesize: 50, tokens: 1, page: 1 });
    const missing = await t.admin('/admin/remove', {});
    assert.equal(missing.json.result.error.code, 1212);
    assert.equal((await t.admin('/admin/remove', { serial: 'ADM1' })).json.result.value, 1);
  });

  test('resync needs two consecutive OTPs inside the sync window', async () => {
    await t.admin('/admin/init', { type: 'hmac', serial: 'RS1', otpkey: KEY });
    const ok = await t.admin('/admin/resync', { serial: 'RS1', otp1: hotp(seed, 50), otp2: hotp(seed, 51) });
    assert.equal(ok.json.result.value, true);
    assert.equal((await t.post('/validate/check', { serial: 'RS1', pass: hotp(seed, 51) })).json.result.value, false);
    assert.equal((await t.post('/validate/check', { serial: 'RS1', pass: hotp(seed, 52) })).json.result.value, true);
    const gap = await t.admin('/admin/resync', { serial: 'RS1', otp1: hotp(seed, 60), otp2: hotp(seed, 62) });
    assert.equal(gap.json.result.value, false);
  });

  test('config: setConfig/getConfig/delConfig with LinOTP shapes and bounds', async () => {
    const set = await t.admin('/system/setConfig', { key: 'DefaultOtpLen', value: '8' });
    assert.deepEqual(set.json.result.value, { 'setConfig DefaultOtpLen': true });
    assert.deepEqual((await t.admin('/system/getConfig', { key: 'DefaultOtpLen' })).json.result.value, { 'getConfig DefaultOtpLen': '8' });
    const bad = await t.admin('/system/setConfig', { key: 'DefaultCountWindow', value: '100000' });
    assert.equal(bad.json.result.status, false);
    assert.equal(bad.json.result.error.code, Errors.invalidConfigValue.code);
    const badLimit = await t.admin('/system/setConfig', { key: 'DeliveryLimitPerUser', value: 'lots' });
    assert.equal(badLimit.json.result.error.code, Errors.invalidConfigValue.code);
    assert.equal((await t.admin('/system/setConfig', { key: 'DeliveryLimitPerUser', value: '5/3600' })).json.result.status, true);
    const badAttrs = await t.admin('/system/setConfig', { key: 'RadiusReplyAttributes', value: "{'Class': 'x'}" });
    assert.equal(badAttrs.json.result.error.code, Errors.invalidConfigValue.code);
    assert.match(badAttrs.json.result.error.message, /invalid JSON/);
    const secret = await t.admin('/system/setConfig', { 'smtp.secret': 'hunter2!', 'smtp.secret.type': 'password' });
    assert.ok(!secret.body.includes('hunter2'));
    const all = await t.admin('/system/getConfig', {});
    assert.equal(all.json.result.value['smtp.secret'], '__CENSORED__');
    assert.equal(all.json.result.value.SMSBlockingTimeout, '30');
    assert.deepEqual((await t.admin('/system/delConfig', { key: 'DefaultOtpLen' })).json.result.value, { 'delConfig DefaultOtpLen': true });
    const setDefault = await t.admin('/system/setDefault', { DefaultMaxFailCount: '5' });
    assert.deepEqual(setDefault.json.result.value, { 'set DefaultMaxFailCount': true });
  });

  test('malformed input: envelope errors, never a 500 or a stack trace', async () => {
    const cases: [string, () => Promise<{ status: number; body: string }>][] = [
      ['invalid JSON', async () => { const r = await t.app.inject({ method: 'POST', url: '/validate/check', payload: '{bad', headers: { 'content-type': 'application/json' } }); return { status: r.statusCode, body: r.body }; }],
      ['JSON array body', async () => { const r = await t.app.inject({ method: 'POST', url: '/admin/init', payload: '[1,2]', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.apiKey}` } }); return { status: r.statusCode, body: r.body }; }],
      ['nested object param', async () => { const r = await t.app.inject({ method: 'POST', url: '/admin/init', payload: '{"type":{"a":1}}', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.apiKey}` } }); return { status: r.statusCode, body: r.body }; }],
      ['oversized param', () => t.admin('/admin/init', { type: 'hmac', description: 'x'.repeat(9000) })],
      ['NUL in param', () => t.admin('/admin/init', { type: 'hmac', serial: 'a\0b' })],
      ['binary junk', async () => { const r = await t.app.inject({ method: 'POST', url: '/admin/init', payload: Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]), headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${t.apiKey}` } }); return { status: r.statusCode, body: r.body }; }],
      ['unknown type', () => t.admin('/admin/init', { type: 'nonsense' })],
      ['bad hex key', () => t.admin('/admin/init', { type: 'hmac', otpkey: 'zz11' })],
      ['short key', () => t.admin('/admin/init', { type: 'hmac', otpkey: 'abcd' })],
      ['bad otplen', () => t.admin('/admin/init', { type: 'hmac', otplen: 'seven' })],
      ['huge body', async () => { const r = await t.app.inject({ method: 'POST', url: '/validate/check', payload: 'pass=' + 'a'.repeat(300_000), headers: { 'content-type': 'application/x-www-form-urlencoded' } }); return { status: r.statusCode, body: r.body }; }],
      ['unsupported content type', async () => { const r = await t.app.inject({ method: 'POST', url: '/validate/check', payload: '<x/>', headers: { 'content-type': 'application/xml' } }); return { status: r.statusCode, body: r.body }; }],
      ['unknown path', async () => { const r = await t.app.inject({ method: 'GET', url: '/admin/doesnotexist' }); return { status: r.statusCode, body: r.body }; }],
    ];
    const tokenRows = () => t.services.db.kysely.selectFrom('tokens').select(['id', 'serial', 'type']).orderBy('id').execute();
    const rowsBefore = await tokenRows();
    for (const [name, run] of cases) {
      const res = await run();
      assert.ok(res.status < 500, `${name}: HTTP ${res.status}`);
      assert.ok(!/\n\s+at |Error:/.test(res.body), `${name}: stack trace in ${res.body}`);
      const json = JSON.parse(res.body);
      assert.equal(json.jsonrpc, '2.0802', name);
      if (json.result.status === false) assert.match(json.result.error.message, /^ERR-?\d+: /, name);
      else assert.equal(json.result.value, false, name);
    }
    assert.deepEqual(await tokenRows(), rowsBefore, 'no half-written tokens: the refused requests left the token table as it was');
    const show = await t.admin('/admin/show', { pagesize: '1000' });
    assert.equal(show.json.result.value.resultset.tokens, rowsBefore.length);
    assert.ok(!show.json.result.value.data.some((d: any) => d['LinOtp.TokenType'] === 'nonsense'));
  });

  test('every API call writes an audit row without secrets; audit/search answers flexigrid JSON', async () => {
    await t.post('/validate/check', { serial: 'ENV1', pass: 'pinSECRET1' });
    const res = await t.admin('/audit/search', { rp: '5', page: '1', sortorder: 'desc' });
    assert.equal(typeof res.json.total, 'number');
    assert.equal(res.json.rows[0].cell.length, 17);
    const all = await t.services.db.kysely.selectFrom('audit').selectAll().execute();
    assert.ok(all.length > 10);
    assert.ok(!JSON.stringify(all).includes('SECRET1'));
    assert.ok(!JSON.stringify(all).includes('admin-password-1'));
    const v = all.find((r) => r.action === 'validate/check' && r.serial === 'ENV1' && r.success === '0');
    assert.ok(v);
    assert.equal(v.action_detail, 'wrong otp pin -1');
  });

  test('healthz and readyz', async () => {
    assert.equal((await t.app.inject({ url: '/healthz' })).statusCode, 200);
    const ready = await t.app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 200);
    assert.equal(JSON.parse(ready.body).status, 'ready');
  });
});
